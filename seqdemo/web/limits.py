"""Every limit the page's controls and the API share, each one number in one place.

A slider is built from its Limit (seqdemo.web.nextword_tab) and an API value is checked against the same Limit
(Limit.check), so the page can never offer what the API refuses, nor the API's message name another range.
"""

from __future__ import annotations

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
