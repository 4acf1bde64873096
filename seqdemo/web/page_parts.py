"""The small pieces every tab shares: its example texts, its message box, its captions, its example clicks."""

from __future__ import annotations

import gradio as gr

from seqdemo.web.endpoints import Wiring

EXAMPLES = ["not good at all", "The plot was thin but the acting saved it", "I loved it"]
PROMPTS = ["The acting was", "I would not recommend this movie to", "The best thing about this film is"]


def error_box(elem_id: str) -> gr.Markdown:
    """The message box beside a control: empty until an input needs fixing."""
    return gr.Markdown("", elem_id=elem_id, elem_classes="sq-error")


def caption(text: str, **options) -> gr.Markdown:
    return gr.Markdown(text, elem_classes="sq-caption", **options)


def on_example(w: Wiring, examples: gr.Examples, handler, inputs: list, outputs: list, error: gr.Markdown):
    """Clicking an example fills the box, then runs `handler` on it (all of `inputs`, the example included)."""
    return w.chain(examples.load_input_event, handler, inputs, outputs, error)
