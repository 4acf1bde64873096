"""seqdemo.web.presentation: the spans, tables and notes the page shows, computed without gradio."""

from __future__ import annotations

import html
import math
import re

import pytest
import torch

from seqdemo.core import gates, units
from seqdemo.core import validate as valid
from seqdemo.core.models import SentimentClassifier
from seqdemo.core.tokenizer import Span
from seqdemo.inference.generation import NextWordPipeline
from seqdemo.inference.sentiment import SentimentPipeline
from seqdemo.web import plots
from seqdemo.web import presentation as show


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


def chip_values(chips: str) -> list[tuple[str, float, str]]:
    """(text, data-value, background) of each chip of a coloured text."""
    found = re.findall(r'<span class="sq-chip" style="background:(#[0-9a-f]{6});[^"]*" title="[^"]*" '
                       r'data-value="([^"]*)">([^<]*)</span>', chips)
    return [(html.unescape(text), float(value), background) for background, value, text in found]


def test_positive_pushes_are_blue_and_negative_orange_whatever_the_verdict():
    spans = [Span("not", -0.5, [0]), None, Span(" good", 0.25, [1]), Span(" <b>", 0.0, [2])]
    chips = show.attribution_chips(spans, "positive", "negative")
    [(first, v1, c1), (skipped, _, _), (second, v2, c2), (tag, _, _)] = chip_values(chips)
    assert (first, v1, second, v2) == ("not", -0.5, "good", 0.25)
    assert c1 == plots.signed_colour(-0.5, 0.5) == plots.NEGATIVE  # the strongest push: full colour
    assert c2 == plots.signed_colour(0.25, 0.5) and plots._rgb(c2)[2] > plots._rgb(c2)[0]  # blue-ish
    assert skipped.strip() == show.MIDDLE_SKIPPED.strip() and tag == "<b>" and "<b>" not in chips  # escaped
    assert "towards negative" in chips and "towards positive" in chips  # the legend


def test_no_compared_variant_wears_the_sentiment_colours():
    # Blue means positive and orange negative on every tab; a variant's line or bar (or a review-length group's)
    # must not look like either.
    import colorsys

    def hls(colour: str) -> tuple[float, float, float]:
        return colorsys.rgb_to_hls(*(int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)))

    def hue(colour: str) -> float:
        return 360 * hls(colour)[0]

    lengths = {f"length {i}": colour for i, colour in enumerate(plots.LENGTH_COLOURS)}
    for name, colour in {**plots.VARIANT_COLOURS, **lengths}.items():
        if hls(colour)[2] < 0.1:  # a grey has no hue to confuse
            continue
        for meaning in (plots.POSITIVE, plots.NEGATIVE):
            distance = abs(hue(colour) - hue(meaning))
            assert min(distance, 360 - distance) > 40, (name, colour, meaning)


def test_the_pushes_table_lists_the_strongest_words_first_and_whitespace_last():
    spans = [Span("a", 0.1, [0]), Span("\n\n", -0.7, [1]), None, Span(" c", 0.3, [2]), Span(" d", -0.2, [3])]
    table = show.pushes_table(spans, "positive", "negative", rows=4)
    assert table["data"] == [["c", 0.3, "positive"], ["d", -0.2, "negative"], ["a", 0.1, "positive"],
                             ["¶¶", -0.7, "negative"]]


def test_surprisal_view_adds_up_a_characters_pieces(tiny_tokenizer, tiny_nextword):
    lm = NextWordPipeline(tiny_nextword, tiny_tokenizer, torch.device("cpu"), source="test")
    text = "I loved it 🙂"
    summary = lm.surprisal_summary(text)
    chips, table, summary_line, notes = show.surprisal_view(tiny_tokenizer, summary, clipped=False)
    words = chip_values(chips)
    assert " ".join(text for text, _, _ in words) == text
    [emoji] = [row for row in table["data"] if row[0] == "🙂"]
    pieces = emoji[3]  # the emoji's four byte pieces, and the word-start mark before them if it is a piece
    emoji_bits = sum(row["bits"] for row in summary.rows[-pieces:])  # the text ends with the emoji
    assert pieces >= 4 and emoji[1] == pytest.approx(emoji_bits, abs=1e-3)
    assert words[-1][1] == pytest.approx(emoji_bits, rel=1e-4)
    assert f"{summary.bits_per_char:.2f} bits per character" in summary_line
    score = lm.score(text)
    assert summary.perplexity == pytest.approx(score["perplexity"]) and summary.bits_per_char == pytest.approx(
        score["bits_per_char"])
    assert f"per-token perplexity {score['perplexity']:.1f}, {score['bits_per_char']:.3f} bits per character" in notes
    assert summary.total_bits == pytest.approx(math.log2(score["perplexity"]) * len(summary.ids), rel=1e-5)


def test_clip_keeps_the_part_the_model_reads():
    text = "a" * 100 + "b" * 10
    assert valid.clip("short", "head", 100) == ("short", False)
    assert valid.clip(text, "head", 100) == (text[:100], True)
    assert valid.clip(text, "tail", 100) == (text[-100:], True)
    assert valid.clip(text, "head_tail", 100) == ("a" * 50 + " " + "a" * 40 + "b" * 10, True)


def test_visible_and_md():
    assert show.visible("a\x00b\x07\u202ec\nd\x7f") == "a␀b␇[U+202E]c\nd␡"
    assert show.md("<b>*x*</b> [a](b)") == r"\<b\>\*x\*\</b\> \[a\]\(b\)"


def test_unit_choice():
    assert valid.whole_or_blank(" 7 ", "unit", "") == 7 and valid.whole_or_blank("", "unit", "") is None
    assert valid.whole_or_blank(float("nan"), "unit", "") is None and valid.whole_or_blank(7.0, "unit", "") == 7
    with pytest.raises(valid.InputError, match="whole number"):
        valid.whole_or_blank("7.5", "unit", "")
    assert valid.unit(None, [5, 2, 0], 6) == 5
    with pytest.raises(valid.InputError, match="Units run from 0 to 5"):
        valid.unit(6, [5, 2, 0], 6)


def test_inspector_rows_are_words_with_their_last_state_and_mean_gates(tiny_tokenizer):
    ids = tiny_tokenizer.encode("grinning 这")
    traced = gates.TextTrace(tokens=[gates.START_TOKEN, *tiny_tokenizer.pieces(ids)], ids=[2, *ids], layers={},
                             truncated=False)
    rows = show.inspector_steps(tiny_tokenizer, traced, "words")
    assert [row.text for row in rows] == [gates.START_TOKEN, "grinning", " 这"]
    assert [p for row in rows for p in row.positions] == list(range(len(ids) + 1))
    matrix = torch.arange(len(ids) + 1, dtype=torch.float32).unsqueeze(1) * torch.tensor([[1.0, -1.0]])
    word = rows[1].positions
    assert show.step_values(matrix, rows, "c")[1].tolist() == matrix[word[-1]].tolist()  # after its last piece
    assert show.step_values(matrix, rows, "f")[1].tolist() == pytest.approx(matrix[word].mean(0).tolist())
    pieces = show.inspector_steps(tiny_tokenizer, traced, "pieces")
    assert len(pieces) == len(ids) + 1 and any("<0x" in row.text for row in pieces)  # the bytes the LSTM reads


def test_marked_words_are_found_in_the_text_whatever_their_case():
    rows = [Span(gates.START_TOKEN, 0, [0]), Span("Not", 0, [1, 2]), Span(" good", 0, [3]), Span(".", 0, [4])]
    assert show.marked_steps(rows, "not") == [1, 2]
    assert show.marked_steps(rows, "t goo") == [1, 2, 3]
    assert show.marked_steps(rows, ".") == [4]
    with pytest.raises(ValueError, match="not in the text"):
        show.marked_steps(rows, "bad")
    with pytest.raises(ValueError, match="Type a word"):
        show.marked_steps(rows, "  ")


def test_find_units_ranks_the_unit_whose_memory_jumps_at_the_marked_step():
    steps = 5
    c = torch.zeros(steps, 3)
    c[:, 0] = torch.tensor([0.0, 0.1, 0.2, 0.3, 0.4])  # drifts by 0.1 every step
    c[3:, 1] = 0.5  # still, then one jump at step 3
    c[:, 2] = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0])  # swings every step
    f = torch.full((steps, 3), 0.9)
    i = torch.full((steps, 3), 0.1)
    f[3, 2], i[3, 0] = 0.05, 0.8
    change = units.marked_change({"c": c, "f": f, "i": i}, [3], "memory")
    assert change.order[0] == 1  # 0.5 against its usual step of 0.1: five times
    assert show.found_table(change)["data"][0][:3] == [1, "+0.00 → +0.50", "5.0×"]
    assert units.marked_change({"c": c, "f": f, "i": i}, [3], "gates").order[:2] == [2, 0]  # f dips 0.85, i rises 0.7
    with pytest.raises(valid.InputError, match="not all of it"):
        units.marked_change({"c": c, "f": f, "i": i}, list(range(steps)), "memory")


def test_a_truncated_trajectory_marks_the_skip_between_the_words_of_the_start_and_of_the_end(short_reader):
    """The chart counts words: the dashed line sits after the last word of the kept start, so every point left
    of it was read within the start's tokens and every point right of it reached into the end."""
    text = "The plot was thin but the acting saved it, and the music was wonderful too."
    trajectory = short_reader.reading_trajectory(text)
    assert trajectory.middle_skipped_at == 4 and not trajectory.spaced
    points, labels, head_words, note = show.trajectory_view(trajectory)
    assert note == "" and len(labels) == len(trajectory.words) and 0 < head_words < len(labels)
    assert [x for x, _ in points] == list(range(1, len(labels) + 1))
    for (x, _), (tokens_read, _) in zip(points, trajectory.points):
        assert (x <= head_words) == (tokens_read <= 4), (x, tokens_read)
    figure = plots.trajectory_figure(points, labels, "positive", truncated_at=head_words, unit="word")
    assert [shape.x0 for shape in figure.layout.shapes if shape.line.dash == "dash"] == [head_words + 0.5]
