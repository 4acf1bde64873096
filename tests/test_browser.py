"""The page in a real browser (Playwright driving Debian's chromium): each tab is used as a person uses it, the
outputs must appear, typed HTML and script must stay text, and errors must read as a sentence. Screenshots of
every step land in screenshots/ (git-ignored: the folder ignores itself), or in $SEQDEMO_SCREENSHOTS.

Skipped when there is no browser, except in CI (CI=true), where a missing browser fails the run.
Set SEQDEMO_BROWSER_CHECKPOINTS=1 to serve the real checkpoints (seqdemo.load) instead of the tiny models.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
import torch

# gradio's queue uses pandas options that pandas 3 deprecates: its warnings, not the page's.
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting.*"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated.*"),
]
CHROMIUM = os.environ.get("SEQDEMO_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
SHOTS = Path(os.environ.get("SEQDEMO_SCREENSHOTS") or Path(__file__).resolve().parent.parent / "screenshots")
TIMEOUT = 60_000  # ms: the machine may be busy

# Each payload sets a flag if it ever runs; alert() also opens a dialog, which is recorded.
PAYLOAD = (
    '<img src=x onerror="window.__xss=1;alert(1)"> <script>window.__xss=2;alert(2)</script> '
    '<svg onload="window.__xss=3"></svg> <b>bold</b>'
)


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no chromium at {CHROMIUM}"
    return None


@pytest.fixture(scope="module")
def browser():
    missing = _missing_browser()
    if missing:
        if IN_CI:
            pytest.fail(f"CI needs the browser tests: {missing}", pytrace=False)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def url(browser, tiny_tokenizer, tiny_sentiment, tiny_nextword):
    import app

    if os.environ.get("SEQDEMO_BROWSER_CHECKPOINTS") == "1":
        import seqdemo

        sentiment, nextword = seqdemo.load("sentiment"), seqdemo.load("nextword")
    else:
        from seqdemo.generation import NextWordPipeline
        from seqdemo.sentiment import SentimentPipeline

        cpu = torch.device("cpu")
        sentiment = SentimentPipeline(tiny_sentiment, tiny_tokenizer, device=cpu, source="tiny untrained test model")
        nextword = NextWordPipeline(tiny_nextword, tiny_tokenizer, device=cpu, source="tiny untrained test model")
    demo = app.build_demo(sentiment, nextword)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True,
                **app.launch_options())
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def page(browser, url):
    SHOTS.mkdir(parents=True, exist_ok=True)
    ignore = SHOTS / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# screenshots of tests/test_browser.py\n*\n")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url)
    page.wait_for_selector("#sentiment-button")
    yield page
    context.close()


def shot(page, name: str) -> None:
    page.wait_for_timeout(400)  # let plotly finish drawing
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_for_text(page, selector: str, text: str) -> None:
    """Waits until the element's text contains `text`. In a HighlightedText the tokens' own texts are joined
    (the page sets them apart with spaces of its own)."""
    page.wait_for_function(
        """([selector, text]) => {
            const el = document.querySelector(selector);
            if (!el) return false;
            const tokens = el.querySelectorAll("[data-testid='highlighted-text:textfield'] .text");
            const shown = tokens.length ? [...tokens].map(t => t.textContent).join("") : el.innerText;
            return shown.includes(text);
        }""",
        arg=[selector, text],
    )


def assert_inert(page) -> None:
    """Nothing the payload carries ran, and nothing it names became an element."""
    assert page.evaluate("() => window.__xss") is None
    assert page.dialogs == []
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("svg[onload]").count() == 0


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def test_header_names_the_device_and_the_weights(page):
    header = page.locator("#device-line").inner_text()
    assert "Running on" in header and ("CPU" in header or "GPU" in header or "NVIDIA" in header)
    assert "sentiment weights" in header and "next-word weights" in header
    shot(page, "00-page")


def test_sentiment_tab(page):
    open_tab(page, "Sentiment (BiLSTM)")
    page.fill("#sentiment-text textarea", "The plot was thin but the acting saved it")
    page.click("#sentiment-button")
    wait_for_text(page, "#sentiment-notes", "where the verdict was read")
    label = page.locator("#sentiment-label [data-testid='label-output-value']").inner_text()
    assert label in ("positive", "negative")
    highlighted = page.locator("#sentiment-highlight [data-testid='highlighted-text:textfield']").inner_text()
    assert "acting" in highlighted
    page.wait_for_selector("#sentiment-trajectory .js-plotly-plot .scatterlayer path")
    assert page.locator("#sentiment-table").inner_text().strip()
    shot(page, "01-sentiment")
    page.get_by_label("integrated gradients", exact=False).check()  # choosing the other method re-colours
    wait_for_text(page, "#sentiment-notes", "integrated gradients")

    page.fill("#sentiment-text textarea", PAYLOAD)
    page.click("#sentiment-button")
    wait_for_text(page, "#sentiment-highlight", PAYLOAD)  # every character shown as typed
    assert_inert(page)
    shot(page, "02-sentiment-payload")


def test_nextword_tab(page):
    open_tab(page, "Next word (3-layer LSTM)")
    page.fill("#nextword-text textarea", "The acting was")
    page.click("#nextword-button")
    wait_for_text(page, "#nextword-notes", "of the probability")
    assert page.locator("#nextword-label [data-testid='label-output-value']").inner_text()

    page.click("#generate-button")
    page.wait_for_function(
        "() => { const t = document.querySelector('#generate-output textarea'); "
        "return t && t.value.startsWith('The acting was') && t.value.length > 'The acting was'.length; }"
    )
    page.fill("#surprisal-text textarea", "The movie was not good at all.")
    page.click("#surprisal-button")
    wait_for_text(page, "#surprisal-notes", "bits per character")
    assert "movi" in page.locator("#surprisal-highlight").inner_text()
    assert "bits" in page.locator("#surprisal-table").inner_text()
    shot(page, "03-nextword")

    # The payload as a prompt, asking for 3 words this time: the notes that say so come from this request.
    page.fill("#nextword-text textarea", PAYLOAD)
    page.fill("#nextword-k input[type=number]", "3")
    page.click("#nextword-button")
    wait_for_text(page, "#nextword-notes", "These 3 words hold")
    assert page.locator("#nextword-label [data-testid='label-output-value']").inner_text()
    page.fill("#surprisal-text textarea", PAYLOAD)
    page.click("#surprisal-button")
    wait_for_text(page, "#surprisal-highlight", PAYLOAD)
    page.click("#generate-button")
    page.wait_for_function(
        "(p) => { const t = document.querySelector('#generate-output textarea'); return t && t.value.startsWith(p); }",
        arg=PAYLOAD,
    )
    assert_inert(page)
    shot(page, "04-nextword-payload")


def test_gate_inspector_tab(page):
    open_tab(page, "Gate inspector")
    page.fill("#gates-text textarea", "The plot was thin but the acting saved it")
    page.click("#gates-button")
    wait_for_text(page, "#gates-notes", "Unit")
    page.wait_for_selector("#gates-heatmap .js-plotly-plot .heatmaplayer image")  # the heatmap is drawn
    page.wait_for_selector("#gates-forget .js-plotly-plot .barlayer path")
    assert "forget gate" in page.locator("#gates-saturation").inner_text()
    assert page.locator("#gates-direction").is_visible()  # the classifier is bidirectional
    shot(page, "05-gates-sentiment")

    # Another signal redraws the heatmap with its own colour bar.
    page.locator("#gates-signal").get_by_text("c · cell state").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#gates-heatmap .colorbar text')]"
        ".some(t => t.textContent.includes('cell'))"
    )
    # The language model: three layers, one direction.
    page.locator("#gates-model input").click()
    page.get_by_role("option", name="Next word: 3-layer LSTM").click()
    wait_for_text(page, "#gates-notes", "begin-of-text")
    assert page.locator("#gates-layer input[type=radio]").count() == 3
    assert not page.locator("#gates-direction").is_visible()
    page.click("#gates-export-button")
    page.wait_for_selector("#gates-file a")
    assert "seqdemo-gates-nextword" in page.locator("#gates-file").inner_text()
    shot(page, "06-gates-nextword")

    page.fill("#gates-text textarea", PAYLOAD)
    page.click("#gates-button")
    wait_for_text(page, "#gates-unit-text", "onerror")
    page.hover("#gates-heatmap .js-plotly-plot .nsewdrag")  # a hover label with a token in it
    page.wait_for_timeout(300)
    assert_inert(page)
    shot(page, "07-gates-payload")


def test_errors_read_as_a_sentence(page):
    open_tab(page, "Sentiment (BiLSTM)")
    page.fill("#sentiment-text textarea", "   ")
    page.click("#sentiment-button")
    toast = page.locator("[data-testid='toast-body']").first
    toast.wait_for()
    assert "The text is empty" in toast.inner_text()
    assert "Traceback" not in page.content()
    shot(page, "08-error")
