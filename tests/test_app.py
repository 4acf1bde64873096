"""The page's API, called the way a user's script calls it: gradio_client against the app served in-process,
built around the tiny untrained models of conftest.py. Every number checked here is compared with what the
library itself computes, so the page cannot show a number the model did not produce."""

from __future__ import annotations

import base64
import json
import math
import os
import socket

import numpy as np
import pytest
import torch

import app
from seqdemo import gates
from seqdemo import presentation as show
from seqdemo.generation import NextWordPipeline
from seqdemo.sentiment import SentimentPipeline

# gradio's queue uses pandas options that pandas 3 deprecates: its warnings, not the page's.
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting.*"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated.*"),
]
gradio_client = pytest.importorskip("gradio_client")
AppError = gradio_client.exceptions.AppError

HTML_TEXT = '<img src=x onerror="window.pwned=1"> <script>window.pwned=1</script> <b>bold</b>'
ODD_TEXTS = {
    "emoji": "I loved it 🙂🎬👍",
    "cjk": "这部电影很好看。映画は良かった",
    "rtl": "הסרט היה טוב מאוד \u202eevil\u202c",
    "control": "good\x00movie\x07\x1b[31m red\x7f",
}


@pytest.fixture(scope="module")
def pipelines(tiny_tokenizer, tiny_sentiment, tiny_nextword):
    cpu = torch.device("cpu")
    return (
        SentimentPipeline(tiny_sentiment, tiny_tokenizer, device=cpu, source="tiny untrained test model"),
        NextWordPipeline(tiny_nextword, tiny_tokenizer, device=cpu, source="tiny untrained test model"),
    )


@pytest.fixture(scope="module")
def client(pipelines):
    demo = app.build_demo(*pipelines)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    try:
        yield gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False)
    finally:
        demo.close()


def plot_json(value: dict) -> dict:
    assert value["type"] == "plotly"
    return json.loads(value["plot"])


def array(value) -> np.ndarray:
    """A plotly array from the figure JSON: a plain list, or plotly's typed-array form {dtype, bdata, shape}."""
    if isinstance(value, dict):
        data = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return data.reshape([int(n) for n in str(value.get("shape", len(data))).split(",")])
    return np.asarray(value, dtype=float)


def joined(highlighted: list[dict]) -> str:
    return "".join(span["token"] for span in highlighted)


def assert_error(client, *args, api_name: str, says: str) -> None:
    with pytest.raises(AppError) as raised:
        client.predict(*args, api_name=api_name)
    assert says in str(raised.value)
    assert "Traceback" not in str(raised.value)


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


def test_the_page_offers_every_endpoint(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/classify", "/next_words", "/generate", "/surprisal", "/inspect", "/export_trace", "/trajectory"} <= set(
        endpoints
    )


# -- /classify ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["evidence", "integrated_gradients"])
def test_classify(client, pipelines, method):
    sentiment, _ = pipelines
    text = "The plot was thin but the acting saved it"
    label, highlighted, pushes, notes = client.predict(text, method, api_name="/classify")

    expected = sentiment.predict(text)[0]
    assert label["label"] == expected["label"] in sentiment.labels
    confidences = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert set(confidences) == set(sentiment.labels)
    assert math.isclose(sum(confidences.values()), 1.0, abs_tol=1e-5)
    for name, p in expected["probabilities"].items():
        assert confidences[name] == pytest.approx(p, abs=1e-6)

    # Every token of the text, coloured in [-1, 1], the strongest at exactly +-1.
    assert joined(highlighted) == text
    scores = [span["class_or_confidence"] for span in highlighted]
    assert all(-1 <= s <= 1 for s in scores) and max(abs(s) for s in scores) == pytest.approx(1.0)
    explanation = sentiment.explain(text, method=method, steps=show.IG_STEPS)
    sign = 1 if expected["label"] == sentiment.labels[-1] else -1
    strongest = max(abs(a) for a in explanation.attributions)
    assert len(highlighted) == len(explanation.attributions)
    for span, attribution in zip(highlighted, explanation.attributions):
        assert span["class_or_confidence"] == pytest.approx(sign * attribution / strongest, abs=1e-3)
    assert show.METHOD_NOTES[method].split("**")[1] in notes and "truncated" not in notes.lower()
    assert f"{sum(explanation.attributions):+.3f}" in notes

    # The strongest pushes: the spans with the largest |push|, strongest first, each towards its label.
    pushes_by_size = sorted((abs(span_push) for span_push in explanation.attributions), reverse=True)
    shown = [row[1] for row in pushes["data"]]
    assert len(shown) == min(show.TOP_ROWS, len(explanation.attributions))
    assert [abs(v) for v in shown] == pytest.approx(pushes_by_size[: len(shown)], abs=1e-4)
    for row in pushes["data"]:
        assert row[2] == (sentiment.labels[-1] if row[1] > 0 else sentiment.labels[0])


def biased(model, tiny_tokenizer, towards: int) -> SentimentPipeline:
    """The tiny classifier with its bias pushed hard towards label `towards` (0 negative, 1 positive): every
    text gets that verdict, whatever the tokens push."""
    clone = type(model)(vocab_size=model.embedding.num_embeddings, embed_dim=16, hidden_size=12).eval()
    clone.load_state_dict(model.state_dict())
    with torch.no_grad():
        clone.classifier.bias.copy_(torch.tensor([10.0, -10.0] if towards == 0 else [-10.0, 10.0]))
    return SentimentPipeline(clone, tiny_tokenizer, device=torch.device("cpu"), source="biased test model")


@pytest.mark.parametrize("verdict", [0, 1])
def test_highlight_colours_follow_the_verdict(tiny_sentiment, tiny_tokenizer, pipelines, verdict):
    """Red (+) means towards the verdict whichever way it went: a negative verdict flips the log-odds' sign."""
    sentiment = biased(tiny_sentiment, tiny_tokenizer, verdict)
    text = "The plot was thin but the acting saved it"
    probabilities, highlighted, _, notes = app.Handlers(sentiment, pipelines[1]).classify(text)
    assert max(probabilities, key=probabilities.get) == sentiment.labels[verdict]
    attributions = sentiment.explain(text).attributions
    strongest = max(abs(a) for a in attributions)
    sign = 1 if verdict == 1 else -1
    assert [score for _, score in highlighted] == pytest.approx([sign * a / strongest for a in attributions],
                                                                abs=1e-3)
    assert any(a > 0 for a in attributions) and any(a < 0 for a in attributions)  # both colours are exercised


def test_trajectory(client, pipelines):
    """P(positive) after each token, as the pipeline computes it."""
    sentiment, _ = pipelines
    text = "The plot was thin but the acting saved it"
    line = plot_json(client.predict(text, api_name="/trajectory"))["data"][0]
    expected = sentiment.trajectory(text)
    assert list(array(line["x"])) == [n for n, _ in expected]
    assert array(line["y"]) == pytest.approx([p for _, p in expected], abs=1e-6)
    assert_error(client, " ", api_name="/trajectory", says="empty")


def test_classify_bad_input(client, pipelines):
    sentiment, _ = pipelines
    assert_error(client, "", api_name="/classify", says="empty")
    assert_error(client, " \n\t ", api_name="/classify", says="empty")
    assert_error(client, "fine", "<b>magic</b>", api_name="/classify",
                 says="method must be one of: evidence, integrated_gradients.")

    # HTML comes back as text, character for character.
    label, highlighted, *_ = client.predict(HTML_TEXT, api_name="/classify")
    assert joined(highlighted) == HTML_TEXT and label["label"] in sentiment.labels

    for name, text in ODD_TEXTS.items():
        label, highlighted, *_ = client.predict(text, api_name="/classify")
        assert label["label"] in sentiment.labels, name
        assert "\x00" not in joined(highlighted) and "\u202e" not in joined(highlighted), name

    # 1 MB: a verdict, and the page says what the model read.
    long_text = "great movie. " * 80_000
    label, highlighted, _, notes = client.predict(long_text, api_name="/classify")
    assert label["label"] in sentiment.labels
    assert f"Truncated to {sentiment.max_tokens} tokens" in notes
    # The skipped middle sits exactly where the kept start ends: the start's spans, the mark, the end's spans.
    [skipped] = [i for i, span in enumerate(highlighted) if "middle skipped" in span["token"]]
    explanation = sentiment.explain(show.clip(long_text, "head_tail")[0])
    cut = explanation.middle_skipped_at
    assert cut == sentiment.max_tokens // 2
    head = show.text_spans(sentiment.tokenizer, explanation.ids[:cut], explanation.attributions[:cut])
    assert skipped == len(head) and joined(highlighted[:skipped]) == "".join(s.text for s in head)


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
    assert first == nextword.generate("The acting was", **settings)

    # Streamed: every update extends the prompt, and the last one is the whole text.
    job = client.submit(*args, api_name="/generate")
    job.result()
    updates = job.outputs()
    assert updates and updates[-1] == first
    assert all(update.startswith("The acting was") for update in updates)

    greedy = client.predict("The acting was", 5, 0, 0, 1, 0, api_name="/generate")
    assert greedy == nextword.generate("The acting was", max_new_tokens=5, temperature=0, top_k=0, top_p=1)


def test_generate_bad_input(client):
    assert_error(client, "", 5, 0.8, 50, 0.95, 0, api_name="/generate", says="empty")
    # Settings out of range are refused with a sentence naming the setting and its range.
    assert_error(client, "The acting was", 5, 0.8, 50, 0.0, 0, api_name="/generate",
                 says="top_p must be a number above 0 and at most 1.")
    assert_error(client, "The acting was", 5000, 0.8, 50, 0.9, 0, api_name="/generate",
                 says=f"max_new_tokens must be a whole number from 1 to {app.MAX_NEW_TOKENS}.")
    text = client.predict(HTML_TEXT, 3, 0.8, 50, 0.95, 0, api_name="/generate")
    assert text.startswith(HTML_TEXT)


# -- /surprisal --------------------------------------------------------------------------------------------------


def test_surprisal(client, pipelines):
    _, nextword = pipelines
    text = "The movie was not good at all."
    highlighted, surprise, notes = client.predict(text, api_name="/surprisal")
    assert joined(highlighted) == text
    assert all(0 <= span["class_or_confidence"] <= 1 for span in highlighted)

    rows = nextword.surprisal(text)
    assert [row[0] for row in surprise["data"]] == [span["token"].replace(" ", "␣") if not span["token"].strip()
                                                     else span["token"] for span in highlighted]
    assert [row[1] for row in surprise["data"]] == pytest.approx([r["bits"] for r in rows], abs=1e-3)
    for row in surprise["data"]:
        assert row[2] == pytest.approx(2.0 ** -row[1], rel=1e-2, abs=1e-5)
    score = nextword.score(text)
    assert f"per-token perplexity {score['perplexity']:.1f}" in notes
    assert f"{score['bits_per_char']:.3f} bits per character" in notes


def test_surprisal_odd_text(client):
    assert_error(client, "", api_name="/surprisal", says="empty")
    highlighted, *_ = client.predict(HTML_TEXT, api_name="/surprisal")
    assert joined(highlighted) == HTML_TEXT
    # An emoji is four byte pieces: one span, its bits the sum of its pieces' bits.
    highlighted, surprise, _ = client.predict(ODD_TEXTS["emoji"], api_name="/surprisal")
    assert joined(highlighted) == ODD_TEXTS["emoji"]
    emoji_rows = [row for row in surprise["data"] if row[0] == "🙂"]
    assert emoji_rows and emoji_rows[0][3] == 4
    highlighted, *_ = client.predict(ODD_TEXTS["control"], api_name="/surprisal")
    assert "␀" in joined(highlighted) and "\x00" not in joined(highlighted)


# -- /inspect ----------------------------------------------------------------------------------------------------


def test_inspect(client, pipelines):
    sentiment, nextword = pipelines
    text = "not good at all"
    heatmap, unit_text, saturation, forget, notes = client.predict(
        text, "sentiment", 0, "backward", "f", "index", 3, api_name="/inspect"
    )
    traced = gates.trace_text(sentiment.model, sentiment.tokenizer, text)
    expected = traced.layers[(0, 1)]["f"].numpy()
    cell = plot_json(heatmap)["data"][0]
    z = array(cell["z"])
    assert z.shape == (len(traced.tokens), sentiment.model.rnn.hidden_size)  # tokens x units
    assert len(cell["y"]) == len(traced.tokens) and len(cell["x"]) == sentiment.model.rnn.hidden_size
    np.testing.assert_allclose(z, expected, atol=1e-6)
    assert plot_json(heatmap)["data"][0]["colorbar"]["title"]["text"].startswith("f")

    # The text coloured by unit 3: its forget gate at every token.
    assert [span["class_or_confidence"] for span in unit_text] == pytest.approx(expected[:, 3], abs=1e-4)
    assert {row[0] for row in saturation["data"]} == {"i", "f", "o"}
    forget_bars = array(plot_json(forget)["data"][0]["y"])
    np.testing.assert_allclose(forget_bars, expected.mean(1), atol=1e-5)
    assert "Unit 3" in notes

    # Orderings: variance puts the most variable unit first; contribution ranks units by their push.
    heatmap, *_ = client.predict(text, "sentiment", 0, "forward", "h", "variance", None, api_name="/inspect")
    h = traced.layers[(0, 0)]["h"]
    assert plot_json(heatmap)["data"][0]["x"][0] == f"unit {int(gates.rank_units_by_variance(h)[0])}"
    *_, notes = client.predict(text, "sentiment", 0, "forward", "h", "contribution", None, api_name="/inspect")
    assert "logit margin" in notes


def test_inspect_language_model(client, pipelines):
    _, nextword = pipelines
    rnn = nextword.model.rnn
    heatmap, *_ = client.predict("I loved it", "nextword", 2, "forward", "c", "variance", None, api_name="/inspect")
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
    for text in ODD_TEXTS.values():
        heatmap, unit_text, *_ = client.predict(text, "sentiment", 0, "forward", "g", "variance", None,
                                                api_name="/inspect")
        assert unit_text


def test_export_trace(client, pipelines, tmp_path):
    sentiment, _ = pipelines
    npz = client.predict("not good at all", "sentiment", "npz", api_name="/export_trace")
    with np.load(npz, allow_pickle=False) as arrays:
        traced = gates.trace_text(sentiment.model, sentiment.tokenizer, "not good at all")
        assert list(arrays["tokens"]) == traced.tokens
        np.testing.assert_allclose(arrays["layer0_backward/c"], traced.layers[(0, 1)]["c"].numpy(), atol=1e-6)
    path = client.predict("I loved it", "nextword", "json", api_name="/export_trace")
    data = json.loads(open(path, encoding="utf-8").read())
    assert {"tokens", "ids", "truncated", "layer2_forward/f"} <= set(data)
    assert_error(client, "", "sentiment", "npz", api_name="/export_trace", says="empty")


# -- the model card ----------------------------------------------------------------------------------------------


def test_metrics_come_from_the_checkpoint_folder(tmp_path, pipelines):
    sentiment, _ = pipelines
    folder = tmp_path / "checkpoints" / "sentiment"
    folder.mkdir(parents=True)
    local = type("P", (), {"folder": folder})()
    assert "not measured yet" in show.metrics_markdown(local, "Sentiment model")
    (folder / "metrics.json").write_text(json.dumps({
        "command": "python -m seqdemo.evaluate checkpoints/sentiment",
        "hardware": "CPU",
        "results": {"accuracy imdb": 0.8765},
    }))
    card = show.metrics_markdown(local, "Sentiment model")
    assert "0\\.8765" in card and "accuracy imdb" in card
    assert "not measured yet" in show.metrics_markdown(sentiment, "Sentiment model")
