"""seqdemo.presentation: the spans, tables and notes the page shows, computed without gradio."""

from __future__ import annotations

import math

import pytest
import torch

from seqdemo import presentation as show
from seqdemo.generation import NextWordPipeline
from seqdemo.models import SentimentClassifier
from seqdemo.sentiment import SentimentPipeline
from seqdemo.tokenizer import Span


@pytest.fixture(scope="module")
def short_reader(tiny_tokenizer):
    """A classifier that reads at most 8 tokens: any sentence is a long text to it."""
    torch.manual_seed(0)
    model = SentimentClassifier(vocab_size=tiny_tokenizer.vocab_size, embed_dim=16, hidden_size=12, max_tokens=8)
    return SentimentPipeline(model.eval(), tiny_tokenizer, torch.device("cpu"), source="test")


def test_the_skipped_middle_sits_between_the_kept_start_and_end(short_reader):
    text = "The plot was thin but the acting saved it, and the music was wonderful too."
    explanation = short_reader.explain(text)
    all_ids = short_reader.tokenizer.encode(text)
    assert explanation.middle_skipped_at == 4 and explanation.ids == all_ids[:4] + all_ids[-4:]
    spans = show.attribution_spans(short_reader.tokenizer, explanation)
    cut = spans.index(None)
    assert "".join(s.text for s in spans[:cut]) == short_reader.tokenizer.decode(all_ids[:4])
    assert sorted(p for s in spans[cut + 1 :] for p in s.positions) == [0, 1, 2, 3]  # positions within the end
    notes = show.classify_notes(explanation, short_reader.labels, 1.0, len(all_ids), clipped=False)
    assert f"Truncated to 8 tokens: the text has {len(all_ids)}; the model read its first 4 and last 4." in notes
    assert short_reader.explain("not good").middle_skipped_at is None


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_highlights_are_scaled_to_the_strongest_push_and_signed_by_the_verdict(sign):
    spans = [Span("not", -0.5, [0]), None, Span(" good", 0.25, [1])]
    assert show.attribution_highlights(spans, sign) == [("not", -sign), (show.MIDDLE_SKIPPED, None), (" good", sign / 2)]
    assert show.verdict_sign({"label": "negative"}, "positive") == -1.0
    assert show.verdict_sign({"label": "positive"}, "positive") == 1.0


def test_the_pushes_table_lists_the_strongest_first():
    spans = [Span("a", 0.1, [0]), Span(" ", -0.7, [1]), None, Span("c", 0.3, [2]), Span("d", -0.2, [3])]
    table = show.pushes_table(spans, "positive", "negative", rows=3)
    assert table["data"] == [["␣", -0.7, "negative"], ["c", 0.3, "positive"], ["d", -0.2, "negative"]]


def test_surprisal_view_adds_up_a_characters_pieces(tiny_tokenizer, tiny_nextword):
    lm = NextWordPipeline(tiny_nextword, tiny_tokenizer, torch.device("cpu"), source="test")
    text = "I loved it 🙂"
    summary = lm.surprisal_summary(text)
    highlighted, table, notes = show.surprisal_view(tiny_tokenizer, summary, clipped=False)
    assert "".join(token for token, _ in highlighted) == text
    [emoji] = [row for row in table["data"] if row[0] == "🙂"]
    emoji_bits = sum(row["bits"] for row in summary.rows[-4:])  # the text ends with the emoji's four pieces
    assert emoji[1] == pytest.approx(emoji_bits, abs=1e-3) and emoji[3] == 4
    score = lm.score(text)
    assert summary.perplexity == pytest.approx(score["perplexity"]) and summary.bits_per_char == pytest.approx(
        score["bits_per_char"])
    assert f"per-token perplexity {score['perplexity']:.1f}, {score['bits_per_char']:.3f} bits per character" in notes
    assert summary.total_bits == pytest.approx(math.log2(score["perplexity"]) * len(summary.ids), rel=1e-5)


def test_clip_keeps_the_part_the_model_reads():
    text = "a" * show.MAX_CHARS + "b" * 10
    assert show.clip("short", "head") == ("short", False)
    assert show.clip(text, "head") == (text[: show.MAX_CHARS], True)
    assert show.clip(text, "tail")[0].endswith("b" * 10)
    kept, cut = show.clip(text, "head_tail")
    assert cut and kept.startswith("a") and kept.endswith("b" * 10) and len(kept) == show.MAX_CHARS + 1
    with pytest.raises(TypeError, match="Type a text"):
        show.clip(None, "head")


def test_visible_and_md():
    assert show.visible("a\x00b\x07\u202ec\nd\x7f") == "a␀b␇[U+202E]c\nd␡"
    assert show.md("<b>*x*</b> [a](b)") == r"\<b\>\*x\*\</b\> \[a\]\(b\)"


def test_unit_choice(tiny_tokenizer):
    assert show.parse_unit(" 7 ") == 7 and show.parse_unit("") is None and show.parse_unit(float("nan")) is None
    with pytest.raises(ValueError, match="whole number"):
        show.parse_unit("7.5")
    assert show.pick_unit(None, [5, 2, 0], 6) == 5
    with pytest.raises(ValueError, match="Units run from 0 to 5"):
        show.pick_unit(6, [5, 2, 0], 6)
