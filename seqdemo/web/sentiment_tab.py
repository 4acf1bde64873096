"""The Sentiment tab: the classifier's verdict, the words that pushed it, and its reading trajectory.

Endpoints: /classify (text, method) and /trajectory (text).
"""

from __future__ import annotations

import gradio as gr

from seqdemo.core import validate as valid
from seqdemo.inference.sentiment import TRAJECTORY_POINTS, SentimentPipeline
from seqdemo.web import plots
from seqdemo.web import presentation as show
from seqdemo.web.endpoints import Wiring
from seqdemo.web.limits import IG_STEPS, MAX_CHARS
from seqdemo.web.page_parts import EXAMPLES, caption, error_box, intended_label, on_example

# Integrated gradients first: they name the words that pushed. "Where the verdict was read" is exact and faster (on
# the shipped model, 2-core CPU: 0.03 s against 0.2 s for a sentence, 0.2 s against 6 s for 512 tokens), but the
# 2-layer BiLSTM reads a word's verdict a token or two later ("I loved it" peaks at "it").
METHOD_CHOICES = [
    (f"integrated gradients: which words pushed ({IG_STEPS} steps)", "integrated_gradients"),
    ("where the verdict was read (exact, one forward pass, fast)", "evidence"),
]
METHODS = [value for _, value in METHOD_CHOICES]


class SentimentHandlers:
    """What the tab's controls do, around the loaded classifier."""

    def __init__(self, sentiment: SentimentPipeline):
        self.sentiment = sentiment

    def classify(self, text: str, method: str = "integrated_gradients"):
        """Label, words coloured by their push, strongest pushes, one plain sentence, the details."""
        pipe = self.sentiment
        method = valid.choice(method, "method", METHODS)
        text = valid.text(text)
        typed = len(text)
        text, clipped = valid.clip(text, "head_tail", MAX_CHARS)
        explanation = pipe.explain(text, method=method, steps=IG_STEPS)
        # The notes say how long a truncated text was: encode it whole only then.
        truncated = explanation.middle_skipped_at is not None
        text_tokens = len(pipe.tokenizer.encode(text)) if truncated else len(explanation.ids)
        intended = intended_label(text)
        chips, pushes, summary, details = show.classify_view(
            pipe.tokenizer, pipe.labels, explanation, text_tokens, clipped, text=text,
            intended=intended if intended in pipe.labels else None, text_chars=typed)
        return explanation.prediction["probabilities"], chips, pushes, summary, details

    def trajectory(self, text: str):
        """P(positive) after each word, as a line; a long text's at most TRAJECTORY_POINTS evenly spaced word ends
        (each exact), and the chart says so."""
        pipe = self.sentiment
        text, _ = valid.clip(valid.text(text), "head_tail", MAX_CHARS)
        points, labels, head_words, note = show.trajectory_view(pipe.reading_trajectory(text))
        return plots.trajectory_figure(points, labels, pipe.labels[-1], truncated_at=head_words, unit="word",
                                       note=note)


def sentiment_tab(w: Wiring, h: SentimentHandlers) -> None:
    gr.Markdown("A **bidirectional** LSTM reads the review twice, left to right and right to left, and decides "
                "whether it is positive or negative.")
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Review (Enter runs it, Shift+Enter for a new line)", lines=1, max_lines=8,
                              value=EXAMPLES[1], elem_id="sentiment-text")
            button = gr.Button("Classify", variant="primary", elem_id="sentiment-button")
            error = error_box("sentiment-error")
            examples = gr.Examples(EXAMPLES, inputs=text, label="Try negation and contrast")
        with gr.Column(scale=2):
            label = gr.Label(label="Verdict and confidence", num_top_classes=2, elem_id="sentiment-label")
    summary = gr.HTML(label="Summary", elem_id="sentiment-summary")
    highlight = gr.HTML(label="How much each word pushed the decision", elem_id="sentiment-highlight")
    method = gr.Radio(METHOD_CHOICES, value="integrated_gradients", label="How the pushes are measured",
                      elem_id="sentiment-method")
    plot = gr.Plot(label="Reading trajectory", elem_id="sentiment-trajectory")
    caption("The line is the verdict the model would give if the text stopped after each word: where it crosses "
            f"the middle, the model changed its mind. A long text gets {TRAJECTORY_POINTS} evenly spaced words, each "
            "point exact (the chart says so).")
    pushes = gr.Dataframe(label="Strongest pushes", interactive=False, wrap=True, elem_id="sentiment-table")
    with gr.Accordion("Details: the exact numbers", open=False):
        details = gr.Markdown(label="Details", elem_classes="seqdemo-notes", elem_id="sentiment-notes")

    inputs, outputs = [text, method], [label, highlight, pushes, summary, details]
    run = (button.click, text.submit)
    classify, _ = w.event(h.classify, [*run, method.input], inputs, outputs, error, api_name="classify",
                          on_load=True)
    trajectory, _ = w.event(h.trajectory, run, [text], [plot], error, api_name="trajectory", on_load=True)
    on_example(w, examples, classify, inputs, outputs, error)
    on_example(w, examples, trajectory, [text], [plot], error)
