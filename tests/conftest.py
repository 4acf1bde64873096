"""What the test modules share: tiny untrained models and checkpoints built on the fly (so tests never depend on the
shipped weights; the tests that are about them say so in their names), tiny data, a local server, a browser.

Test modules never import each other. They request fixtures by name, and import plain helpers from this module as
`from conftest import X`: the module pytest itself loaded (`tests.conftest` would be a second copy).
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# The test models are tiny: one thread avoids the OpenMP hand-offs that cost more than the arithmetic.
torch.set_num_threads(1)

from seqdemo.core.models import NextWordLSTM, SentimentClassifier  # noqa: E402
from seqdemo.core.tokenizer import Tokenizer  # noqa: E402

TINY_CORPUS = [
    "The movie was great and I loved it.",
    "Terrible acting, dull plot, a waste of time.",
    "Not good at all! The worst film of the year.",
    "The plot was thin but the acting saved it.",
    "A wonderful, moving story with brilliant performances.",
    "I would not recommend this boring mess to anyone.",
]


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Tokenizer:
    return Tokenizer.train(TINY_CORPUS * 50, vocab_size=400)


@pytest.fixture(scope="session")
def tiny_sentiment(tiny_tokenizer) -> SentimentClassifier:
    torch.manual_seed(0)
    return SentimentClassifier(vocab_size=tiny_tokenizer.vocab_size, embed_dim=16, hidden_size=12).eval()


@pytest.fixture(scope="session")
def tiny_nextword(tiny_tokenizer) -> NextWordLSTM:
    torch.manual_seed(0)
    return NextWordLSTM(vocab_size=tiny_tokenizer.vocab_size, embed_dim=16, hidden_size=16, dropout=0.1).eval()


def save_checkpoint(model, tokenizer: Tokenizer, folder) -> None:
    """A checkpoint folder as training writes it: config.json, model.safetensors, tokenizer.model."""
    model.save_pretrained(folder)
    tokenizer.save(folder)


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory, tiny_tokenizer, tiny_sentiment, tiny_nextword):
    """{'sentiment': folder, 'nextword': folder} with the tiny models saved as real checkpoints."""
    root = tmp_path_factory.mktemp("checkpoints")
    for kind, model in (("sentiment", tiny_sentiment), ("nextword", tiny_nextword)):
        save_checkpoint(model, tiny_tokenizer, root / kind)
    return {"sentiment": root / "sentiment", "nextword": root / "nextword"}


def tiny_pipelines(tokenizer: Tokenizer, sentiment: SentimentClassifier, nextword: NextWordLSTM) -> tuple:
    """The page's two pipelines around the tiny models, on the CPU."""
    from seqdemo.inference.generation import NextWordPipeline
    from seqdemo.inference.sentiment import SentimentPipeline

    cpu = torch.device("cpu")
    return (SentimentPipeline(sentiment, tokenizer, device=cpu, source="tiny untrained test model"),
            NextWordPipeline(nextword, tokenizer, device=cpu, source="tiny untrained test model"))


@pytest.fixture(scope="module")
def pipelines(tiny_tokenizer, tiny_sentiment, tiny_nextword):
    """tiny_pipelines, a pair per test module (a module may patch them)."""
    return tiny_pipelines(tiny_tokenizer, tiny_sentiment, tiny_nextword)


@pytest.fixture(scope="module")
def url(pipelines):
    """The page of the module's `pipelines`, as app.py launches it (its CSS and head included), served locally."""
    import app

    demo = app.build_demo(*pipelines)
    try:
        yield serve_locally(demo, **app.launch_options())
    finally:
        demo.close()


def serve_locally(demo, **launch_options) -> str:
    """Serves `demo` in-process on a free loopback port and returns its URL (the caller closes the demo)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_options)
    return f"http://127.0.0.1:{port}/"


# ------------------------------------------------------------------------------------------------------ tiny data

POSITIVE_ROWS = {0, 3, 4}  # the TINY_CORPUS rows that are positive


def comparison_splits() -> dict[str, list]:
    """Train, valid and test rows of TINY_CORPUS for a tiny comparison: IMDB rows of several lengths (so that every
    length bucket has rows) and Rotten Tomatoes rows of one sentence; the same rows at every call."""
    # Imported here: a test that seqdemo.web loads nothing from seqdemo.experiments may run in this process.
    from seqdemo.experiments.data import Review

    rng = random.Random(0)
    splits = {}
    for part, count in (("train", 40), ("valid", 12), ("test", 24)):
        rows = []
        for i in range(count):
            k = rng.randrange(len(TINY_CORPUS))
            label = int(k in POSITIVE_ROWS)
            rows.append(Review(" ".join([TINY_CORPUS[k]] * (1 + i % 5)), label, "imdb"))
            rows.append(Review(TINY_CORPUS[k], label, "rotten_tomatoes"))
        splits[part] = rows
    return splits


# ------------------------------------------------------------------------------------------- the page's API

HTML_TEXT = '<img src=x onerror="window.pwned=1"> <script>window.pwned=1</script> <b>bold</b>'
ODD_TEXTS = {
    "emoji": "I loved it 🙂🎬👍",
    "cjk": "这部电影很好看。映画は良かった",
    "rtl": "הסרט היה טוב מאוד \u202eevil\u202c",
    "control": "good\x00movie\x07\x1b[31m red\x7f",
}


def plot_json(value: dict) -> dict:
    """The plotly figure a gr.Plot output carries."""
    assert value["type"] == "plotly"
    return json.loads(value["plot"])


def array(value) -> np.ndarray:
    """A plotly array from the figure JSON: a plain list, or plotly's typed-array form {dtype, bdata, shape}."""
    if isinstance(value, dict):
        data = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return data.reshape([int(n) for n in str(value.get("shape", len(data))).split(",")])
    return np.asarray(value, dtype=float)


def assert_error(client, *args, api_name: str, says: str) -> None:
    """The endpoint refuses these arguments with one sentence containing `says`, and no traceback."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as raised:
        client.predict(*args, api_name=api_name)
    assert says in str(raised.value)
    assert "Traceback" not in str(raised.value)


# ------------------------------------------------------------------------------------------------ the browser

CHROMIUM = os.environ.get("SEQDEMO_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
SHOTS = Path(os.environ.get("SEQDEMO_SCREENSHOTS") or Path(__file__).resolve().parent.parent / "screenshots")
BROWSER_TIMEOUT = 60_000  # ms: the machine may be busy
# Each payload sets a flag if it ever runs; alert() also opens a dialog, which is recorded.
PAYLOAD = (
    '<img src=x onerror="window.__xss=1;alert(1)"> <script>window.__xss=2;alert(2)</script> '
    '<svg onload="window.__xss=3"></svg> <b>bold</b>'
)


def missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no chromium at {CHROMIUM}"
    return None


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium under Playwright; skipped without one, except in CI (CI=true), where that fails."""
    missing = missing_browser()
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


def open_page(browser, url: str, width: int, height: int = 900):
    """A new context and page at `url`, once its first button is there; dialogs are recorded in page.dialogs."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    ignore = SHOTS / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# screenshots of the browser tests\n*\n")
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(BROWSER_TIMEOUT)
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url)
    page.wait_for_selector("#sentiment-button")
    return context, page


IDLE = """() => [...document.querySelectorAll('[data-testid="status-tracker"]')]
    .every(tracker => tracker.classList.contains('hide'))"""
DRAWN = """() => [...document.querySelectorAll('.js-plotly-plot')].filter(plot => plot.offsetParent !== null)
    .every(plot => plot.querySelector('.main-svg'))"""


def wait_idle(page) -> None:
    """Waits until no event is running: every output's status tracker is hidden again."""
    page.wait_for_function(IDLE)


def shot(page, name: str) -> None:
    """A full-page screenshot once no event runs and every plot on view has drawn (visible states, no sleep)."""
    wait_idle(page)
    page.wait_for_function(DRAWN)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_for_text(page, selector: str, text: str) -> None:
    """Waits until the element's text contains `text`; a coloured text's chips are read one after another."""
    page.wait_for_function(
        """([selector, text]) => {
            const el = document.querySelector(selector);
            if (!el) return false;
            const chips = el.querySelectorAll(".sq-chip");
            const shown = chips.length ? [...chips].map(c => c.textContent).join("") : el.innerText;
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
    page.get_by_role("tab", name=name, exact=True).click()  # every tab shows its name, also on a phone
