"""The Compare tab (tracker issue 12): its endpoints called through gradio_client against the app served around a
tiny comparison run made here (seqdemo.experiments.compare on the tiny checkpoints of conftest.py), every number checked
against what the library computes from that run; the sentence shown when there is no usable comparison; and the
tab in a real browser, with screenshots at desktop and phone widths."""

from __future__ import annotations

from html import escape

import pytest
import torch
from conftest import (
    HTML_TEXT,
    ODD_TEXTS,
    PAYLOAD,
    array,
    assert_error,
    assert_inert,
    comparison_splits,
    open_page,
    open_tab,
    plot_json,
    save_checkpoint,
    serve_locally,
    shot,
    wait_for_text,
    wait_idle,
)

import app
from seqdemo.core.models import NextWordLSTM, SentimentClassifier
from seqdemo.experiments.compare import (
    CLAIMS,
    parse_args,
    run_comparison,
)
from seqdemo.inference.variants import (
    TITLES,
    load_results,
    load_variants,
    text_gradient_norms,
    verdicts,
)
from seqdemo.web import compare_view
from seqdemo.web.compare_view import GRADIENT_VARIANTS, LONG_REVIEW
from seqdemo.web.presentation import md

gradio_client = pytest.importorskip("gradio_client")
TEXT = "The plot was thin but the acting saved it"
@pytest.fixture(scope="module")
def compare_folder(tmp_path_factory, tiny_checkpoints):
    """A tiny comparison on the tiny language model's embedding: the three variants of the vanishing-gradient chart
    (a busy machine takes minutes over each run's evaluations), one seed, three training steps."""
    out = tmp_path_factory.mktemp("compare")
    settings = parse_args(["--tiny", "--seeds", "1", "--threads", "1", "--variants", ",".join(GRADIENT_VARIANTS),
                           "--out", str(out), "--embedding-from", str(tiny_checkpoints["nextword"])])
    run_comparison(settings, comparison_splits())
    return out


@pytest.fixture(scope="module")
def url(pipelines, compare_folder):
    demo = app.build_demo(*pipelines, compare_folder=compare_folder)
    try:
        yield serve_locally(demo, **app.launch_options())
    finally:
        demo.close()


@pytest.fixture(scope="module")
def client(url):
    return gradio_client.Client(url, verbose=False, analytics_enabled=False)


@pytest.fixture(scope="module")
def variants(compare_folder):
    return load_variants(compare_folder)


# -- through gradio_client ---------------------------------------------------------------------------------------


def test_the_results_endpoint_shows_the_comparison_it_was_given(client, compare_folder):
    results = load_results(compare_folder)
    table, claims, by_length, speed = client.predict(api_name="/compare_results")
    assert table["headers"] == compare_view.results_table(results)["headers"]
    assert [row[0] for row in table["data"]] == [TITLES[name] for name in GRADIENT_VARIANTS]
    for row, variant in zip(table["data"], results["variants"].values()):
        assert row[2] == f"{variant['parameters']:,}"
        imdb = variant["test_accuracy"]["imdb"]["mean"]
        assert row[3].startswith(f"{100 * imdb:.1f}%")
    # One verdict line per claim, with the verdict the numbers gave (Markdown-escaped), and the equal-data line.
    assert claims.count("**") == 2 * len(CLAIMS) + 2
    for claim in results["claims"]:
        assert f"**{md(claim['reading'])}**" in claims
    assert "**At equal data:**" in claims and "Same minutes, not the same data" in claims

    # One row per variant, one bar per length group (plotly reads the names as markup: "<" comes escaped).
    bars = plot_json(by_length)["data"]
    assert [bar["name"] for bar in bars] == [escape(name) for name in compare_view.bucket_names(results).values()]
    for bar, bucket in zip(bars, ("short", "medium", "long")):
        assert list(bar["y"]) == [TITLES[name] for name in GRADIENT_VARIANTS]
        expected = [100 * variant["imdb_accuracy_by_length"][bucket]["mean"] for variant in results["variants"].values()]
        assert array(bar["x"]).tolist() == pytest.approx(expected)
    speeds = plot_json(speed)["data"][0]
    assert array(speeds["x"]).tolist() == pytest.approx(
        [v["tokens_per_second"]["mean"] for v in results["variants"].values()])


def test_every_variant_reads_the_visitors_text(client, variants):
    table, note, gradient = client.predict(TEXT, api_name="/compare_text")
    expected = verdicts(variants, TEXT)
    assert [row[0] for row in table["data"]] == [TITLES[name] for name in expected]
    assert [row[1] for row in table["data"]] == [answer["label"] for answer in expected.values()]
    tokens = next(iter(expected.values()))["tokens"]
    assert f"read {tokens} tokens" in note and "longer" not in note

    # The vanishing gradient: the RNN, the LSTM and the GRU, each token's gradient norm at its distance from the end.
    figure = plot_json(gradient)
    assert figure["layout"]["yaxis"]["type"] == "log"
    lines = [line for line in figure["data"] if line.get("showlegend") is not False]  # not the floor markers
    assert [line["name"] for line in lines] == [TITLES[name] for name in GRADIENT_VARIANTS]
    for line, name in zip(lines, GRADIENT_VARIANTS):
        _, norms = text_gradient_norms(variants[name], TEXT)
        assert array(line["x"]).tolist() == list(range(len(norms) - 1, -1, -1))
        assert array(line["y"]).tolist() == pytest.approx([max(n, 1e-10) for n in norms], rel=1e-4)


def test_bad_and_odd_text(client, variants):
    assert_error(client, "   ", api_name="/compare_text", says="The text is empty")
    # Typed HTML stays text: a plain table cell is never made of it, and the chart's hover labels are escaped.
    table, _, gradient = client.predict(HTML_TEXT, api_name="/compare_text")
    hover = " ".join(" ".join(line["text"]) for line in plot_json(gradient)["data"])
    assert "<" not in hover and "&lt;" in hover
    table, *_ = client.predict(ODD_TEXTS["emoji"], api_name="/compare_text")
    assert len(table["data"]) == len(variants)
    # A megabyte: clipped, read head and tail, and said so.
    _, note, _ = client.predict("a fine film. " * 80_000, api_name="/compare_text")
    kept = next(iter(variants.values())).max_tokens
    assert f"read {kept} tokens" in note and f"first and last {kept // 2} tokens" in note


def test_the_gate_inspector_opens_the_gru_variant(client, variants):
    # Its own gates (reset r, update z, candidate n) and its memory h, through the page's endpoints.
    import numpy as np

    from seqdemo.core import gates

    gru = variants["gru"]
    traced = gates.trace_text(gru.model, gru.tokenizer, TEXT)
    values = traced.layers[(0, 0)]
    heatmap, *_, notes = client.predict(TEXT, "gru", 0, "forward", "z", "index", 2, "all", "pieces",
                                        api_name="/inspect")
    np.testing.assert_allclose(array(plot_json(heatmap)["data"][0]["z"]), values["z"].numpy(), atol=1e-6)
    assert "Unit 2" in notes
    assert_error(client, TEXT, "gru", 0, "forward", "f", "index", None, api_name="/inspect", says="signal")

    # Finding units reads a GRU's memory h and its update gate z.
    found, _ = client.predict(TEXT, "gru", 0, "forward", "thin", "memory", api_name="/find_units")
    assert found["headers"][1] == "h before → after"
    h = values["h"].numpy()
    words = gru.tokenizer.words(traced.ids, [0.0] * len(traced.ids))
    (thin,) = [w.positions for w in words if w.text.strip() == "thin"]
    before = h[min(thin) - 1] if min(thin) else np.zeros(h.shape[1])
    steps = np.diff(np.vstack([np.zeros((1, h.shape[1])), h]), axis=0)
    jump = np.abs(h[max(thin)] - before) / len(thin) / (np.abs(steps).mean(0) + 1e-6)
    assert [row[0] for row in found["data"]][:3] == list(np.argsort(-jump, kind="stable")[:3])
    found, _ = client.predict(TEXT, "gru", 0, "forward", "thin", "gates", api_name="/find_units")
    assert found["headers"][3:] == ["z here (elsewhere)", "1 − z here (elsewhere)"]


def test_the_claims_say_what_the_equal_time_budget_means():
    """Under claims 2 and 3: the data each variant saw in the same minutes, the comparison at equal data with its
    sampling error, and that the small BiLSTM is not the Sentiment tab's model; numbers computed by hand."""
    def variant(title: str, speed: float, parameters: int = 100_000) -> dict:
        return {"title": title, "parameters": parameters, "tokens_per_second": {"mean": speed, "spread": 0, "n": 2}}

    results = {
        "command": "python -m seqdemo.experiments.compare", "hardware": "CPU",
        "recipe": {"run_minutes": 4.58, "valid_rows": 300},
        "variants": {"lstm": variant("LSTM", 90_000), "bilstm": variant("BiLSTM", 45_000, 103_394),
                     "gru": variant("GRU", 50_000)},
        "claims": [{"claim": n, "text": f"claim {n}", "verdict": "not supported", "reading": "not supported",
                    "line": "numbers"} for n in (2, 3)],
        "equal_training": {"tokens": 1_000_000, "approximation": "tokens ≈ seconds × tokens/s",
                           "valid_accuracy": {"lstm": {"mean": 0.62, "spread": 0.04, "n": 2},
                                              "gru": {"mean": 0.72, "spread": 0.04, "n": 2}}},
    }
    shown = compare_view.claims_markdown(results, "2 layers of 512 units per direction")
    lines = shown.splitlines()
    claim_2, claim_3 = (lines.index(f"{n}. *claim {n}* **not supported**: numbers") for n in (2, 3))
    # 45,000 / 90,000 = 0.50 and 50,000 / 90,000 = 0.56 of the LSTM's tokens in the same 4.58 minutes.
    assert lines[claim_2 + 1].startswith("   - *Same minutes, not the same data:* every run trained for 4.58 "
                                         "minutes, so the BiLSTM read 0.50× the LSTM's training tokens.")
    assert "At equal data" not in lines[claim_2 + 1]  # no BiLSTM curve in this file
    assert lines[claim_2 + 2] == ("   - This BiLSTM is the Compare tab's small one (24 units per direction, 103,394 "
                                  "trainable parameters), not the Sentiment tab's model (2 layers of 512 units per "
                                  "direction).")
    # sqrt(0.72 * 0.28 / 300 + 0.62 * 0.38 / 300) = 0.0382: a standard error of 3.8 points.
    assert lines[claim_3 + 1] == (
        "   - *Same minutes, not the same data:* every run trained for 4.58 minutes, so the GRU read 0.56× the LSTM's "
        "training tokens. At equal data (the first 1.0 M tokens): validation accuracy GRU 72\\.0% ± 2\\.0 vs LSTM "
        "62\\.0% ± 2\\.0 (+10.0 points; on 300 validation rows a difference has a standard error of 3.8 points).")
    assert lines[-1].startswith("**At equal data:** validation accuracy after the first 1.0 M training tokens")
    assert lines[-1].endswith("LSTM 62\\.0% ± 2\\.0, GRU 72\\.0% ± 2\\.0.")
    # The Sentiment model's size, read from a loaded model when the tab has one.
    classifier = SentimentClassifier(vocab_size=20, embed_dim=4, hidden_size=6, num_layers=3, bidirectional=False)
    assert compare_view.model_size(classifier) == "3 layers of 6 units"
    assert "not the Sentiment tab's model (3 layers of 6 units)" in compare_view.claims_markdown(
        results, compare_view.model_size(classifier))


# -- without a usable comparison ---------------------------------------------------------------------------------


def test_without_results_the_tab_says_so_and_the_page_works_on(pipelines, tmp_path):
    demo = app.build_demo(*pipelines, compare_folder=tmp_path / "nothing here")
    try:
        client = gradio_client.Client(serve_locally(demo, **app.launch_options()), verbose=False, analytics_enabled=False)
        for args, endpoint in (((), "/compare_results"), ((TEXT,), "/compare_text")):
            assert_error(client, *args, api_name=endpoint, says="python -m seqdemo.experiments.compare")
        label, *_ = client.predict(TEXT, "evidence", api_name="/classify")
        assert label["label"] in pipelines[0].labels
    finally:
        demo.close()
    _, sentence = compare_view.open_comparison(tmp_path / "nothing here")
    assert "is missing" in sentence and "python -m seqdemo.experiments.compare" in sentence


def test_variants_on_another_embedding_or_a_broken_file_give_one_sentence(compare_folder, tiny_tokenizer, tmp_path):
    torch.manual_seed(1)  # not the tiny language model of conftest.py: another embedding
    other = NextWordLSTM(vocab_size=tiny_tokenizer.vocab_size, embed_dim=16, hidden_size=16).eval()
    save_checkpoint(other, tiny_tokenizer, tmp_path / "other")
    comparison, sentence = compare_view.open_comparison(compare_folder, embedding_from=tmp_path / "other")
    assert comparison is None and "another embedding" in sentence and "python -m seqdemo.experiments.compare" in sentence

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json")
    comparison, sentence = compare_view.open_comparison(tmp_path / "broken")
    assert comparison is None and "cannot be loaded" in sentence and "python -m seqdemo.experiments.compare" in sentence


# -- in the browser ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)])
def test_the_compare_tab_renders(browser, url, width, height):
    context, page = open_page(browser, url, width, height)
    try:
        open_tab(page, "Compare")
        wait_for_text(page, "#compare-claims", "Measured by")
        assert "LSTM" in page.locator("#compare-table").inner_text()
        page.wait_for_selector("#compare-length .js-plotly-plot .barlayer path")
        page.wait_for_selector("#compare-speed .js-plotly-plot .barlayer path")
        assert not page.locator("#compare-missing").is_visible()
        # On arrival the page's example is already read by every variant, with its gradient chart.
        wait_for_text(page, "#compare-notes", "tokens of your text")
        assert all(TITLES[name] in page.locator("#compare-verdicts").inner_text() for name in GRADIENT_VARIANTS)
        page.wait_for_selector("#compare-gradient .js-plotly-plot .scatterlayer path")
        example_note = page.locator("#compare-notes").inner_text()

        page.fill("#compare-text textarea", PAYLOAD)
        page.click("#compare-button")
        page.wait_for_function("note => document.querySelector('#compare-notes').innerText !== note", arg=example_note)
        assert "tokens of your text" in page.locator("#compare-notes").inner_text()
        page.wait_for_selector("#compare-gradient .js-plotly-plot .scatterlayer path")
        shown = page.locator("#compare-verdicts").inner_text()
        assert all(TITLES[name] in shown for name in GRADIENT_VARIANTS)
        assert_inert(page)
        shot(page, f"10-compare-{width}px")
    finally:
        context.close()


@pytest.fixture(scope="module")
def vanishing_url(pipelines, compare_folder, tmp_path_factory):
    """The page around a copy of the tiny comparison whose RNN has no recurrent weights: its decision then depends on
    the last token alone, so the gradient of every earlier token is exactly 0 (what underflow gives a long text)."""
    import shutil

    import safetensors.torch

    folder = tmp_path_factory.mktemp("vanishing") / "compare"
    shutil.copytree(compare_folder, folder)
    weights = safetensors.torch.load_file(folder / "rnn" / "model.safetensors")
    weights = {k: torch.zeros_like(v) if k.startswith("rnn.weight_hh") else v for k, v in weights.items()}
    safetensors.torch.save_file(weights, folder / "rnn" / "model.safetensors")
    demo = app.build_demo(*pipelines, compare_folder=folder)
    try:
        yield serve_locally(demo, **app.launch_options())
    finally:
        demo.close()


GRADIENT_TRACES = """() => document.querySelector('#compare-gradient .js-plotly-plot').data
    .map(trace => ({name: trace.name, x: Array.from(trace.x), y: Array.from(trace.y)}))"""


@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)])
def test_the_gradient_chart_opens_on_a_long_review_and_draws_zeros_on_its_floor(browser, vanishing_url, width,
                                                                                height):
    context, page = open_page(browser, vanishing_url, width, height)
    try:
        open_tab(page, "Compare")
        assert page.locator("#compare-text textarea").input_value() == LONG_REVIEW
        assert len(LONG_REVIEW.split()) > 150  # a long review: the vanishing shows only over many steps
        page.wait_for_selector("#compare-gradient .js-plotly-plot .scatterlayer path")
        wait_for_text(page, "#compare-notes", "tokens of your text")
        traces = {trace["name"]: trace for trace in page.evaluate(GRADIENT_TRACES)}
        rnn = traces[TITLES["rnn"]]
        read = len(rnn["x"])
        assert read > 50 and rnn["x"] == list(range(read - 1, -1, -1))
        # No gap: every token has a value; the exact zeros (every token before the last) sit on the 1e-10 floor.
        assert all(y is not None for y in rnn["y"]) and rnn["y"][:-1] == [1e-10] * (read - 1) and rnn["y"][-1] > 1e-10
        floor = traces[f"{TITLES['rnn']}: below 1e-10"]
        assert floor["x"] == list(range(read - 1, 0, -1)) and floor["y"] == [1e-10] * (read - 1)
        assert "below 1e-10" in page.locator("#compare-gradient").inner_text()
        assert "Length matters" in page.locator("#compare-gradient").locator("xpath=..").inner_text() or \
            "Length matters" in page.content()
        shot(page, f"10-compare-gradient-floor-{width}px")
    finally:
        context.close()


def test_the_inspector_opens_the_gru_in_the_browser(browser, url):
    context, page = open_page(browser, url, 1280)
    try:
        open_tab(page, "Gate inspector")
        page.locator("#gates-model input").click()
        page.get_by_role("option", name=compare_view.variant_choice("gru")).click()
        # The signal choices become the GRU's, and the heatmap, the unit chart and the found units follow.
        wait_for_text(page, "#gates-signal", "update gate")
        assert "forget gate" not in page.locator("#gates-signal").inner_text()
        wait_for_text(page, "#gates-heatmap", "update gate z")
        wait_for_text(page, "#gates-found", "h before")
        assert not page.locator("#gates-direction").is_visible()  # the GRU variant reads forward only
        assert page.locator("#gates-error").inner_text().strip() == ""
        wait_idle(page)  # every chained event (controls, inspect, find units) has answered
        # No "not in the list of choices" toast: the LSTM's signal "f" must not reach the GRU's choices.
        assert page.locator("[data-testid='toast-body']").all_inner_texts() == []
        shot(page, "10-inspector-gru")
    finally:
        context.close()


def test_compare_examples_run_and_an_empty_text_keeps_the_results(browser, url):
    """As on every other tab: an example click runs it; an empty text leaves the results and says so once,
    beside the box, with no toast."""
    context, page = open_page(browser, url, 1280)
    try:
        open_tab(page, "Compare")
        wait_for_text(page, "#compare-notes", "tokens of your text")
        verdicts = page.locator("#compare-verdicts").inner_text()
        page.locator("#compare-text").locator("xpath=../..").get_by_text("I loved it", exact=True).first.click()
        page.wait_for_function("v => document.querySelector('#compare-verdicts').innerText !== v", arg=verdicts)
        wait_idle(page)
        shown = page.locator("#compare-verdicts").inner_text()
        page.fill("#compare-text textarea", "  ")
        page.click("#compare-button")
        page.wait_for_function("() => document.querySelector('#compare-error')?.innerText.includes('empty')")
        wait_idle(page)
        assert page.locator("#compare-error").inner_text().count("empty") == 1
        assert page.locator("#compare-verdicts").inner_text() == shown
        assert page.locator("[data-testid='toast-body']").all_inner_texts() == []
    finally:
        context.close()
