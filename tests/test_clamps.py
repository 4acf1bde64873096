"""Numbers never change without a word: a value outside a Next-word control's range is refused by the API with the
Limit's one sentence, and on the page the control's note says, in the same words, what its box now holds. Seed -1
means a fresh random seed. A long review says visibly what the classifier read of it."""

from __future__ import annotations

import math
import re

import gradio as gr
import pytest
import torch

import app
from seqdemo.core import validate as valid
from seqdemo.core.models import SentimentClassifier
from seqdemo.inference.sentiment import SentimentPipeline
from seqdemo.web import limits
from seqdemo.web.nextword_tab import NextWordHandlers, fresh_seed, settle
from seqdemo.web.sentiment_tab import SentimentHandlers


@pytest.mark.parametrize("limit, typed, holds, says", [
    (limits.NEXT_WORDS, 0, 1, "k must be a whole number from 1 to 20; the box now holds 1."),
    (limits.NEXT_WORDS, 25, 20, "k must be a whole number from 1 to 20; the box now holds 20."),
    (limits.NEXT_WORDS, 2.5, 3, "k must be a whole number from 1 to 20, not a fraction; the box now holds 3."),
    (limits.NEXT_WORDS, 2.4, 2, "k must be a whole number from 1 to 20, not a fraction; the box now holds 2."),
    (limits.TEMPERATURE, 1e9, 2, "temperature (0 = greedy) must be a number from 0 to 2; the box now holds 2."),
    (limits.TOP_P, 7, 1, "top_p must be a number above 0 and at most 1; the box now holds 1."),
    (limits.TOP_P, 0, 0.01, "top_p must be a number above 0 and at most 1; the box now holds 0.01."),
    (limits.MAX_NEW_TOKENS, -5, 1, "max_new_tokens must be a whole number from 1 to 300; the box now holds 1."),
    (limits.TOP_K, -1, 0, "top_k (0 = off) must be a whole number of at least 0; the box now holds 0."),
])
def test_the_note_says_what_the_box_now_holds_in_the_api_s_words(limit, typed, holds, says):
    with pytest.raises(valid.InputError) as refused:  # the API refuses the value ...
        limit.check(typed)
    used, note = limit.settle(typed)  # ... and the page names it in the same sentence, plus what the box holds
    assert used == holds and note == says
    assert note.startswith(str(refused.value).rstrip("."))
    limit.check(used)  # what the box holds is allowed


def test_the_box_holds_the_gradio_slider_s_own_end():
    """Gradio's slider clamps its box to the slider's ends on blur: the note names the very same value."""
    for limit in limits.SAMPLING + (limits.NEXT_WORDS,):
        low, high = limit.slider_range()
        assert limit.settle(low - 1000)[0] == low
        if high is not None:
            assert limit.settle(high * 1000 + 1)[0] == high


@pytest.mark.parametrize("typed", [1, 20, 5.0, "7"])
def test_an_allowed_value_clears_the_note(typed):
    assert limits.NEXT_WORDS.settle(typed) == (int(float(typed)), "")
    box, note = settle(limits.NEXT_WORDS)(typed)
    assert note == "" and isinstance(box, type(gr.skip()))


def test_the_slider_handler_moves_the_box_and_text_stays_refused():
    box, note = settle(limits.NEXT_WORDS)(2.5)
    assert box["value"] == 3 and "not a fraction" in note  # the browser's range input shows 3 too
    box, note = settle(limits.TOP_P)("abc")  # no number at all: nothing to move to, only the refusal
    assert isinstance(box, type(gr.skip())) and note.startswith("top_p must be a number")


@pytest.fixture(scope="module")
def demo(pipelines):
    return app.build_demo(*pipelines)


def test_every_next_word_slider_has_its_note_and_gets_the_value_as_typed(demo):
    """Each slider's release event goes to settle with preprocessing off (gradio's own preprocess would refuse 0
    with its own words before the handler), and writes into the slider and the note under it."""
    sliders = {b._id: b for b in demo.blocks.values() if isinstance(b, gr.Slider)
               and (b.elem_id or "").startswith(("nextword-", "generate-"))}
    notes = {b.elem_id: b for b in demo.blocks.values() if isinstance(b, gr.Markdown) and b.elem_id
             and b.elem_id.startswith(("nextword-", "generate-")) and b.elem_id.endswith("-note")
             and b.elem_id != "generate-seed-note"}
    wired = [fn for fn in demo.fns.values() if any(t[1] == "release" and t[0] in sliders for t in fn.targets)]
    assert {fn.inputs[0]._id for fn in wired} == set(sliders)
    for fn in wired:
        assert fn.preprocess is False
        assert fn.outputs[0]._id == fn.inputs[0]._id and fn.outputs[1].elem_id in notes
    assert len(notes) == len(sliders) == 5


def test_the_api_refuses_what_the_page_moves(demo):
    [next_words] = [f.fn for f in demo.fns.values() if f.api_name == "next_words"]
    for k, says in [(0, "k must be a whole number from 1 to 20."), (2.5, "not a fraction")]:
        with pytest.raises(gr.Error, match=re.escape(says)):
            next_words("The acting was", k)


# -- the seed ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["", " ", "-1", " -1 ", None])
def test_blank_or_minus_one_is_a_fresh_random_seed_that_the_page_shows(typed):
    seed, writing = fresh_seed(typed)
    assert int(seed) >= 0 and writing == f"Seed **{seed}**: writing…"
    assert "18446744073709551615" not in writing


def test_minus_one_samples_with_a_fresh_seed_and_shows_it(pipelines):
    handlers = NextWordHandlers(pipelines[1])
    seed, _ = fresh_seed("-1")
    *_, text = handlers.generate("The acting was", 8, 1.5, 0, 1.0, seed)
    _, note = handlers.finish("The acting was", 8, 1.5, 0, 1.0, seed, False)
    assert note.startswith(f"Seed **{seed}**: type it")
    assert text == pipelines[1].generate("The acting was", max_new_tokens=8, temperature=1.5, top_k=0, top_p=1.0,
                                         seed=int(seed), whole_words=True)
    assert valid.seed(-1) is None and valid.seed("-1") is None and valid.seed(-1.0) is None


@pytest.mark.parametrize("seed", [-2, "-7", -(2**70)])
def test_other_negative_seeds_are_refused_in_one_sentence(pipelines, seed):
    with pytest.raises(valid.InputError, match=r"seed must be a whole number of at least 0, or blank \(or -1\)"):
        NextWordHandlers.check_generation("The acting was", 8, 0.8, 0, 1.0, seed)


def test_large_seeds_still_repeat_their_text():
    assert valid.seed(2**64 + 7) == 7 and valid.seed(math.nan) is None


# -- a long review -----------------------------------------------------------------------------------------------


def test_a_long_review_says_visibly_what_was_read(tiny_tokenizer):
    """A classifier that reads 8 tokens, given a 20,000-character review: the summary (not the Details) names how
    many words of the start and the end it read, counted here from the tokens it kept."""
    torch.manual_seed(0)
    model = SentimentClassifier(vocab_size=tiny_tokenizer.vocab_size, embed_dim=16, hidden_size=12, max_tokens=8)
    pipe = SentimentPipeline(model.eval(), tiny_tokenizer, torch.device("cpu"), source="test")
    review = ("The plot was thin but the acting saved it. " * 500)[:20_000]
    summary = SentimentHandlers(pipe).classify(review, "evidence")[3]
    ids = tiny_tokenizer.encode(review)
    head = len(re.findall(r"\w+", tiny_tokenizer.decode(ids[:4])))
    tail = len(re.findall(r"\w+", tiny_tokenizer.decode(ids[-4:])))
    assert (f"the model read the first {head} and last {tail} words of these 20,000 characters"
            in re.sub(r"<[^>]+>", "", summary))
    assert "Read in part" not in SentimentHandlers(pipe).classify("not good", "evidence")[3]
