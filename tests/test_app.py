"""The page's API, called the way a user's script calls it: gradio_client against the app served in-process,
built around the tiny untrained models of conftest.py. Every number checked here is compared with what the
library itself computes, so the page cannot show a number the model did not produce."""

from __future__ import annotations

import html
import json
import math
import os
import re

import gradio as gr
import numpy as np
import pytest
import torch
from conftest import HTML_TEXT, ODD_TEXTS, array, assert_error, plot_json, serve_locally

import app
from seqdemo.core import gates
from seqdemo.inference import pipeline as pipeline_module
from seqdemo.inference.sentiment import SentimentPipeline
from seqdemo.web import limits, plots
from seqdemo.web import presentation as show
from seqdemo.web.endpoints import endpoint
from seqdemo.web.inspector_tab import InspectorHandlers
from seqdemo.web.nextword_tab import NextWordHandlers, fresh_seed
from seqdemo.web.page import metrics_markdown
from seqdemo.web.sentiment_tab import SentimentHandlers
from seqdemo.web.settings import Settings

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def client(pipelines):
    demo = app.build_demo(*pipelines)
    try:
        yield gradio_client.Client(serve_locally(demo), verbose=False, analytics_enabled=False)
    finally:
        demo.close()


def chips(coloured: str) -> list[tuple[str, float]]:
    """(text, data-value) of each chip of a coloured text (seqdemo.web.presentation.chips_html)."""
    found = re.findall(r'<span class="sq-chip"[^>]* data-value="([^"]*)">([^<]*)</span>', coloured)
    return [(html.unescape(text), float(value)) for value, text in found]


def chip_text(coloured: str) -> str:
    """The text a coloured text spells: its chips and the spaces between them (whitespace shown as marks)."""
    body = coloured.split('<div class="sq-text">', 1)[1]
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def expected_words(tokenizer, ids, values, starts_text=True) -> list[tuple[str, float]]:
    """The words the page should show for these pieces, each with its pieces' summed value."""
    return [(show.shown(w.text), w.value) for w in show.word_spans(tokenizer, ids, values, starts_text)]


def assert_chips(coloured: str | list, expected: list[tuple[str, float]], abs_tol: float = 1e-4) -> None:
    shown = chips(coloured) if isinstance(coloured, str) else coloured
    assert [text for text, _ in shown] == [text for text, _ in expected]
    assert [value for _, value in shown] == pytest.approx([value for _, value in expected], abs=abs_tol)


@pytest.mark.parametrize("chosen, enabled", [(None, False), ("True", True), ("False", False)])
def test_analytics_stay_off_unless_turned_on(monkeypatch, pipelines, chosen, enabled):
    """Building the page with the variable unset turns gradio's analytics off; a user's own choice stands.
    gradio's requests are recorded here, never sent."""
    import gradio.analytics

    sent = []
    monkeypatch.setattr(gradio.analytics, "_do_analytics_request", lambda topic, data: sent.append(topic))
    if chosen is None:
        monkeypatch.delenv("GRADIO_ANALYTICS_ENABLED", raising=False)
    else:
        monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", chosen)
    demo = app.build_demo(*pipelines)
    assert demo.analytics_enabled is enabled
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == (chosen or "False")
    if not enabled:
        assert sent == []


@pytest.mark.parametrize("concurrency, threads", [(1, 8), (4, 2), (3, 2), (16, 1)])
def test_handlers_times_torch_threads_fit_the_cores(monkeypatch, pipelines, concurrency, threads):
    """On 8 cores, the page gives each of its handlers 8 // concurrency torch threads, at least one."""
    monkeypatch.setattr(pipeline_module, "available_cores", lambda: 8)
    try:
        app.build_demo(*pipelines, settings=Settings(concurrency=concurrency)).close()
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(1)  # conftest's choice for the tiny models


def test_the_page_offers_every_endpoint(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/classify", "/next_words", "/generate", "/surprisal", "/inspect", "/find_units", "/export_trace",
            "/trajectory"} <= set(endpoints)


# -- /classify ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["evidence", "integrated_gradients"])
def test_classify(client, pipelines, method):
    sentiment, _ = pipelines
    text = "The plot was thin but the acting saved it"
    label, coloured, pushes, summary, details = client.predict(text, method, api_name="/classify")

    expected = sentiment.predict(text)[0]
    assert label["label"] == expected["label"] in sentiment.labels
    confidences = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert set(confidences) == set(sentiment.labels)
    assert math.isclose(sum(confidences.values()), 1.0, abs_tol=1e-5)
    for name, p in expected["probabilities"].items():
        assert confidences[name] == pytest.approx(p, abs=1e-6)

    # Every word of the text, with its pieces' summed push: together they add up to the decision.
    explanation = sentiment.explain(text, method=method, steps=limits.IG_STEPS)
    assert_chips(coloured, expected_words(sentiment.tokenizer, explanation.ids, explanation.attributions))
    assert " ".join(word for word, _ in chips(coloured)) == text
    assert sum(v for _, v in chips(coloured)) == pytest.approx(sum(explanation.attributions), abs=1e-4)
    assert expected["label"] in summary and f"{100 * expected['score']:.1f}%" in summary
    assert show.METHOD_NOTES[method].split("**")[1] in details and "truncated" not in details.lower()
    assert f"{sum(explanation.attributions):+.3f}" in details

    # The strongest pushes: the words with the largest |push|, strongest first, each towards its label.
    words = show.word_spans(sentiment.tokenizer, explanation.ids, explanation.attributions)
    pushes_by_size = sorted((abs(w.value) for w in words), reverse=True)
    shown = [row[1] for row in pushes["data"]]
    assert len(shown) == min(show.TOP_ROWS, len(words))
    assert [abs(v) for v in shown] == pytest.approx(pushes_by_size[: len(shown)], abs=1e-4)
    for row in pushes["data"]:
        if row[1] != 0:  # (a push that rounds to 0 may still lean either way)
            assert row[2] == (sentiment.labels[-1] if row[1] > 0 else sentiment.labels[0])


def biased(model, tiny_tokenizer, towards: int) -> SentimentPipeline:
    """The tiny classifier with its bias pushed hard towards label `towards` (0 negative, 1 positive): every
    text gets that verdict, whatever the tokens push."""
    clone = type(model)(vocab_size=model.embedding.num_embeddings, embed_dim=16, hidden_size=12).eval()
    clone.load_state_dict(model.state_dict())
    with torch.no_grad():
        clone.classifier.bias.copy_(torch.tensor([10.0, -10.0] if towards == 0 else [-10.0, 10.0]))
    return SentimentPipeline(clone, tiny_tokenizer, device=torch.device("cpu"), source="biased test model")


def test_colours_follow_the_sentiment_not_the_verdict(tiny_sentiment, tiny_tokenizer, pipelines):
    """A push towards positive is blue and one towards negative orange, whichever way the verdict went: the same
    text gets the same colours from two classifiers that differ only in their verdict."""
    text = "The plot was thin but the acting saved it"
    coloured = {}
    for verdict in (0, 1):
        sentiment = biased(tiny_sentiment, tiny_tokenizer, verdict)
        probabilities, coloured[verdict], *_ = SentimentHandlers(sentiment).classify(text)
        assert max(probabilities, key=probabilities.get) == sentiment.labels[verdict]
    backgrounds = [re.findall(r'class="sq-chip" style="background:(#[0-9a-f]{6})', coloured[v]) for v in (0, 1)]
    assert backgrounds[0] == backgrounds[1]  # no colour flips with the verdict
    attributions = biased(tiny_sentiment, tiny_tokenizer, 1).explain(text).attributions
    assert any(a > 0 for a in attributions) and any(a < 0 for a in attributions)  # both colours are exercised
    for (word, value), background in zip(chips(coloured[1]), backgrounds[1]):
        red, _, blue = plots._rgb(background)
        assert (blue > red) if value > 0 else (red > blue) if value < 0 else True, word


def test_trajectory(client, pipelines):
    """P(positive) after each token, as the pipeline computes it."""
    sentiment, _ = pipelines
    text = "The plot was thin but the acting saved it"
    line = plot_json(client.predict(text, api_name="/trajectory"))["data"][0]
    ids = sentiment.tokenizer.encode(text)
    words = sentiment.tokenizer.words(ids, [0.0] * len(ids))
    # After each word: P(positive) of the text up to the word's last piece.
    expected = [float(sentiment.probabilities([ids[: max(w.positions) + 1]])[0, -1]) for w in words]
    assert list(array(line["x"])) == list(range(1, len(words) + 1))
    assert array(line["y"]) == pytest.approx(expected, abs=1e-6)
    assert_error(client, " ", api_name="/trajectory", says="empty")


def test_a_long_texts_trajectory_is_spaced_exact_and_says_so(client, pipelines):
    """A long text gets at most 64 points, at evenly spaced word ends (the last always among them), each the
    model's P(positive) of that prefix read alone; the chart's title says how many of how many. A short text's
    chart has a point per word and says nothing of spacing."""
    sentiment, _ = pipelines
    text = " ".join(["The plot was thin but the acting saved it, and I loved it."] * 12)
    ids = sentiment.tokenizer.encode(text)
    assert len(ids) <= sentiment.max_tokens  # read whole: the spacing, not a truncation, is under test
    words = sentiment.tokenizer.words(ids, [0.0] * len(ids))
    figure = plot_json(client.predict(text, api_name="/trajectory"))
    xs = [int(x) for x in array(figure["data"][0]["x"])]
    assert len(words) > 64 and len(xs) == 64 and xs[-1] == len(words)
    gaps = np.diff([0, *xs])
    assert gaps.min() >= 1 and gaps.max() - gaps.min() <= 1  # evenly spaced
    expected = [float(sentiment.probabilities([ids[: max(words[x - 1].positions) + 1]])[0, -1]) for x in xs]
    assert array(figure["data"][0]["y"]) == pytest.approx(expected, abs=1e-5)
    assert f"64 of {len(words)} word ends, evenly spaced; each point exact" in figure["layout"]["title"]["text"]
    short = plot_json(client.predict("I loved it", api_name="/trajectory"))
    assert "spaced" not in short["layout"]["title"]["text"]


def test_classify_bad_input(client, pipelines):
    sentiment, _ = pipelines
    assert_error(client, "", api_name="/classify", says="empty")
    assert_error(client, " \n\t ", api_name="/classify", says="empty")
    assert_error(client, "fine", "<b>magic</b>", api_name="/classify",
                 says="method must be one of: integrated_gradients, evidence.")

    # HTML comes back as text, character for character, escaped in the coloured text.
    label, coloured, *_ = client.predict(HTML_TEXT, api_name="/classify")
    assert chip_text(coloured) == HTML_TEXT and label["label"] in sentiment.labels
    assert "<img" not in coloured and "<script" not in coloured

    for name, text in ODD_TEXTS.items():
        label, coloured, *_ = client.predict(text, api_name="/classify")
        assert label["label"] in sentiment.labels, name
        assert "\x00" not in coloured and "\u202e" not in coloured, name

    # 1 MB: a verdict, and the page says what the model read.
    long_text = "great movie. " * 80_000
    label, coloured, _, _, notes = client.predict(long_text, "evidence", api_name="/classify")
    assert label["label"] in sentiment.labels
    assert f"Truncated to {sentiment.max_tokens} tokens" in notes
    # The skipped middle sits exactly where the kept start ends: the start's words, the mark, the end's words.
    shown = chips(coloured)
    [skipped] = [i for i, (word, _) in enumerate(shown) if "middle skipped" in word]
    half = limits.MAX_CHARS // 2
    explanation = sentiment.explain(long_text[:half] + " " + long_text[-half:])  # the page keeps both ends
    cut = explanation.middle_skipped_at
    assert cut == sentiment.max_tokens // 2
    head = expected_words(sentiment.tokenizer, explanation.ids[:cut], explanation.attributions[:cut])
    tail = expected_words(sentiment.tokenizer, explanation.ids[cut:], explanation.attributions[cut:], False)
    assert_chips(shown[:skipped], head)
    assert_chips(shown[skipped + 1:], tail)


# -- /next_words -------------------------------------------------------------------------------------------------


def test_next_words(client, pipelines):
    _, nextword = pipelines
    label, notes = client.predict("The acting was", 5, api_name="/next_words")
    probabilities = [c["confidence"] for c in label["confidences"]]
    assert len(probabilities) == 5
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1 + 1e-6
    expected = nextword.next_words("The acting was", k=5)
    assert [c["label"] for c in label["confidences"]] == [word for word, _ in expected]
    assert probabilities == pytest.approx([p for _, p in expected], abs=1e-6)
    assert f"{100 * sum(probabilities):.1f}%" in notes

    assert_error(client, "   ", 5, api_name="/next_words", says="empty")
    label, _ = client.predict(HTML_TEXT, 3, api_name="/next_words")
    assert len(label["confidences"]) == 3


# -- /generate ---------------------------------------------------------------------------------------------------


def test_generate(client, pipelines):
    _, nextword = pipelines
    settings = dict(max_new_tokens=12, temperature=0.9, top_k=40, top_p=0.95, seed=7)
    args = ("The acting was", *settings.values())
    first = client.predict(*args, api_name="/generate")
    second = client.predict(*args, api_name="/generate")
    assert first == second
    assert first.startswith("The acting was") and len(first) > len("The acting was")
    assert first == nextword.generate("The acting was", **settings, whole_words=True)

    # Streamed: every update extends the prompt, and the last one is the whole text.
    job = client.submit(*args, api_name="/generate")
    job.result()
    updates = job.outputs()
    assert updates and updates[-1] == first
    assert all(update.startswith("The acting was") for update in updates)

    greedy = client.predict("The acting was", 5, 0, 0, 1, 0, api_name="/generate")
    assert greedy == nextword.generate("The acting was", max_new_tokens=5, temperature=0, top_k=0, top_p=1,
                                       whole_words=True)


def test_a_blank_seed_gets_a_fresh_one_that_is_shown_and_repeats_the_text(pipelines):
    """The page fills a blank seed with a fresh one, generates with it, and names it afterwards: typing that seed
    gives the very text again. The greedy continuation is the library's temperature-0 text."""
    handlers = NextWordHandlers(pipelines[1])
    seeds = set()
    for _ in range(3):
        seed, writing = fresh_seed(" ")
        assert writing == f"Seed **{seed}**: writing…"
        *_, text = handlers.generate("The acting was", 8, 1.5, 0, 1.0, seed)
        greedy, note = handlers.finish("The acting was", 8, 1.5, 0, 1.0, seed, True)
        assert note.startswith(f"Seed **{seed}**: type it")
        assert text == pipelines[1].generate("The acting was", max_new_tokens=8, temperature=1.5, top_k=0, top_p=1.0,
                                             seed=int(seed), whole_words=True)
        assert greedy == pipelines[1].generate("The acting was", max_new_tokens=8, temperature=0, whole_words=True)
        seeds.add(seed)
    assert len(seeds) == 3  # fresh each time
    assert fresh_seed(" 12 ")[0] == "12"
    assert handlers.finish("The acting was", 8, 1.5, 0, 1.0, "12", False)[0] == ""
    with pytest.raises(ValueError, match="whole number"):
        handlers.finish("The acting was", 8, 1.5, 0, 1.0, "1.5", False)


def test_a_temperature_too_small_to_divide_by_is_greedy_and_the_page_says_so(pipelines):
    """1e-320 is a valid temperature below float32's range: the text is the greedy one, and the note beside the
    generation says that greedy decoding was used; an ordinary temperature gets no such note."""
    handlers, nextword = NextWordHandlers(pipelines[1]), pipelines[1]
    *_, text = handlers.generate("The acting was", 8, 1e-320, 0, 1.0, "12")
    assert text == nextword.generate("The acting was", max_new_tokens=8, temperature=0, whole_words=True)
    note = handlers.finish("The acting was", 8, 1e-320, 0, 1.0, "12", False)[1]
    assert note.startswith("Seed **12**") and "greedy decoding (temperature 0) was used" in note.replace("\\", "")
    assert "greedy" not in handlers.finish("The acting was", 8, 0.8, 0, 1.0, "12", False)[1]


def test_generate_bad_input(client):
    assert_error(client, "", 5, 0.8, 50, 0.95, 0, api_name="/generate", says="empty")
    # Settings out of range are refused with a sentence naming the setting and its range.
    assert_error(client, "The acting was", 5, 0.8, 50, 0.0, 0, api_name="/generate",
                 says="top_p must be a number above 0 and at most 1.")
    assert_error(client, "The acting was", 5000, 0.8, 50, 0.9, 0, api_name="/generate",
                 says=f"max_new_tokens must be a whole number from 1 to {limits.MAX_NEW_TOKENS.high}.")
    text = client.predict(HTML_TEXT, 3, 0.8, 50, 0.95, 0, api_name="/generate")
    assert text.startswith(HTML_TEXT)


# -- /surprisal --------------------------------------------------------------------------------------------------


def test_surprisal(client, pipelines):
    _, nextword = pipelines
    text = "The movie was not good at all."
    coloured, surprise, summary, notes = client.predict(text, api_name="/surprisal")
    rows = nextword.surprisal(text)
    ids = nextword.tokenizer.encode(text)
    words = expected_words(nextword.tokenizer, ids, [r["bits"] for r in rows])  # a word's bits: its pieces' sum
    assert_chips(coloured, words, abs_tol=1e-3)
    assert [row[0] for row in surprise["data"]] == [word for word, _ in words]
    assert [row[1] for row in surprise["data"]] == pytest.approx([bits for _, bits in words], abs=1e-3)
    for row in surprise["data"]:
        assert row[2] == pytest.approx(2.0 ** -row[1], rel=1e-2, abs=1e-5)
    score = nextword.score(text)
    assert f"per-token perplexity {score['perplexity']:.1f}" in notes
    assert f"{score['bits_per_char']:.3f} bits per character" in notes
    assert f"{score['bits_per_char']:.2f} bits per character" in summary


def test_surprisal_odd_text(client):
    assert_error(client, "", api_name="/surprisal", says="empty")
    coloured, *_ = client.predict(HTML_TEXT, api_name="/surprisal")
    assert chip_text(coloured) == HTML_TEXT and "<img" not in coloured
    # An emoji is four byte pieces: one word, its bits the sum of its pieces' bits.
    coloured, surprise, *_ = client.predict(ODD_TEXTS["emoji"], api_name="/surprisal")
    assert "".join(word for word, _ in chips(coloured)) == ODD_TEXTS["emoji"].replace(" ", "")
    emoji_rows = [row for row in surprise["data"] if row[0] == "🙂"]
    assert emoji_rows and emoji_rows[0][3] >= 4
    coloured, *_ = client.predict(ODD_TEXTS["control"], api_name="/surprisal")
    assert "␀" in coloured and "\x00" not in coloured


# -- /inspect ----------------------------------------------------------------------------------------------------


def chart_lines(chart) -> dict[str, np.ndarray]:
    """The unit chart's lines by signal ("c", "f", ...), its marks left out."""
    return {t["name"].split(" ")[0]: array(t["y"]) for t in plot_json(chart)["data"] if "·" in t["name"]}


def test_inspect(client, pipelines):
    sentiment, nextword = pipelines
    text = "not good at all"
    heatmap, unit_text, chart, saturation, notes = client.predict(
        text, "sentiment", 0, "backward", "f", "index", 3, "top", "pieces", api_name="/inspect"
    )
    traced = gates.trace_text(sentiment.model, sentiment.tokenizer, text)
    values = traced.layers[(0, 1)]
    expected = values["f"].numpy()
    cell = plot_json(heatmap)["data"][0]
    z = array(cell["z"])
    assert z.shape == (len(traced.tokens), sentiment.model.rnn.hidden_size)  # pieces x units
    assert cell["x"] == [str(u) for u in range(sentiment.model.rnn.hidden_size)]  # the unit numbers, in order
    np.testing.assert_allclose(z, expected, atol=1e-6)
    assert plot_json(heatmap)["data"][0]["colorbar"]["title"]["text"].startswith("f")

    # The text coloured by unit 3: its forget gate at every piece; its line chart: c, h and the gates.
    assert [v for _, v in chips(unit_text)] == pytest.approx(expected[:, 3], abs=1e-4)
    lines = chart_lines(chart)
    assert set(lines) == {"c", "h", "i", "f", "o"}
    for name, line in lines.items():
        np.testing.assert_allclose(line, values[name][:, 3].numpy(), atol=1e-5)
    assert {row[0] for row in saturation["data"]} == {"i", "f", "o"}
    assert "Unit 3" in notes

    # Words (the default): c after each word's last piece, the gates averaged over its pieces.
    heatmap, unit_text, chart, *_ = client.predict(
        text, "sentiment", 0, "backward", "c", "index", 3, "top", "words", api_name="/inspect")
    rows = sentiment.tokenizer.words(traced.ids, [0.0] * len(traced.ids))
    assert [w for w, _ in chips(unit_text)] == [show.shown(r.text) for r in rows]
    c, f = values["c"].numpy(), values["f"].numpy()
    np.testing.assert_allclose(array(plot_json(heatmap)["data"][0]["z"]),
                               np.stack([c[r.positions[-1]] for r in rows]), atol=1e-6)
    np.testing.assert_allclose(chart_lines(chart)["f"], [f[r.positions, 3].mean() for r in rows], atol=1e-5)

    # Orderings: variance puts the most variable unit first; contribution ranks units by their push.
    heatmap, *_ = client.predict(text, "sentiment", 0, "forward", "h", "variance", None, "top", "pieces",
                                 api_name="/inspect")
    h = traced.layers[(0, 0)]["h"]
    assert plot_json(heatmap)["data"][0]["x"][0] == str(int(gates.rank_units_by_variance(h)[0]))
    *_, notes = client.predict(text, "sentiment", 0, "forward", "h", "contribution", None, api_name="/inspect")
    assert "logit margin" in notes


def test_the_heatmap_shows_the_top_units_unless_all_are_asked_for(pipelines, monkeypatch):
    monkeypatch.setattr(plots, "TOP_UNITS", 4)
    handlers = InspectorHandlers({"sentiment": pipelines[0], "nextword": pipelines[1]}, None)
    hidden = pipelines[0].model.rnn.hidden_size
    order = gates.rank_units_by_variance(gates.trace_text(pipelines[0].model, pipelines[0].tokenizer,
                                                          "not good at all").layers[(0, 0)]["i"])
    for units, shown in (("top", 4), ("all", hidden)):
        heatmap, *_ = handlers.inspect_gates("not good at all", "sentiment", 0, "forward", "i", "variance", None,
                                             units)
        assert list(heatmap.data[0].x) == [str(int(u)) for u in order[:shown]]
    with pytest.raises(ValueError, match="units must be one of: top, all"):
        handlers.inspect_gates("not good at all", units="some")


def test_find_units(client, pipelines):
    sentiment, _ = pipelines
    text = "The plot was thin but the acting saved it"
    found, note = client.predict(text, "sentiment", 0, "forward", "thin but", "memory", api_name="/find_units")
    traced = gates.trace_text(sentiment.model, sentiment.tokenizer, text)
    c = traced.layers[(0, 0)]["c"].numpy()
    words = sentiment.tokenizer.words(traced.ids, [0.0] * len(traced.ids))
    marked = [p for w in words if w.text.strip() in ("thin", "but") for p in w.positions]
    first, last = min(marked), max(marked)
    before = c[first - 1] if first else np.zeros(c.shape[1])
    steps = np.diff(np.vstack([np.zeros((1, c.shape[1])), c]), axis=0)
    jump = np.abs(c[last] - before) / len(marked) / (np.abs(steps).mean(0) + 1e-6)
    units = [row[0] for row in found["data"]]
    assert units[:3] == list(np.argsort(-jump, kind="stable")[:3])
    top = units[0]
    assert found["data"][0][1] == f"{before[top]:+.2f} → {c[last, top]:+.2f}"
    assert f"unit {top} on top" in note
    assert_error(client, text, "sentiment", 0, "forward", "absent", "memory", api_name="/find_units",
                 says="not in the text")


def test_inspect_language_model(client, pipelines):
    _, nextword = pipelines
    rnn = nextword.model.rnn
    heatmap, *_ = client.predict("I loved it", "nextword", 2, "forward", "c", "variance", None, "all", "pieces",
                                 api_name="/inspect")
    z = array(plot_json(heatmap)["data"][0]["z"])
    tokens = nextword.tokenizer.encode("I loved it")
    assert z.shape == (len(tokens) + 1, rnn.hidden_size)  # the begin-of-text token, then the text
    assert_error(client, "I loved it", "nextword", 0, "backward", "f", "index", None, api_name="/inspect",
                 says="forward only")
    assert_error(client, "I loved it", "nextword", 0, "forward", "f", "contribution", None, api_name="/inspect",
                 says="classifier only")
    assert_error(client, "I loved it", "nextword", rnn.num_layers, "forward", "f", "index", None,
                 api_name="/inspect", says=f"layers 0 to {rnn.num_layers - 1}")
    assert_error(client, "I loved it", "nextword", 0, "forward", "f", "index", rnn.hidden_size,
                 api_name="/inspect", says="Units run from 0")
    assert_error(client, "  ", "sentiment", 0, "forward", "f", "index", None, api_name="/inspect", says="empty")
    assert_error(client, "I loved it", "nextword", 0, "forward", "f", "index", "seven", api_name="/inspect",
                 says="whole number")
    *_, notes = client.predict("I loved it", "nextword", 0, "forward", "f", "index", " ", api_name="/inspect")
    assert "**Unit 0**" in notes and "rank 1 by unit index" in notes  # blank: the first unit of the order


def test_inspect_odd_text(client):
    heatmap, unit_text, *_ = client.predict(HTML_TEXT, "sentiment", 0, "forward", "i", "index", 0,
                                            api_name="/inspect")
    labels = plot_json(heatmap)["data"][0]["y"]
    assert not any("<" in label or ">" in label for label in labels)  # escaped for plotly
    assert "<img" not in unit_text
    for text in ODD_TEXTS.values():
        heatmap, unit_text, *_ = client.predict(text, "sentiment", 0, "forward", "g", "variance", None,
                                                api_name="/inspect")
        assert chips(unit_text) and "<0x" not in unit_text


def test_the_page_shows_an_error_beside_its_control_and_keeps_the_rest(pipelines, caplog):
    """With the page flag a bad input fills the message and skips every other output; without it (a script) the
    error is raised. An InputError is the person's and is not logged; anything else is logged with its traceback
    and shown as one plain line."""
    handlers = InspectorHandlers({"sentiment": pipelines[0], "nextword": pipelines[1]}, None)
    inspect = endpoint(handlers.inspect_gates, inputs=7, outputs=5)
    *kept, message = inspect("not good at all", "sentiment", 0, "forward", "f", "index", "999", True)
    assert kept == [gr.skip()] * 5 and message.startswith("Units run from 0")
    *shown, message = inspect("not good at all", "sentiment", 0, "forward", "f", "index", "3", True)
    assert message == "" and shown[0] is not None
    with pytest.raises(gr.Error, match="Units run from 0"):
        inspect("not good at all", "sentiment", 0, "forward", "f", "index", "999")
    assert not [r for r in caplog.records if r.name == "seqdemo.web"]

    def broken(text):
        raise RuntimeError("a bug of ours, not the visitor's: " + text)

    *kept, message = endpoint(broken, inputs=1, outputs=2)("secret <b>", True)
    assert kept == [gr.skip()] * 2
    assert message == "Something went wrong inside the model (RuntimeError); the server log has the details."
    [record] = [r for r in caplog.records if r.name == "seqdemo.web"]
    assert record.exc_info and "secret <b>" in str(record.exc_info[1])

    def stream(text):
        yield text
        raise ValueError("not an InputError: ours to fix")

    assert list(endpoint(stream, inputs=1, outputs=1)("a", True)) == [
        ("a", ""), (gr.skip(), "Something went wrong inside the model (ValueError); the server log has the details.")]


def test_export_trace(client, pipelines, tmp_path):
    sentiment, _ = pipelines
    npz = client.predict("not good at all", "sentiment", "npz", api_name="/export_trace")
    with np.load(npz, allow_pickle=False) as arrays:
        traced = gates.trace_text(sentiment.model, sentiment.tokenizer, "not good at all")
        assert list(arrays["tokens"]) == traced.tokens
        # Downloads hold float16 (seqdemo.web.exports): about three significant digits.
        np.testing.assert_allclose(arrays["layer0_backward/c"], traced.layers[(0, 1)]["c"].numpy(), rtol=1e-3,
                                   atol=1e-4)
    path = client.predict("I loved it", "nextword", "json", api_name="/export_trace")
    import gzip  # a JSON download may come gzipped (seqdemo.web.exports)

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as file:
        data = json.load(file)
    assert {"tokens", "ids", "truncated", "layer2_forward/f"} <= set(data)
    assert_error(client, "", "sentiment", "npz", api_name="/export_trace", says="empty")


def test_exports_are_counted_per_visitor(client):
    """Each caller's downloads go to its own share of the store, named by gradio's session hash."""
    from pathlib import Path

    from gradio.utils import get_upload_folder

    from seqdemo.web.exports import visitor_key

    other = gradio_client.Client(client.src, verbose=False, analytics_enabled=False)
    store = Path(get_upload_folder()) / "seqdemo-exports"
    for caller in (client, other):
        caller.predict("not good at all", "sentiment", "npz", api_name="/export_trace")
        assert list(store.glob(f"*/{visitor_key(caller.session_hash)}/**/seqdemo-gates-sentiment.npz"))
    assert visitor_key(client.session_hash) != visitor_key(other.session_hash)


# -- the model card ----------------------------------------------------------------------------------------------


def test_metrics_come_from_the_checkpoint_folder(tmp_path, pipelines):
    sentiment, _ = pipelines
    folder = tmp_path / "checkpoints" / "sentiment"
    folder.mkdir(parents=True)
    local = type("P", (), {"folder": folder})()
    assert "not measured yet" in metrics_markdown(local, "Sentiment model")
    (folder / "metrics.json").write_text(json.dumps({
        "command": "python -m seqdemo.experiments.evaluate checkpoints/sentiment",
        "hardware": "CPU",
        "results": {"accuracy imdb": 0.8765},
    }))
    card = metrics_markdown(local, "Sentiment model")
    assert "0\\.8765" in card and "accuracy imdb" in card
    assert "not measured yet" in metrics_markdown(sentiment, "Sentiment model")
