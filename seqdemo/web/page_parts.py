"""The small pieces every tab shares: its example texts, its message box, its captions, its example clicks."""

from __future__ import annotations

import gradio as gr

from seqdemo.core.text import casual
from seqdemo.web.endpoints import Wiring

EXAMPLES = ["not good at all", "The plot was thin but the acting saved it", "I loved it"]
# How a person reads each example text the page shows or names (a model's answer is checked against these, never
# assumed wrong: the model may be retrained).
INTENDED = {"not good at all": "negative", "The plot was thin but the acting saved it": "positive",
            "I loved it": "positive", "not bad at all": "positive"}
PROMPTS = ["The acting was", "I would not recommend this movie to", "The best thing about this film is"]


def intended_label(text: str) -> str | None:
    """The label a person gives `text` when it is one of the page's examples (whatever its case, punctuation or
    spacing), else None."""
    wanted = casual(text)
    return next((label for example, label in INTENDED.items() if casual(example) == wanted), None)


def error_box(elem_id: str) -> gr.Markdown:
    """The message box beside a control: empty until an input needs fixing."""
    return gr.Markdown("", elem_id=elem_id, elem_classes="sq-error")


def caption(text: str, **options) -> gr.Markdown:
    return gr.Markdown(text, elem_classes="sq-caption", **options)


def on_example(w: Wiring, examples: gr.Examples, handler, inputs: list, outputs: list, error: gr.Markdown):
    """Clicking an example fills the box, then runs `handler` on it (all of `inputs`, the example included)."""
    return w.chain(examples.load_input_event, handler, inputs, outputs, error)
