"""One limit for the page and the API: every slider is built from the same Limit that checks the API's value."""

from __future__ import annotations

import gradio as gr
import pytest

import app
from seqdemo.core.validate import InputError
from seqdemo.web import limits


@pytest.fixture(scope="module")
def demo(pipelines):
    return app.build_demo(*pipelines)


def slider(demo, label_start: str) -> gr.Slider:
    [found] = [b for b in demo.blocks.values() if isinstance(b, gr.Slider) and b.label.startswith(label_start)]
    return found


@pytest.mark.parametrize("label, limit", [
    ("How many words", limits.NEXT_WORDS), ("max new pieces", limits.MAX_NEW_TOKENS),
    ("temperature", limits.TEMPERATURE), ("top-p", limits.TOP_P),
])
def test_the_page_offers_exactly_what_the_api_accepts(demo, label, limit):
    control = slider(demo, label)
    assert control.maximum == limit.high and control.value == limit.default
    limit.check(control.maximum)  # the slider's ends are accepted ...
    limit.check(control.minimum)
    with pytest.raises(InputError, match=f"{limit.high}"):  # ... one step past its top is refused, naming the top
        limit.check(control.maximum + limit.step)


def test_the_api_refuses_past_the_slider_with_the_slider_s_number(demo):
    [next_words] = [f.fn for f in demo.fns.values() if f.api_name == "next_words"]
    top = slider(demo, "How many words").maximum
    *_, message = next_words("The acting was", top)
    assert message == ""  # accepted
    with pytest.raises(gr.Error, match=f"k must be a whole number from 1 to {top}"):
        next_words("The acting was", top + 1)


def test_top_k_has_no_top_and_the_slider_stops_at_a_readable_one(demo):
    assert slider(demo, "top-k").maximum == limits.TOP_K_SLIDER
    assert limits.TOP_K.check(10**12) == 10**12  # a k past the vocabulary samples unfiltered, as 0 does
