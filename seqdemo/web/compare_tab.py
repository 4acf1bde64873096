"""The Compare tab: the chapter's claims measured on eight small variants, and every variant on the visitor's text.

Endpoints: /compare_results () and /compare_text (text). The numbers come from seqdemo.web.compare_view.
"""

from __future__ import annotations

import gradio as gr

from seqdemo.core import validate as valid
from seqdemo.core.validate import InputError
from seqdemo.web import compare_view, plots
from seqdemo.web.endpoints import Wiring
from seqdemo.web.limits import MAX_CHARS
from seqdemo.web.page_parts import EXAMPLES, error_box, on_example


class CompareHandlers:
    """The Compare tab's endpoints, around the comparison opened once when the page is built. Without one, each
    answers with the sentence that says why (and the command that produces it)."""

    def __init__(self, comparison: compare_view.Comparison | None, unavailable: str, sentiment_model):
        """`sentiment_model`: the Sentiment tab's loaded classifier, whose size the claims name beside the small
        BiLSTM."""
        self.comparison, self.unavailable = comparison, unavailable
        self.sentiment_size = compare_view.model_size(sentiment_model)

    def _opened(self) -> compare_view.Comparison:
        if self.comparison is None:
            raise InputError(self.unavailable)
        return self.comparison

    def results(self):
        """The results table, the claims' verdicts, accuracy by length and training speed."""
        results = self._opened().results
        return (compare_view.results_table(results), compare_view.claims_markdown(results, self.sentiment_size),
                plots.length_accuracy_figure(results["variants"], compare_view.bucket_names(results)),
                plots.speed_figure(results["variants"]))

    def read_text(self, text: str):
        """Every variant's verdict on the text, a note on what they read, and the vanishing-gradient chart."""
        comparison = self._opened()
        text, _ = valid.clip(valid.text(text), "head_tail", MAX_CHARS)
        verdicts, note = compare_view.verdicts_view(comparison, text)
        return verdicts, note, plots.gradient_figure(compare_view.gradient_curves(comparison, text))


def compare_tab(w: Wiring, h: CompareHandlers) -> None:
    """The tab's layout and events. Without a usable comparison the tab says why in one sentence; the page works
    on. The variants are small and stay on the CPU (also on ZeroGPU): their handlers need no GPU wrapper, but they
    share the model queue (seqdemo.web.serving) with the others."""
    shown = h.comparison is not None
    initial = h.results() if shown else (None, "", None, None)
    # The tab opens on a long review: the vanishing gradient shows only over many steps.
    example = h.read_text(compare_view.LONG_REVIEW) if shown else (None, "", None)
    gr.Markdown(h.unavailable, visible=not shown, elem_id="compare-missing")
    with gr.Column(visible=shown):
        gr.Markdown("Eight small sentiment models (about 100k trainable parameters each) trained with one recipe: "
                    "the same data, tokenizer, frozen word embedding and training time. Do the chapter's claims "
                    "hold?")
        claims = gr.Markdown(initial[1], label="Claims", elem_classes="seqdemo-notes", elem_id="compare-claims")
        table = gr.Dataframe(initial[0], label="Measured per variant (mean ± half the spread over seeds)",
                             interactive=False, wrap=True, elem_id="compare-table")
        with gr.Row():
            by_length = gr.Plot(initial[2], label="Accuracy by review length", elem_id="compare-length")
            speed = gr.Plot(initial[3], label="Training speed", elem_id="compare-speed")
        gr.Markdown("### Your text, read by every variant")
        with gr.Row():
            with gr.Column(scale=3):
                text = gr.Textbox(label="Review (Enter runs it, Shift+Enter for a new line)", lines=1, max_lines=8,
                                  value=compare_view.LONG_REVIEW, elem_id="compare-text")
                button = gr.Button("Compare", variant="primary", elem_id="compare-button")
                error = error_box("compare-error")
                examples = gr.Examples(EXAMPLES, inputs=text, label="Examples")
            with gr.Column(scale=4):
                verdicts = gr.Dataframe(example[0], label="Each variant's verdict", interactive=False, wrap=True,
                                        elem_id="compare-verdicts")
                note = gr.Markdown(example[1], label="What they read", elem_classes="seqdemo-notes",
                                   elem_id="compare-notes")
        gr.Markdown("### The vanishing gradient, visible\n\n" + compare_view.GRADIENT_NOTE)
        gradient = gr.Plot(example[2], label="Gradient per token", elem_id="compare-gradient")
    # The results are the page's own, already shown: only a script can meet their error (no comparison).
    hidden_error = gr.Markdown(visible=False)
    w.event(h.results, [w.demo.load], [], [table, claims, by_length, speed], hidden_error, api_name="compare_results",
            gpu=False)
    outputs = [verdicts, note, gradient]
    read, _ = w.event(h.read_text, [button.click, text.submit], [text], outputs, error, api_name="compare_text",
                      gpu=False)
    on_example(w, examples, read, [text], outputs, error)
