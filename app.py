"""The seqdemo page: see how the LSTM reads.

    python app.py                                   # http://127.0.0.1:7860
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=8080 python app.py

Hugging Face Spaces runs `python app.py` as well, so the models load once, in `main()`, and the page is built
around them by `build_demo(sentiment, nextword)`; tests build the same page around small models instead.

Layout and thin handlers only: the numbers come from the pipelines and seqdemo.core.gates, the spans, tables and
notes from seqdemo.web.presentation, the figures from seqdemo.web.plots. User text is never rendered as raw HTML: it
reaches the page through Label, Textbox and Dataframe cells (all text), the coloured text of
seqdemo.web.presentation.chips_html and plotly labels (both escaped), never through Markdown or an unescaped error
message.

Every result is on the page when it opens (demo.load), an example click runs it, Enter in a text box runs it.
A bad input shows one message in the box beside its control, and the results already shown stay (inline_errors);
the named API endpoints raise instead, as a script expects (friendly).

On a ZeroGPU Space (the `spaces` package importable) every handler that runs a model is wrapped in
`spaces.GPU` and moves the models to the GPU inside, the only place a ZeroGPU Space has one.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import os
import random
import time

import gradio as gr

import seqdemo
from seqdemo.core import gates
from seqdemo.core import validate as valid
from seqdemo.core.device import device_name, on_zero_gpu, zero_gpu_decorator
from seqdemo.inference.generation import NextWordPipeline
from seqdemo.inference.sentiment import SentimentPipeline
from seqdemo.inference.variants import DEFAULT_OUT as COMPARE_FOLDER
from seqdemo.web import compare_view, plots, serving
from seqdemo.web import presentation as show
from seqdemo.web.exports import ExportStore
from seqdemo.web.presentation import IG_STEPS

logger = logging.getLogger("seqdemo.app")

INSPECT_TOKENS = 256  # the gate inspector traces at most this many tokens
# Integrated gradients first: they name the words that pushed. "Where the verdict was read" is exact and faster (on
# the shipped model, 2-core CPU: 0.03 s against 0.2 s for a sentence, 0.2 s against 6 s for 512 tokens), but the
# 2-layer BiLSTM reads a word's verdict a token or two later ("I loved it" peaks at "it").
METHOD_CHOICES = [
    (f"integrated gradients: which words pushed ({IG_STEPS} steps)", "integrated_gradients"),
    ("where the verdict was read (exact, one forward pass, fast)", "evidence"),
]
MAX_NEW_TOKENS = 300  # the page's slider, and the API's limit (the library accepts up to 1000)
MAX_WORDS = 50  # next words asked for at most (the page's slider stops at 20)
STREAM_INTERVAL = 0.04  # seconds between two streamed updates (at most 25 a second; every token when slower)

EXAMPLES = ["not good at all", "The plot was thin but the acting saved it", "I loved it"]
PROMPTS = ["The acting was", "I would not recommend this movie to", "The best thing about this film is"]
MODEL_CHOICES = [("Sentiment: bidirectional LSTM classifier", "sentiment"), ("Next word: 3-layer LSTM", "nextword")]
UNIT_CHOICES = [(f"top {plots.TOP_UNITS}", "top"), ("all units", "all")]
VIEW_CHOICES = [("words", "words"), ("pieces (what the LSTM reads)", "pieces")]
MEASURE_CHOICES = [("memory jumps (an LSTM's c, a GRU's h)", "memory"),
                   ("gates move (f dips or i rises; a GRU's z dips)", "gates")]
INTRO = """\
An LSTM reads a text one piece at a time. Its **cell state** *c* is a conveyor belt that carries memory from
word to word; the **forget gate** *f* decides how much of the old memory stays on the belt, the **input gate**
*i* how much new content *g* is written onto it, and the **output gate** *o* how much of it is shown as the
hidden state *h*. Every number on this page is computed by the two trained models as you ask. Type a text and
press Enter (Shift+Enter for a new line).
"""
GATE_LEGEND = "\n".join(f"- **{s}**: {plots.SIGNAL_LINES[s]}" for s in gates.LSTM_VALUES)
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
"""
PRIVATE = {"api_visibility": "private"}  # page-only events: the named endpoints are the API


# -- wrapping the handlers ---------------------------------------------------------------------------------------


def error_message(error: Exception, name: str) -> str:
    """Library ValueErrors and TypeErrors (empty text, bad settings) are a person's to fix: their message. Anything
    else is logged with its traceback and named in one plain line: the page never shows a stack trace."""
    if isinstance(error, gr.Error):
        return error.message
    if isinstance(error, (ValueError, TypeError)):
        return str(error)
    logger.exception("%s failed", name)
    return (f"Something went wrong inside the model ({type(error).__name__}); the server log has the details.")


def friendly(fn):
    """For the API: an error becomes a gr.Error carrying error_message. The messages never quote what was typed
    (seqdemo.core.validate), so API callers get them as written; gradio shows them as HTML, so a "<" or "&" is escaped
    all the same."""

    def convert(error: Exception) -> gr.Error:
        if isinstance(error, gr.Error):
            return error
        return gr.Error(html.escape(error_message(error, fn.__name__), quote=False), print_exception=False)

    if inspect.isgeneratorfunction(fn):  # gradio streams a generator function's values: keep it one

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as error:
                raise convert(error) from error

        return generator

    @functools.wraps(fn)
    def function(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            raise convert(error) from error

    return function


def inline_errors(fn, outputs: int):
    """For the page: the handler's `outputs` values and one more, the message box beside the control that ran it.
    On an error the box says what went wrong, once, and every other output keeps what it showed (gr.skip);
    on success the box empties."""

    def failed(error: Exception) -> tuple:
        return (*[gr.skip()] * outputs, show.md(error_message(error, fn.__name__)))

    def values(result) -> tuple:
        return (*(result if isinstance(result, tuple) else (result,)), "")

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                for result in fn(*args, **kwargs):
                    yield values(result)
            except Exception as error:
                yield failed(error)

        return generator

    @functools.wraps(fn)
    def function(*args, **kwargs):
        try:
            return values(fn(*args, **kwargs))
        except Exception as error:
            return failed(error)

    return function


# -- the handlers ----------------------------------------------------------------------------------------------


class Handlers:
    """What each button does, around the two loaded pipelines. Each one checks the page's input, asks the
    pipeline, and hands the result to seqdemo.web.presentation or seqdemo.web.plots."""

    def __init__(self, sentiment: SentimentPipeline, nextword: NextWordPipeline,
                 variants: dict[str, SentimentPipeline] | None = None):
        self.sentiment, self.nextword = sentiment, nextword
        # The inspector also opens the comparison's small variants it is given (the GRUs: seqdemo.web.compare_view).
        self.models = {"sentiment": sentiment, "nextword": nextword, **(variants or {})}
        self.exports = ExportStore(serving.export_folder())
        # The inspector's controls redraw from the same text: trace it once. A trace of 256 tokens holds every
        # value of every layer and direction (about 13 MB for the 2-layer BiLSTM at 512 units): keep a few.
        self._cached_gate_trace = functools.lru_cache(maxsize=4)(self._gate_trace)

    def classify(self, text: str, method: str = "integrated_gradients"):
        """Label, words coloured by their push, strongest pushes, one plain sentence, the details."""
        pipe = self.sentiment
        method = valid.choice(method, "method", [value for _, value in METHOD_CHOICES])
        text, clipped = show.clip(valid.text(text), "head_tail")
        explanation = pipe.explain(text, method=method, steps=IG_STEPS)
        # The notes say how long a truncated text was: encode it whole only then.
        truncated = explanation.middle_skipped_at is not None
        text_tokens = len(pipe.tokenizer.encode(text)) if truncated else len(explanation.ids)
        chips, pushes, summary, details = show.classify_view(pipe.tokenizer, pipe.labels, explanation, text_tokens,
                                                             clipped)
        return explanation.prediction["probabilities"], chips, pushes, summary, details

    def trajectory(self, text: str):
        """P(positive) after each word (after each token for a long text), as a line."""
        pipe = self.sentiment
        text, _ = show.clip(valid.text(text), "head_tail")
        ids, truncated = pipe.encode(text)
        points = pipe.trajectory(text)
        words = show.word_spans(pipe.tokenizer, ids, [0.0] * len(ids))
        by_word = show.word_trajectory(points, words)
        if by_word is not None:
            return plots.trajectory_figure(by_word, [show.shown(w.text) for w in words], pipe.labels[-1],
                                           unit="word")
        return plots.trajectory_figure(points, show.token_labels(pipe.tokenizer, ids), pipe.labels[-1],
                                       truncated_at=pipe.middle_skipped_at(truncated))

    def read_review(self, text: str, method: str = "integrated_gradients"):
        """The sentiment tab in one go: classify, then the trajectory."""
        return (*self.classify(text, method), self.trajectory(text))

    def next_words(self, prompt: str, k: float = 5):
        prompt, clipped = show.clip(valid.text(prompt, "prompt"), "tail")
        k = valid.integer(k, "k", 1, MAX_WORDS)
        words = self.nextword.next_words(prompt, k=k)
        _, truncated = self.nextword.prompt_ids(prompt)
        return dict(words), show.next_words_notes(words, truncated or clipped, self.nextword.max_tokens - 1)

    def generate(self, prompt: str, max_new_tokens: float = 40, temperature: float = 0.8, top_k: float = 50,
                 top_p: float = 0.95, seed: float | str | None = None):
        """Streams the prompt and its continuation, which ends on a word boundary; blank seed = a fresh random
        one. An update at most every STREAM_INTERVAL seconds, so a fast model does not spend its time on messages
        (a slow one still shows every token as it comes)."""
        prompt, _ = show.clip(valid.text(prompt, "prompt"), "tail")
        max_new_tokens = valid.integer(max_new_tokens, "max_new_tokens", 1, MAX_NEW_TOKENS)
        seed = valid.seed(seed)
        seed = random.randrange(2**31) if seed is None else seed
        # The library checks and coerces the other settings (seqdemo.inference.generation.check_sampling).
        stream = self.nextword.stream(prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                                      top_p=top_p, seed=seed, whole_words=True)
        text, last = prompt, 0.0
        for text in stream:
            now = time.perf_counter()
            if now - last >= STREAM_INTERVAL:
                last = now
                yield text
        yield text

    def generate_page(self, prompt: str, max_new_tokens: float = 40, temperature: float = 0.8, top_k: float = 50,
                      top_p: float = 0.95, seed: str | None = None, with_greedy: bool = False):
        """The page's generation: the sampled text as it streams, the greedy one beside it when asked, and the
        seed used (a blank seed gets a fresh one, shown so the text can be had again)."""
        seed = valid.seed(seed)
        seed = random.randrange(2**31) if seed is None else seed
        note = f"Seed **{seed}**: type it in the seed box to get this very text again."
        text = prompt
        for text in self.generate(prompt, max_new_tokens, temperature, top_k, top_p, seed):
            yield text, gr.skip(), f"Seed **{seed}**: writing…"
        greedy = ""
        if with_greedy is True:
            greedy = self.nextword.generate(show.clip(valid.text(prompt, "prompt"), "tail")[0], temperature=0,
                                            max_new_tokens=valid.integer(max_new_tokens, "max_new_tokens", 1,
                                                                         MAX_NEW_TOKENS), whole_words=True)
        yield text, greedy, note

    def surprisal(self, text: str):
        """Words coloured by surprisal, the table of bits and alternatives, one plain sentence, the details."""
        text, clipped = show.clip(valid.text(text), "head")
        return show.surprisal_view(self.nextword.tokenizer, self.nextword.surprisal_summary(text), clipped)

    def _gate_trace(self, kind: str, text: str) -> gates.TextTrace:
        return self.models[kind].gate_trace(text, max_tokens=INSPECT_TOKENS)

    def gate_trace(self, kind: str, text: str) -> tuple[gates.TextTrace, bool]:
        kind = valid.choice(kind, "model", self.models)
        text, clipped = show.clip(valid.text(text), "head")
        return self._cached_gate_trace(kind, text), clipped

    def _layer_values(self, text: str, kind: str, layer, direction: str):
        traced, clipped = self.gate_trace(kind, text)
        rnn = self.models[kind].model.rnn
        layer = None if layer is None else valid.integer(layer, "layer")
        direction = valid.choice(direction, "direction", gates.DIRECTIONS)
        layer, d = show.check_layer_and_direction(rnn, layer, direction)
        where = f"layer {layer}" + (f", {direction}" if rnn.bidirectional else "")
        return traced, clipped, layer, d, where

    def inspect_gates(self, text: str, kind: str = "sentiment", layer: float = 0, direction: str = "forward",
                      signal: str = "f", order: str = "variance", unit: str | int | None = None,
                      units: str = "top", view: str = "words"):
        """Heatmap (words × the top or all units), the text coloured by one unit, that unit's line chart,
        the saturation table, the details."""
        traced, clipped, layer, d, where = self._layer_values(text, kind, layer, direction)
        pipe, rnn = self.models[kind], self.models[kind].model.rnn
        values = traced.layers[(layer, d)]
        signal = valid.choice(signal, "signal", values)
        order = valid.choice(order, "order", [value for _, value in show.ORDER_CHOICES])
        units = valid.choice(units, "units", [value for _, value in UNIT_CHOICES])
        view = valid.choice(view, "view", [value for _, value in VIEW_CHOICES])
        matrix = values[signal].float()
        order, order_text, contributions = show.rank_units(pipe, traced, matrix, signal, order, layer, d)
        unit = show.pick_unit(unit, order, matrix.shape[1])
        rows = show.inspector_steps(pipe.tokenizer, traced, view)
        labels = [show.shown(row.text) for row in rows]
        shown_units = order if units == "all" else order[:plots.TOP_UNITS]
        heatmap = plots.heatmap_figure(show.step_values(matrix, rows, signal).numpy(), labels, shown_units, signal,
                                       where, selected_unit=unit)
        unit_text = show.unit_chips(rows, show.step_values(matrix, rows, signal)[:, unit], signal)
        lines = {name: show.step_values(v.float(), rows, name)[:, unit].tolist() for name, v in values.items()
                 if name != "g" and name != "n"}
        chart = plots.unit_figure(lines, labels, unit, where)
        notes = show.inspector_notes(unit, order, order_text, where, view, contributions, rnn.bidirectional,
                                     pipe.start_id is not None, traced.truncated or clipped, len(traced.ids))
        return heatmap, unit_text, chart, show.saturation_table(traced.layers, layer, d), notes

    def find_units(self, text: str, kind: str = "sentiment", layer: float = 0, direction: str = "forward",
                   marked: str = "", measure: str = "memory"):
        """The units of the chosen layer and direction that change most at the marked words, ranked."""
        measure = valid.choice(measure, "measure", [value for _, value in MEASURE_CHOICES])
        traced, _, layer, d, where = self._layer_values(text, kind, layer, direction)
        rows = show.inspector_steps(self.models[kind].tokenizer, traced, "words")
        steps = show.marked_steps(rows, valid.text(marked, "marked"))
        order, found = show.find_units(traced.layers[(layer, d)], steps, measure)
        what = "memory jumps most" if measure == "memory" else "gates move most"
        return found, (f"In {where}, these units' {what} at the marked words, strongest first (unit {order[0]} "
                       "on top). Click a row to see that unit's line chart.")

    @staticmethod
    def found_unit(evt: gr.SelectData) -> str:
        """The unit of the row clicked in the found-units table (its first cell)."""
        return str(evt.row_value[0])

    def export(self, text: str, kind: str = "sentiment", fmt: str = "json") -> str:
        """A file with every gate, cell and hidden value of the traced text (seqdemo.core.gates.to_json / to_npz)."""
        traced, _ = self.gate_trace(kind, text)
        return str(self.exports.write(traced, f"seqdemo-gates-{kind}.{fmt}", fmt))

    def controls(self, kind: str, signal: str | None = None, order: str | None = None):
        """Updates for the layer, direction, signal and order choices when the model changes (kept when valid)."""
        c = show.inspector_choices(self.models.get(kind, self.sentiment))
        signals, orders = [value for _, value in c["signals"]], [value for _, value in c["orders"]]
        return (
            gr.update(choices=c["layers"], value=c["last_layer"]),
            gr.update(choices=list(gates.DIRECTIONS), value="forward", visible=c["bidirectional"]),
            gr.update(choices=c["signals"], value=signal if signal in signals else c["signal"]),
            gr.update(choices=c["orders"], value=order if order in orders else "variance"),
        )


# -- the page --------------------------------------------------------------------------------------------------


class Wiring:
    """How a tab connects its controls: `run` puts a handler on the page (errors inline, in `error`), `api`
    publishes it as a named endpoint (errors raised, as a script expects), on a hidden button of its own."""

    def __init__(self, handlers: Handlers, page_wrap, api_wrap):
        self.h, self.page_wrap, self.api_wrap = handlers, page_wrap, api_wrap
        self.loads: list = []  # (fn, inputs, outputs) run when the page opens: results on arrival

    def run(self, handler, inputs, outputs, error, triggers=(), on_load=False, **options):
        """Runs `handler` on each trigger (an event method such as button.click) with its message box `error`;
        returns the wrapped function so an example click or a chain can run it too."""
        fn = serving.model_handler(inline_errors(self.page_wrap(handler), len(outputs)))
        fn.__name__ = f"page_{handler.__name__}"  # gradio names events after their function: leave the API its names
        for trigger in triggers:
            trigger(fn, inputs, [*outputs, error], **PRIVATE, **options)
        if on_load:
            self.loads.append((fn, inputs, [*outputs, error]))
        return fn

    def api(self, handler, inputs, outputs, name: str) -> None:
        gr.Button(visible=False).click(serving.model_handler(self.api_wrap(handler)), inputs, outputs, api_name=name)


def error_box(elem_id: str) -> gr.Markdown:
    return gr.Markdown("", elem_id=elem_id, elem_classes="sq-error")


def caption(text: str, **options) -> gr.Markdown:
    return gr.Markdown(text, elem_classes="sq-caption", **options)


def on_example(examples: gr.Examples, fn, inputs, outputs) -> None:
    """Clicking an example fills the box, then runs `fn` on it (all of `inputs`, the example included)."""
    examples.load_input_event.then(fn, inputs, outputs, **PRIVATE)


def sentiment_tab(w: Wiring) -> None:
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
    summary = gr.HTML(elem_id="sentiment-summary")
    highlight = gr.HTML(label="How much each word pushed the decision", elem_id="sentiment-highlight")
    method = gr.Radio(METHOD_CHOICES, value="integrated_gradients", label="How the pushes are measured",
                      elem_id="sentiment-method")
    plot = gr.Plot(label="Reading trajectory", elem_id="sentiment-trajectory")
    caption("The line is the verdict the model would give if the text stopped after each word: where it crosses "
            "the middle, the model changed its mind.")
    pushes = gr.Dataframe(label="Strongest pushes", interactive=False, elem_id="sentiment-table")
    with gr.Accordion("Details: the exact numbers", open=False):
        details = gr.Markdown(elem_classes="seqdemo-notes", elem_id="sentiment-notes")

    inputs, outputs = [text, method], [label, highlight, pushes, summary, details]
    h = w.h
    read = w.run(h.read_review, inputs, [*outputs, plot], error, (button.click, text.submit), on_load=True)
    w.run(h.classify, inputs, outputs, error, (method.input,))
    on_example(examples, read, inputs, [*outputs, plot, error])
    w.api(h.classify, inputs, outputs, "classify")
    w.api(h.trajectory, [text], [plot], "trajectory")


def nextword_tab(w: Wiring) -> None:
    h = w.h
    gr.Markdown("A 3-layer LSTM language model: after each piece its state (h, c) is its memory of everything read "
                "so far, and from it the model guesses what comes next.")
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt (Enter runs it)", lines=1, max_lines=6, value=PROMPTS[0],
                                elem_id="nextword-text")
            k = gr.Slider(1, 20, value=5, step=1, label="How many words (k)", elem_id="nextword-k")
            button = gr.Button("Next words", variant="primary", elem_id="nextword-button")
            error = error_box("nextword-error")
            examples = gr.Examples(PROMPTS, inputs=prompt, label="Prompts")
        with gr.Column(scale=2):
            words = gr.Label(label="Likeliest next words", elem_id="nextword-label")
            notes = gr.Markdown(elem_classes="seqdemo-notes", elem_id="nextword-notes")
    next_words = w.run(h.next_words, [prompt, k], [words, notes], error, (button.click, prompt.submit),
                       on_load=True)
    on_example(examples, next_words, [prompt, k], [words, notes, error])
    w.api(h.next_words, [prompt, k], [words, notes], "next_words")

    gr.Markdown("### Generate, piece by piece")
    with gr.Row():
        temperature = gr.Slider(0, 2, value=0.8, step=0.05, label="temperature (0 = always the likeliest)")
        top_k = gr.Slider(0, 200, value=50, step=1, label="top-k (0 = off)")
        top_p = gr.Slider(0.05, 1, value=0.95, step=0.01, label="top-p (nucleus)")
    with gr.Row():
        max_new = gr.Slider(1, MAX_NEW_TOKENS, value=40, step=1, label="max new pieces (it finishes its last word)")
        # A textbox, not a gr.Number: gradio 6's number box cannot stay blank (it shows 0).
        seed = gr.Textbox(value="", max_lines=1, label="seed (blank = a fresh random one)", elem_id="generate-seed",
                          placeholder="blank, or a number to repeat a text")
        with_greedy = gr.Checkbox(value=False, label="also show the greedy continuation (always the likeliest piece)",
                                  elem_id="generate-greedy")
    generate = gr.Button("Generate", variant="primary", elem_id="generate-button")
    generate_error = error_box("generate-error")
    with gr.Row():
        output = gr.Textbox(label="Prompt + sampled continuation", lines=5, interactive=False,
                            elem_id="generate-output")
        greedy = gr.Textbox(label="Prompt + greedy continuation", lines=5, interactive=False, visible=False,
                            elem_id="generate-greedy-output")
    seed_note = gr.Markdown(elem_id="generate-seed-note")
    with_greedy.change(lambda on: gr.update(visible=on), with_greedy, greedy, **PRIVATE)
    w.run(h.generate_page, [prompt, max_new, temperature, top_k, top_p, seed, with_greedy],
          [output, greedy, seed_note], generate_error, (generate.click,), on_load=True)
    api_seed = gr.Number(value=None, precision=0, label="seed", visible=False)
    w.api(h.generate, [prompt, max_new, temperature, top_k, top_p, api_seed], output, "generate")

    gr.Markdown("### Surprisal: how unexpected was each word?")
    text = gr.Textbox(label="Text to score (Enter runs it)", lines=1, max_lines=8,
                      value="The movie was not good at all.", elem_id="surprisal-text")
    score = gr.Button("Score", variant="primary", elem_id="surprisal-button")
    surprisal_error = error_box("surprisal-error")
    summary = gr.Markdown(elem_id="surprisal-summary")
    highlight = gr.HTML(elem_id="surprisal-highlight")
    bits = gr.Dataframe(label="Each word: bits, probability, and what the model expected instead",
                        interactive=False, wrap=True, elem_id="surprisal-table")
    with gr.Accordion("Details: the exact numbers", open=False):
        surprisal_notes = gr.Markdown(elem_classes="seqdemo-notes", elem_id="surprisal-notes")
    outputs = [highlight, bits, summary, surprisal_notes]
    w.run(h.surprisal, [text], outputs, surprisal_error, (score.click, text.submit), on_load=True)
    w.api(h.surprisal, [text], outputs, "surprisal")


def inspector_tab(w: Wiring, model_choices: list[tuple[str, str]]) -> None:
    h = w.h
    gr.Markdown("Every gate of every unit at every word, computed from the model's own weights. Start with the "
                "line chart of one unit, or **find the units** that notice a word of your choice.")
    with gr.Accordion("What the signals mean", open=False):
        gr.Markdown(GATE_LEGEND)
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Text (Enter runs it)", lines=1, max_lines=8, value=EXAMPLES[0],
                              elem_id="gates-text")
            examples = gr.Examples(EXAMPLES, inputs=text, label="Examples")
        with gr.Column(scale=2):
            model = gr.Dropdown(model_choices, value="sentiment", label="Model", elem_id="gates-model")
            button = gr.Button("Inspect", variant="primary", elem_id="gates-button")
    c = show.inspector_choices(h.sentiment)
    with gr.Row():
        layer = gr.Radio(c["layers"], value=c["last_layer"], label="Layer (0 reads the words)", elem_id="gates-layer")
        direction = gr.Radio(list(gates.DIRECTIONS), value="forward", label="Direction", visible=c["bidirectional"],
                             elem_id="gates-direction")
        signal = gr.Radio(c["signals"], value=c["signal"], label="Signal", elem_id="gates-signal")
    with gr.Row():
        order = gr.Radio(c["orders"], value="variance", label="Order the units by", elem_id="gates-order")
        units = gr.Radio(UNIT_CHOICES, value="top", label="Units shown", elem_id="gates-units")
        view = gr.Radio(VIEW_CHOICES, value="words", label="Rows", elem_id="gates-view")
        # A textbox, not a gr.Number: gradio 6's number box cannot stay blank (it shows 0).
        unit = gr.Textbox(value="", max_lines=1, elem_id="gates-unit",
                          label="Unit to follow (blank = the first of the order)",
                          placeholder="a unit number, or blank")
    error = error_box("gates-error")
    heatmap = gr.Plot(label="Words × units", elem_id="gates-heatmap")
    caption("Each column is one unit (its number below), each row a word. A column that changes colour at one word "
            "belongs to a unit that reacts to it: type its number in the unit box to follow it.")
    unit_text = gr.HTML(elem_id="gates-unit-text")
    caption("The text coloured by the followed unit's signal: the words where it lights up are the ones it "
            "responds to.")
    chart = gr.Plot(label="The followed unit over the text", elem_id="gates-unit-chart")
    caption("The conveyor belt: the black line is the unit's memory c. ✕ marks a word where the forget gate fell "
            "below 0.5 (most of the belt was dropped), ▲ one where the input gate rose above 0.5 (something new "
            "was written). A GRU has no separate belt: its memory is h, which the update gate z keeps.")

    gr.Markdown("### Find the units that notice a word")
    with gr.Row():
        marked = gr.Textbox(value="not", max_lines=1, label="Word or words from the text (Enter finds)",
                            elem_id="gates-marked")
        measure = gr.Radio(MEASURE_CHOICES, value="memory", label="Rank units by", elem_id="gates-measure")
        find = gr.Button("Find units", elem_id="gates-find-button")
    find_error = error_box("gates-find-error")
    found_note = gr.Markdown(elem_id="gates-found-note")
    found = gr.Dataframe(interactive=False, wrap=True, elem_id="gates-found")
    with gr.Accordion("Details: the exact numbers", open=False):
        notes = gr.Markdown(elem_classes="seqdemo-notes", elem_id="gates-notes")
        saturation = gr.Dataframe(
            label="Saturation in the chosen layer and direction (and in all of them): the share of tokens × units "
            "where each gate is shut (< 0.1), open (> 0.9) or in between", interactive=False, wrap=True,
            elem_id="gates-saturation")
    with gr.Accordion("Download every value of this trace", open=False):
        with gr.Row():
            fmt = gr.Radio([("JSON", "json"), ("NumPy .npz", "npz")], value="npz", label="Format")
            export = gr.Button("Prepare download", elem_id="gates-export-button")
            file = gr.File(label="Traces", elem_id="gates-file", height=90)
        export_error = error_box("gates-export-error")

    inputs = [text, model, layer, direction, signal, order, unit, units, view]
    outputs = [heatmap, unit_text, chart, saturation, notes]
    find_inputs = [text, model, layer, direction, marked, measure]
    inspect = w.run(h.inspect_gates, inputs, outputs, error, (button.click, text.submit), on_load=True)
    find_all = w.run(h.find_units, find_inputs, [found, found_note], find_error,
                     (button.click, text.submit, find.click, marked.submit, measure.input, layer.input,
                      direction.input), on_load=True)
    w.run(h.inspect_gates, inputs, outputs, error,
          (layer.input, direction.input, signal.input, order.input, units.input, view.input, unit.submit, unit.blur),
          trigger_mode="always_last")
    found.select(h.found_unit, None, unit, **PRIVATE).then(inspect, inputs, [*outputs, error], **PRIVATE)
    # No preprocessing: a second model switch can arrive while the page still shows the first one's signal, which
    # gradio would refuse against the new model's choices; controls keeps a signal only where it is valid.
    model.input(h.controls, [model, signal, order], [layer, direction, signal, order], preprocess=False,
                **PRIVATE).then(
        inspect, inputs, [*outputs, error], **PRIVATE).then(find_all, find_inputs, [found, found_note, find_error],
                                                            **PRIVATE)
    on_example(examples, inspect, inputs, [*outputs, error])
    examples.load_input_event.then(find_all, find_inputs, [found, found_note, find_error], **PRIVATE)
    # A download belongs to the text and model it was made from: a new one of either takes it away.
    for event in (text.change, model.change):
        event(None, None, file, js="() => null", **PRIVATE)
    w.run(h.export, [text, model, fmt], [file], export_error, (export.click,))

    # The API takes the layer and the signal as plain values: the page's radios offer the chosen model's layers
    # and signals only, and gradio checks a radio's value against the choices it was built with (a script has no
    # page session whose choices followed the model).
    api_layer = gr.Number(value=c["last_layer"], precision=0, label="layer", visible=False)
    api_signal = gr.Textbox(value=c["signal"], label="signal", visible=False)
    w.api(h.inspect_gates, [text, model, api_layer, direction, api_signal, order, unit, units, view], outputs,
          "inspect")
    w.api(h.find_units, [text, model, api_layer, direction, marked, measure], [found, found_note], "find_units")
    w.api(h.export, [text, model, fmt], file, "export_trace")


def about_models(sentiment: SentimentPipeline, nextword: NextWordPipeline) -> None:
    with gr.Accordion("About the models", open=False, elem_id="about-models"):
        gr.Markdown(show.header_line(sentiment, nextword), elem_id="device-line")
        gr.Markdown(show.metrics_markdown(sentiment, "Sentiment model"), elem_id="sentiment-metrics")
        gr.Markdown(show.metrics_markdown(nextword, "Next-word model"), elem_id="nextword-metrics")
        gr.Markdown("API: every result is an endpoint (`/classify`, `/trajectory`, `/next_words`, `/generate`, "
                    "`/surprisal`, `/inspect`, `/find_units`, `/export_trace`, `/compare_results`, `/compare_text`); see "
                    "*Use via API* below, or call them with `gradio_client`.")


class CompareHandlers:
    """The Compare tab's endpoints, around the comparison opened once when the page is built. Without one, each
    answers with the sentence that says why (and the command that produces it)."""

    def __init__(self, comparison: compare_view.Comparison | None, unavailable: str):
        self.comparison, self.unavailable = comparison, unavailable

    def _opened(self) -> compare_view.Comparison:
        if self.comparison is None:
            raise ValueError(self.unavailable)
        return self.comparison

    def results(self):
        """The results table, the claims' verdicts, accuracy by length and training speed."""
        results = self._opened().results
        return (compare_view.results_table(results), compare_view.claims_markdown(results),
                plots.length_accuracy_figure(results["variants"], compare_view.bucket_names(results)),
                plots.speed_figure(results["variants"]))

    def read_text(self, text: str):
        """Every variant's verdict on the text, a note on what they read, and the vanishing-gradient chart."""
        comparison = self._opened()
        text, _ = show.clip(valid.text(text), "head_tail")
        verdicts, note = compare_view.verdicts_view(comparison, text)
        return verdicts, note, plots.gradient_figure(compare_view.gradient_curves(comparison, text))


def build_compare_tab(comparison: compare_view.Comparison | None, unavailable: str) -> None:
    """The Compare tab: the chapter's claims measured (python -m seqdemo.experiments.compare wrote them), and every variant
    on the visitor's text. Without a usable comparison the tab says why in one sentence; the page works on."""
    h = CompareHandlers(comparison, unavailable)
    shown = comparison is not None
    # The variants are small and stay on the CPU (also on ZeroGPU): their handlers need no GPU wrapper, but they
    # share the model queue (seqdemo.web.serving) with the others.
    results, read_text = serving.model_handler(friendly(h.results)), serving.model_handler(friendly(h.read_text))
    initial = h.results() if shown else (None, "", None, None)
    # The page's example, read once as the page is built: the tab opens on a worked example, as the others do.
    example = h.read_text(EXAMPLES[1]) if shown else (None, "", None)
    gr.Markdown(unavailable, visible=not shown, elem_id="compare-missing")
    with gr.Column(visible=shown):
        gr.Markdown("Eight small sentiment models (about 100k trainable parameters each) trained with one recipe: "
                    "the same data, tokenizer, frozen word embedding and training time. Do the chapter's claims "
                    "hold?")
        claims = gr.Markdown(initial[1], elem_classes="seqdemo-notes", elem_id="compare-claims")
        table = gr.Dataframe(initial[0], label="Measured per variant (mean ± half the spread over seeds)",
                             interactive=False, wrap=True, elem_id="compare-table")
        with gr.Row():
            by_length = gr.Plot(initial[2], label="Accuracy by review length", elem_id="compare-length")
            speed = gr.Plot(initial[3], label="Training speed", elem_id="compare-speed")
        gr.Markdown("### Your text, read by every variant")
        with gr.Row():
            with gr.Column(scale=3):
                text = gr.Textbox(label="Review (Enter runs it, Shift+Enter for a new line)", lines=1, max_lines=8,
                                  value=EXAMPLES[1], elem_id="compare-text")
                button = gr.Button("Compare", variant="primary", elem_id="compare-button")
                gr.Examples(EXAMPLES, inputs=text, label="Examples")
            with gr.Column(scale=4):
                verdicts = gr.Dataframe(example[0], label="Each variant's verdict", interactive=False, wrap=True,
                                        elem_id="compare-verdicts")
                note = gr.Markdown(example[1], elem_classes="seqdemo-notes", elem_id="compare-notes")
        gr.Markdown("### The vanishing gradient, visible\n\n" + compare_view.GRADIENT_NOTE)
        gradient = gr.Plot(example[2], label="‖∂ logit / ∂ embedding‖ per token", elem_id="compare-gradient")
    gr.Button(visible=False).click(results, None, [table, claims, by_length, speed], api_name="compare_results")
    outputs = [verdicts, note, gradient]
    button.click(read_text, text, outputs, api_name="compare_text")
    text.submit(read_text, text, outputs, **PRIVATE)


def build_demo(sentiment: SentimentPipeline, nextword: NextWordPipeline, compare_folder=COMPARE_FOLDER) -> gr.Blocks:
    """The whole page around two loaded pipelines (seqdemo.load("sentiment"), seqdemo.load("nextword")), and the
    comparison in `compare_folder` (its variants on the language model's embedding)."""
    # Analytics stay off unless the user turns them on: gradio 6 reads this when a page is built and launched.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    gpu = zero_gpu_decorator()

    def on_device(handler):
        return on_zero_gpu(handler, (sentiment, nextword), gpu)

    comparison, unavailable = compare_view.open_comparison(compare_folder, nextword.folder)
    variants = compare_view.inspectable_variants(comparison)
    w = Wiring(Handlers(sentiment, nextword, variants), on_device, lambda handler: friendly(on_device(handler)))
    with gr.Blocks(title="seqdemo: see inside an LSTM", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# seqdemo: see inside an LSTM")
        gr.Markdown(INTRO)
        with gr.Tabs():
            with gr.Tab("Sentiment", id="sentiment"):
                sentiment_tab(w)
            with gr.Tab("Next word", id="nextword"):
                nextword_tab(w)
            with gr.Tab("Gate inspector", id="gates"):
                inspector_tab(w, MODEL_CHOICES + [(compare_view.variant_choice(name), name) for name in variants])
            with gr.Tab("Compare", id="compare"):
                build_compare_tab(comparison, unavailable)
        about_models(sentiment, nextword)
        # Results on arrival: every tab shows a worked example, computed as the page opens.
        for fn, inputs, outputs in w.loads:
            demo.load(fn, inputs, outputs, **PRIVATE)
    serving.configure_queue(demo)
    return demo


def launch_options() -> dict:
    """What launch() needs beyond the Blocks (gradio 6 takes the CSS there)."""
    # A neutral theme: blue and orange mean positive and negative on this page, so no button wears them.
    return {"css": CSS, "theme": gr.themes.Default(primary_hue="slate", secondary_hue="slate"),
            **serving.launch_options()}


def main(checkpoints: str | None = None) -> None:
    """Loads both models once (on the GPU when there is one) and serves the page. Gradio takes the address from
    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default 127.0.0.1:7860). `checkpoints`: the local fallback folder
    (default: the project's checkpoints/; see seqdemo.inference.hub.fetch_checkpoint)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up checks, one line per request
    sentiment = seqdemo.load("sentiment", checkpoints=checkpoints)
    nextword = seqdemo.load("nextword", checkpoints=checkpoints)
    logger.info("models on %s: sentiment from %s, next word from %s", device_name(sentiment.device),
                sentiment.source, nextword.source)
    serving.stop_on_sigterm()
    build_demo(sentiment, nextword).launch(**launch_options())


if __name__ == "__main__":
    main()
