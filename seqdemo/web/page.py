"""The whole page: the four tabs and the model cards around two loaded pipelines, queued and ready to launch.

User text is never rendered as raw HTML: it reaches the page through Label, Textbox and Dataframe cells (all text),
the coloured text of seqdemo.web.presentation.chips_html and plotly labels (both escaped), never through Markdown
or an unescaped error message. Every result is on the page when it opens, an example click runs it, Enter in a text
box runs it; a bad input shows one message beside its control and the results already shown stay
(seqdemo.web.endpoints).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import gradio as gr

from seqdemo.core.device import on_zero_gpu, zero_gpu_decorator
from seqdemo.inference.generation import NextWordPipeline
from seqdemo.inference.pipeline import configure_threads
from seqdemo.inference.sentiment import SentimentPipeline
from seqdemo.inference.variants import DEFAULT_OUT as COMPARE_FOLDER
from seqdemo.web import compare_view, serving
from seqdemo.web.compare_tab import CompareHandlers, compare_tab
from seqdemo.web.endpoints import Wiring
from seqdemo.web.exports import ExportStore
from seqdemo.web.inspector_tab import MODEL_CHOICES, InspectorHandlers, inspector_tab
from seqdemo.web.nextword_tab import NextWordHandlers, nextword_tab
from seqdemo.web.presentation import header_line, md
from seqdemo.web.sentiment_tab import SentimentHandlers, sentiment_tab
from seqdemo.web.settings import Settings

TITLE = "seqdemo: see inside an LSTM"
INTRO = """\
An LSTM reads a text one piece at a time. Its **cell state** *c* is a conveyor belt that carries memory from
word to word; the **forget gate** *f* decides how much of the old memory stays on the belt, the **input gate**
*i* how much new content *g* is written onto it, and the **output gate** *o* how much of it is shown as the
hidden state *h*. Every number on this page is computed by the two trained models as you ask. Type a text and
press Enter (Shift+Enter for a new line).
"""
CSS = """
.seqdemo-notes p { margin: 0.25em 0; }
.sq-error p { color: #b91c1c; font-weight: 600; margin: 0.25em 0; }
.sq-caption p { color: #4b5563; font-size: 0.92em; margin: 0 0 0.75em 0; }
.sq-colours { max-width: 100%; }
.sq-legend { max-width: 24rem; margin: 0 0 0.5rem 0; font-size: 0.8rem; color: #4b5563; }
.sq-legend-bar { height: 0.6rem; border-radius: 3px; border: 1px solid #d1d5db; }
.sq-legend-labels { display: flex; justify-content: space-between; gap: 0.5rem; }
#sentiment-label .bar { background: #9ca3af; }
.sq-text { line-height: 2.1; font-size: 1.02rem; overflow-wrap: anywhere; }
.sq-chip { display: inline-block; max-width: 100%; white-space: pre-wrap; padding: 0 0.3em; margin: 1px 0;
           border-radius: 4px; border: 1px solid rgba(0, 0, 0, 0.06); }
/* Tables fit their box: gradio sizes each column from its unwrapped text (a long cell pushed the atlas past the
   page at 1280 px), so cells and headers wrap between words instead. */
.table-wrap .sizing-body td, .table-wrap .body-cell span { white-space: normal !important; }
.table-wrap .header-cell span { white-space: normal !important; word-break: normal !important;
                                overflow-wrap: normal !important; }
/* A table still wider than its box says so (TABLE_HINT marks it): a line above it and a fade at its right edge. */
.table-container.sq-wide > .table-wrap { order: 2; }
.table-container.sq-wide::after { content: "Scroll the table sideways for more columns →"; order: 1;
                                  font-size: 0.8rem; color: #4b5563; }
.table-container.sq-wide:not(.sq-at-end) > .table-wrap::after {
    content: ""; position: absolute; top: 0; right: 0; bottom: 0; width: 3rem; pointer-events: none; z-index: 3;
    background: linear-gradient(to right, transparent, var(--background-fill-primary)); }
/* A plot beside another in a row needs 320 px to be read (gradio lets a block shrink to 160 px): on a phone the
   row wraps and each plot takes the full width. */
.row > .block:has(.js-plotly-plot) { min-width: min(320px, 100%) !important; }
.row > .block:has(input[type=range]), .row > .column:has(input[type=range]) {  /* a slider, likewise */
    min-width: min(280px, 100%) !important; }
/* Page margins shrink on a phone (gradio keeps 32 px a side at every width). Not in a @media block: gradio
   scopes those rules to elements inside .contain, and this one is outside it. */
.main.fillable.app { padding-left: clamp(12px, 4vw, 32px); padding-right: clamp(12px, 4vw, 32px); }
@media (max-width: 640px) {
    /* A phone: smaller table text and padding, so that most tables fit without scrolling. */
    .table-wrap { --input-text-size: 12px; --text-md: 12px; --text-sm: 12px; --size-2: 4px; }
}
"""
# Marks every table wider than its box (class sq-wide; sq-at-end once scrolled to its end) for the CSS above:
# gradio shows no sign of the hidden columns, and phone browsers hide scrollbars until one scrolls.
TABLE_HINT = """<script>
(() => {
  let queued = false;
  const mark = () => {
    queued = false;
    for (const view of document.querySelectorAll(".virtual-table-viewport")) {
      const box = view.closest(".table-container");
      if (!box) continue;
      box.classList.toggle("sq-wide", view.scrollWidth - view.clientWidth > 1);
      box.classList.toggle("sq-at-end", view.scrollLeft + view.clientWidth >= view.scrollWidth - 1);
    }
  };
  const soon = () => { if (!queued) { queued = true; requestAnimationFrame(mark); } };
  new MutationObserver(soon).observe(document.documentElement,
    {childList: true, subtree: true, attributes: true, attributeFilter: ["style", "class"]});
  addEventListener("resize", soon);
  document.addEventListener("scroll", soon, true);
})();
</script>"""
logger = logging.getLogger("seqdemo.web.page")
ENDPOINTS = ("classify", "trajectory", "next_words", "generate", "surprisal", "inspect", "find_units",
             "export_trace", "compare_results", "compare_text")


def metrics_markdown(pipeline, what: str) -> str:
    """The measured test metrics of the checkpoint: its folder's metrics.json, else the "Test metrics" table of
    its model card (README.md), else "not measured yet". Hub downloads include both files."""
    folder = getattr(pipeline, "folder", None)
    if folder is None:
        return f"**{what}: test metrics** not measured yet."
    metrics_file = Path(folder) / "metrics.json"
    try:
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    except (OSError, ValueError):
        metrics = None
    if isinstance(metrics, dict) and isinstance(metrics.get("results"), dict):
        command = str(metrics.get("command", "?")).replace("`", "'")
        lines = [f"**{what}: measured test metrics** (`{command}` on {md(metrics.get('hardware', '?'))})", "",
                 "| metric | value |", "|---|---|"]
        lines += [f"| {md(name)} | {md(value)} |" for name, value in metrics["results"].items()]
        return "\n".join(lines)
    card = Path(folder) / "README.md"
    if card.is_file():
        text = card.read_text(errors="replace")
        section = text.split("## Test metrics", 1)[1] if "## Test metrics" in text else ""
        rows = [line for line in section.splitlines() if line.startswith("|")]
        if len(rows) > 2:
            return f"**{what}: measured test metrics** (from the model card)\n\n" + "\n".join(rows)
    return f"**{what}: test metrics** not measured yet."


def about_models(sentiment: SentimentPipeline, nextword: NextWordPipeline) -> None:
    with gr.Accordion("About the models", open=False, elem_id="about-models"):
        gr.Markdown(header_line(sentiment, nextword), elem_id="device-line")
        gr.Markdown(metrics_markdown(sentiment, "Sentiment model"), elem_id="sentiment-metrics")
        gr.Markdown(metrics_markdown(nextword, "Next-word model"), elem_id="nextword-metrics")
        gr.Markdown("API: every result is an endpoint (" + ", ".join(f"`/{name}`" for name in ENDPOINTS) + "); see "
                    "*Use via API* below, or call them with `gradio_client`.")


def build_demo(sentiment: SentimentPipeline, nextword: NextWordPipeline, compare_folder=COMPARE_FOLDER,
               settings: Settings | None = None) -> gr.Blocks:
    """The whole page around two loaded pipelines (seqdemo.load("sentiment"), seqdemo.load("nextword")), and the
    comparison in `compare_folder` (its variants on the language model's embedding). `settings`: the server's
    (default: Settings.from_env())."""
    settings = settings or Settings.from_env()
    # Analytics stay off unless the user turns them on: gradio 6 reads this when a page is built and launched.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    decorator, limit = zero_gpu_decorator(), settings.model_concurrency
    # Handlers at once x torch threads <= cores: oversubscribed OpenMP threads spin against each other (issue 40).
    threads = configure_threads(limit)
    logger.info("%d model handler(s) at once, %d torch thread(s) each", limit, threads)

    def gpu(handler):
        return on_zero_gpu(handler, (sentiment, nextword), decorator)

    comparison, unavailable = compare_view.open_comparison(compare_folder, nextword.folder)
    variants = compare_view.inspectable_variants(comparison)
    models = {"sentiment": sentiment, "nextword": nextword, **variants}
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        w = Wiring(demo, gpu, serving.model_threads(limit))
        gr.Markdown(f"# {TITLE}")
        gr.Markdown(INTRO)
        # "wrap": on a phone the tabs that do not fit go on a second row, each under its name (gradio's
        # default hides them behind an unlabelled "⋯" menu).
        with gr.Tabs(overflow_behavior="wrap"):
            with gr.Tab("Sentiment", id="sentiment"):
                sentiment_tab(w, SentimentHandlers(sentiment))
            with gr.Tab("Next word", id="nextword"):
                nextword_tab(w, NextWordHandlers(nextword))
            with gr.Tab("Gate inspector", id="gates"):
                choices = MODEL_CHOICES + [(compare_view.variant_choice(name), name) for name in variants]
                inspector_tab(w, InspectorHandlers(models, ExportStore(serving.export_folder())), choices)
            with gr.Tab("Compare", id="compare"):
                compare_tab(w, CompareHandlers(comparison, unavailable, sentiment.model))
        about_models(sentiment, nextword)
    serving.configure_queue(demo, limit, settings.queue_size)
    return demo


def launch_options() -> dict:
    """What launch() needs beyond the Blocks (gradio 6 takes the CSS and the head there)."""
    # A neutral theme: blue and orange mean positive and negative on this page, so no button wears them.
    return {"css": CSS, "head": TABLE_HINT, "theme": gr.themes.Default(primary_hue="slate", secondary_hue="slate"),
            **serving.launch_options()}
