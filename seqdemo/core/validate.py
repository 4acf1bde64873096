"""The page's and the API's inputs, checked and coerced before any model sees them.

A script may send anything JSON holds: numbers as strings, None, lists, NaN, 1e400, a seed of 2**70, a lone
surrogate. Each function here returns the value in the type the handler needs, or raises an InputError whose
message is one sentence that names the parameter and says what it accepts. The messages never quote the value
itself: a value can be ten megabytes, or HTML, and the page shows these messages as HTML.
"""

from __future__ import annotations

import math
import sys
from typing import Iterable

from seqdemo.core.text import valid_unicode

_LARGEST_FLOAT = sys.float_info.max
SEED_RANGE = 2**64  # torch.Generator.manual_seed takes 0 <= seed < 2**64


class InputError(ValueError):
    """A value a handler cannot use; the message names the parameter and what it accepts."""


def _kind(value) -> str:
    """What the value was, in words, without the value itself."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "text that is not a finite number" if value.strip() else "an empty text"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "an infinite number"
    return {list: "a list", tuple: "a list", dict: "an object"}.get(type(value), f"a {type(value).__name__}")


def text(value, name: str = "text") -> str:
    """A string with something in it besides whitespace, made valid Unicode (lone surrogates become U+FFFD)."""
    if not isinstance(value, str):
        raise InputError(f"{name} must be a text (a string), not {_kind(value)}.")
    if not value.strip():
        raise InputError(f"The {name} is empty: type a word or a sentence first.")
    return valid_unicode(value)


def clip(value: str, keep: str, limit: int) -> tuple[str, bool]:
    """At most `limit` characters of a text: the 'head', the 'tail' or the 'head_tail' (both ends, as the
    classifier keeps the first and last tokens of a long review). Returns (text, whether it was cut)."""
    if len(value) <= limit:
        return value, False
    if keep == "head":
        return value[:limit], True
    if keep == "tail":
        return value[-limit:], True
    half = limit // 2
    return value[:half] + " " + value[-half:], True


def choice(value, name: str, options: Iterable[str]) -> str:
    options = list(options)
    if not isinstance(value, str) or value not in options:
        raise InputError(f"{name} must be one of: {', '.join(options)}.")
    return value


def as_number(value) -> float | int | None:
    """An int, a finite float, or None when the value is no number (numeric strings count as numbers)."""
    if isinstance(value, bool):  # JSON true/false: a number by Python's rules, not by anyone's intent
        return None
    if isinstance(value, str):
        stripped = value.strip()
        if len(stripped) > 100:  # no real setting is this long; int() of a huge digit string is slow
            return None
        try:
            return int(stripped)
        except ValueError:
            pass
        try:
            value = float(stripped)
        except ValueError:
            return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def _range_words(low, high) -> str:
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" of at least {low}"
    if high is not None:
        return f" of at most {high}"
    return ""


def integer(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """A whole number in [low, high]; 5, 5.0 and "5" all give 5."""
    number = as_number(value)
    wanted = f"{name} must be a whole number{_range_words(low, high)}"
    if number is None or (isinstance(number, float) and not number.is_integer()):
        what = _kind(value) if number is None else "a fraction"
        raise InputError(f"{wanted}, not {what}.")
    number = int(number)
    if (low is not None and number < low) or (high is not None and number > high):
        raise InputError(f"{wanted}.")
    return number


def number(value, name: str, low: float | None = None, high: float | None = None, above: bool = False) -> float:
    """A finite number in [low, high] ((low, high] when `above`)."""
    parsed = as_number(value)
    bound = f" above {low} and at most {high}" if above else _range_words(low, high)
    wanted = f"{name} must be a number{bound}"
    if parsed is None:
        raise InputError(f"{wanted}, not {_kind(value)}.")
    too_low = low is not None and (parsed <= low if above else parsed < low)  # exact, even for a huge int
    if too_low or (high is not None and parsed > high) or abs(parsed) > _LARGEST_FLOAT:
        raise InputError(f"{wanted}.")
    return float(parsed)


RANDOM_SEED = -1  # a seed that asks for a fresh random one, as blank does


def seed(value) -> int | None:
    """A seed for the sampler, for the page, the API and the library alike: blank (None, "", NaN: the page's empty
    number box) or -1 means a fresh random one (None); a whole number of at least 0, however large, is brought into
    the generator's range (the same number, the same text). Other negative numbers are refused: -1 is the one that
    means "random", and -2 would look like it does too."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str) and value.strip() == str(RANDOM_SEED):
        return None
    if not isinstance(value, (str, bool)) and value == RANDOM_SEED:
        return None
    number = as_number(value)
    if number is not None and number < 0:
        raise InputError("seed must be a whole number of at least 0, or blank (or -1) for a fresh random one.")
    return integer(value, "seed") % SEED_RANGE


def whole_or_blank(value, name: str, blank: str) -> int | None:
    """A whole number from a page's text box or a script; blank (None, "", NaN) gives None, which means `blank`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str) and not value.strip():
        return None
    number = as_number(value)
    if number is None or (isinstance(number, float) and not number.is_integer()):
        raise InputError(f"{name} must be a whole number (like 37), or blank for {blank}.")
    return int(number)


def unit(value, order: list[int], hidden: int) -> int:
    """The unit to follow: a unit number of the layer, or blank for the first of `order`."""
    chosen = whole_or_blank(value, "unit", "the first unit of the order")
    chosen = order[0] if chosen is None else chosen
    if not 0 <= chosen < hidden:
        raise InputError(f"Units run from 0 to {hidden - 1} in this layer.")
    return chosen


def layer_and_direction(layer, direction, layers: int, bidirectional: bool,
                        directions: tuple[str, ...] = ("forward", "backward")) -> tuple[int, int]:
    """(layer, direction index) of a recurrent network with `layers` layers; no layer means the last one."""
    layer = layers - 1 if layer is None else integer(layer, "layer")
    direction = choice(direction, "direction", directions)
    if not 0 <= layer < layers:
        raise InputError(f"This model has layers 0 to {layers - 1}.")
    if direction == "backward" and not bidirectional:
        raise InputError("This model reads forward only.")
    return layer, directions.index(direction)
