"""Every limit the page's controls and the API share, each one number in one place.

A slider is built from its Limit (seqdemo.web.nextword_tab) and an API value is checked against the same Limit
(Limit.check), so the page can never offer what the API refuses, nor the API's message name another range.

One rule for a value outside its range: it never runs. The API refuses it with the Limit's sentence. On the page,
gradio's slider puts its number box back inside the range when the box loses focus (before any handler sees the
value); Limit.settle names what the box now holds, and the page says so beside the control, in the same words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from seqdemo.core import validate as valid


@dataclass(frozen=True)
class Limit:
    """A numeric setting: its name in messages, its range, the page's step and default."""

    name: str
    low: float
    high: float | None
    default: float
    step: float = 1
    whole: bool = True  # a whole number (k, max_new_tokens) or any number in range
    above: bool = False  # the range is (low, high], not [low, high]

    def check(self, value):
        """`value` as an int or a float inside the range, or an InputError naming the setting and its range."""
        if self.whole:
            return valid.integer(value, self.name, self.low, self.high)
        return valid.number(value, self.name, self.low, self.high, above=self.above)

    def nearest(self, number: float) -> float:
        """The allowed value nearest to a finite `number`: clamped to the range, whole when the setting is, and
        one step in from an open lower end (as the slider's ends are)."""
        low, high = self.slider_range()
        if high is not None:
            number = min(number, high)
        number = max(number, low)
        return math.floor(number + 0.5) if self.whole else number  # 2.5 -> 3, as the browser's range input shows

    def settle(self, value) -> tuple[float | None, str]:
        """What the page's control holds after `value` was typed into it, and the note beside it: ("" when the value
        is allowed). A value outside the range becomes the nearest allowed one (the slider's box does this itself
        on blur), a fraction of a whole setting its nearest whole number; the note says which, in the words the
        API refuses it with. No number at all: (None, the refusal)."""
        try:
            return self.check(value), ""
        except valid.InputError as refused:
            number = valid.as_number(value)
            if number is None:
                return None, str(refused)
            used = self.nearest(number)
            return used, f"{str(refused).rstrip('.')}; the box now holds {used:g}."

    def slider_range(self) -> tuple[float, float]:
        """The page's slider ends: an open lower end starts one step in."""
        return (self.low + self.step if self.above else self.low), self.high


MAX_CHARS = 100_000  # the longest text the page passes on: far beyond what the models read (512 / 2048 tokens)
INSPECT_TOKENS = 256  # the gate inspector traces at most this many tokens
IG_STEPS = 16  # integrated-gradients steps (SentimentPipeline.explain's default)
STREAM_INTERVAL = 0.04  # seconds between two streamed updates (at most 25 a second; every token when slower)

NEXT_WORDS = Limit("k", 1, 20, default=5)
MAX_NEW_TOKENS = Limit("max_new_tokens", 1, 300, default=40)
TEMPERATURE = Limit("temperature (0 = greedy)", 0, 2, default=0.8, step=0.05, whole=False)
# top-k has no upper end: a k at or above the vocabulary's size samples unfiltered, as 0 does. The slider stops at
# TOP_K_SLIDER, where the filter already keeps more than any reader compares.
TOP_K = Limit("top_k (0 = off)", 0, None, default=50)
TOP_K_SLIDER = 200
TOP_P = Limit("top_p", 0, 1, default=0.95, step=0.01, whole=False, above=True)

SAMPLING = (MAX_NEW_TOKENS, TEMPERATURE, TOP_K, TOP_P)
