"""The seqdemo page: see how the LSTM reads.

    python app.py                                   # http://127.0.0.1:7860
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=8080 python app.py

Hugging Face Spaces runs `python app.py` as well, so the models load once, in `main()`, and the page is built
around them by `build_demo(sentiment, nextword)`; tests build the same page around small models instead.

Layout and thin handlers only: the numbers come from the pipelines and seqdemo.gates, the spans, tables and
notes from seqdemo.presentation, the figures from seqdemo.plots. User text is never rendered as HTML: it
reaches the page through Label, HighlightedText, Textbox and Dataframe cells (all text) and plotly labels
(escaped), never through Markdown or an unescaped error message.

On a ZeroGPU Space (the `spaces` package importable) every handler that runs a model is wrapped in
`spaces.GPU` and moves the models to the GPU inside, the only place a ZeroGPU Space has one.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import math
import os
import time

import gradio as gr
import torch

import seqdemo
from seqdemo import compare_view, gates, plots
from seqdemo import presentation as show
from seqdemo.compare import DEFAULT_OUT as COMPARE_FOLDER
from seqdemo.device import device_name, on_zero_gpu, zero_gpu_decorator
from seqdemo.generation import NextWordPipeline
from seqdemo.presentation import IG_STEPS
from seqdemo.sentiment import SentimentPipeline

logger = logging.getLogger("seqdemo.app")

INSPECT_TOKENS = 256  # the gate inspector traces at most this many tokens
METHOD_CHOICES = [
    ("where the verdict was read (exact, one forward pass)", "evidence"),
    (f"integrated gradients ({IG_STEPS} steps, slower)", "integrated_gradients"),
]
MAX_NEW_TOKENS = 300  # the page's slider; the library accepts up to 1000
STREAM_INTERVAL = 0.04  # seconds between two streamed updates (at most 25 a second; every token when slower)

EXAMPLES = ["not good at all", "The plot was thin but the acting saved it", "I loved it"]
PROMPTS = ["The acting was", "I would not recommend this movie to", "The best thing about this film is"]
MODEL_CHOICES = [("Sentiment: bidirectional LSTM classifier", "sentiment"), ("Next word: 3-layer LSTM", "nextword")]
INTRO = """\
An LSTM reads a text one token at a time. Its **cell state** *c* is a conveyor belt that carries memory from
token to token, and three gates decide what rides on it: the **forget gate** *f* says how much of the old
memory stays on the belt, the **input gate** *i* how much of the new candidate *g* is put on, and the
**output gate** *o* how much of the belt is shown as the hidden state *h* that the next layer (or the
classifier) reads. Every number below is computed by the two trained models as you ask.
"""
GATE_LEGEND = "\n".join(f"- **{s}**: {plots.SIGNAL_LINES[s]}" for s in gates.LSTM_VALUES)
CSS = ".seqdemo-notes p { margin: 0.25em 0; }"
PRIVATE = {"api_visibility": "private"}  # page-only events: the named endpoints are the API


# -- wrapping the handlers ---------------------------------------------------------------------------------------


def friendly(fn):
    """Library ValueErrors and TypeErrors (empty text, bad settings) become a gr.Error with their message;
    anything else is logged with its traceback and shown as one plain line: the page never shows a stack trace."""

    def convert(error: Exception) -> gr.Error:
        if isinstance(error, gr.Error):
            return error
        if isinstance(error, (ValueError, TypeError)):
            return gr.Error(html.escape(str(error)), print_exception=False)
        logger.exception("%s failed", fn.__name__)
        return gr.Error(f"Something went wrong inside the model ({type(error).__name__}); the server log has the "
                        "details.", print_exception=False)

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


# -- the handlers ----------------------------------------------------------------------------------------------


class Handlers:
    """What each button does, around the two loaded pipelines. Each one checks the page's input, asks the
    pipeline, and hands the result to seqdemo.presentation or seqdemo.plots."""

    def __init__(self, sentiment: SentimentPipeline, nextword: NextWordPipeline):
        self.sentiment, self.nextword = sentiment, nextword
        self.models = {"sentiment": sentiment, "nextword": nextword}
        # The inspector's controls redraw from the same text: trace it once.
        self._cached_gate_trace = functools.lru_cache(maxsize=8)(self._gate_trace)

    def classify(self, text: str, method: str = "evidence"):
        """Label, attribution highlights, strongest pushes, notes."""
        pipe = self.sentiment
        text, clipped = show.clip(text, "head_tail")
        explanation = pipe.explain(text, method=method, steps=IG_STEPS)
        # The notes say how long a truncated text was: encode it whole only then.
        truncated = explanation.middle_skipped_at is not None
        text_tokens = len(pipe.tokenizer.encode(text)) if truncated else len(explanation.ids)
        highlighted, pushes, notes = show.classify_view(pipe.tokenizer, pipe.labels, explanation, text_tokens, clipped)
        return explanation.prediction["probabilities"], highlighted, pushes, notes

    def trajectory(self, text: str):
        """P(positive) after each token, as a line over the tokens read."""
        pipe = self.sentiment
        text, _ = show.clip(text, "head_tail")
        ids, truncated = pipe.encode(text)
        return plots.trajectory_figure(pipe.trajectory(text), show.token_labels(pipe.tokenizer, ids),
                                       pipe.labels[-1], truncated_at=pipe.middle_skipped_at(truncated))

    def next_words(self, prompt: str, k: float = 5):
        prompt, clipped = show.clip(prompt, "tail")
        k = int(k or 5)
        if not 1 <= k <= 50:
            raise ValueError("k must be between 1 and 50.")
        words = self.nextword.next_words(prompt, k=k)
        _, truncated = self.nextword.prompt_ids(prompt)
        return dict(words), show.next_words_notes(words, truncated or clipped, self.nextword.max_tokens - 1)

    def generate(self, prompt: str, max_new_tokens: float = 40, temperature: float = 0.8, top_k: float = 50,
                 top_p: float = 0.95, seed: float | None = 0):
        """Streams the prompt and its continuation; an update at most every STREAM_INTERVAL seconds, so a fast
        model does not spend its time on messages (a slow one still shows every token as it comes)."""
        prompt, _ = show.clip(prompt, "tail")
        seed = None if seed is None or (isinstance(seed, float) and math.isnan(seed)) else int(seed)
        stream = self.nextword.stream(prompt, max_new_tokens=int(max_new_tokens), temperature=float(temperature),
                                      top_k=int(top_k), top_p=float(top_p), seed=seed)
        text, last = prompt, 0.0
        for text in stream:
            now = time.perf_counter()
            if now - last >= STREAM_INTERVAL:
                last = now
                yield text
        yield text

    def surprisal(self, text: str):
        """Tokens coloured by surprisal, the table of bits and alternatives, notes."""
        text, clipped = show.clip(text, "head")
        return show.surprisal_view(self.nextword.tokenizer, self.nextword.surprisal_summary(text), clipped)

    def _gate_trace(self, kind: str, text: str) -> gates.TextTrace:
        return self.models[kind].gate_trace(text, max_tokens=INSPECT_TOKENS)

    def gate_trace(self, kind: str, text: str) -> tuple[gates.TextTrace, bool]:
        if kind not in self.models:
            raise ValueError(f"Model must be one of {', '.join(self.models)}.")
        text, clipped = show.clip(text, "head")
        return self._cached_gate_trace(kind, text), clipped

    def inspect_gates(self, text: str, kind: str = "sentiment", layer: float = 0, direction: str = "forward",
                      signal: str = "f", order: str = "variance", unit: str | int | None = None):
        """Heatmap, the text coloured by one unit, saturation table, mean forget gate per token, notes."""
        traced, clipped = self.gate_trace(kind, text)
        pipe, rnn = self.models[kind], self.models[kind].model.rnn
        layer, d = show.check_layer_and_direction(rnn, layer, direction)
        values = traced.layers[(layer, d)]
        if signal not in values:
            raise ValueError(f"Signal must be one of {', '.join(values)}.")
        matrix = values[signal].float()
        units, order_text, contributions = show.rank_units(pipe, traced, matrix, signal, order, layer, d)
        unit = show.pick_unit(unit, units, matrix.shape[1])
        labels = show.trace_labels(pipe.tokenizer, traced)
        where = f"layer {layer}" + (f", {direction}" if rnn.bidirectional else "")
        unit_text, meaning = show.unit_highlights(labels, matrix[:, unit], signal)
        notes = show.inspector_notes(unit, units, order_text, where, meaning, contributions, rnn.bidirectional,
                                     pipe.start_id is not None, traced.truncated or clipped, len(labels))
        heatmap = plots.heatmap_figure(matrix.numpy(), labels, units, signal, where, selected_unit=unit)
        saturation = show.saturation_table(traced.layers, layer, d)
        forget_values, forget_where = show.mean_forget(traced, layer, d, where)
        forget = plots.forget_figure(forget_values, labels, forget_where)
        return heatmap, unit_text, saturation, forget, notes

    def export(self, text: str, kind: str = "sentiment", fmt: str = "json") -> str:
        """A file with every gate, cell and hidden value of the traced text (seqdemo.gates.to_json / to_npz)."""
        traced, _ = self.gate_trace(kind, text)
        return str(show.export_trace(traced, f"seqdemo-gates-{kind}.{fmt}", fmt))

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


def sentiment_tab(h: Handlers, page) -> None:
    gr.Markdown("A **bidirectional** LSTM reads the review twice, left to right and right to left; the classifier "
                "looks at both readings (max-pooled over the tokens) and decides.")
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Review", lines=3, value=EXAMPLES[1], elem_id="sentiment-text")
            method = gr.Radio(METHOD_CHOICES, value="evidence", label="Token colours", elem_id="sentiment-method")
            button = gr.Button("Classify", variant="primary", elem_id="sentiment-button")
            gr.Examples(EXAMPLES, inputs=text, label="Try negation and contrast")
        with gr.Column(scale=2):
            label = gr.Label(label="Verdict and confidence", num_top_classes=2, elem_id="sentiment-label")
    highlight = gr.HighlightedText(
        label="How much each token pushed the decision: red = towards the verdict, purple = against it",
        elem_id="sentiment-highlight")
    notes = gr.Markdown(label="Notes", elem_classes="seqdemo-notes", elem_id="sentiment-notes")
    plot = gr.Plot(label="Reading trajectory", elem_id="sentiment-trajectory")
    pushes = gr.Dataframe(label="Strongest pushes", interactive=False, elem_id="sentiment-table")
    gr.Markdown(show.metrics_markdown(h.sentiment, "Sentiment model"), elem_id="sentiment-metrics")
    # The verdict and its colours come first; the trajectory (one pass per prefix) follows.
    inputs, outputs = [text, method], [label, highlight, pushes, notes]
    classify, trajectory = page(h.classify), page(h.trajectory)
    button.click(classify, inputs, outputs, api_name="classify").success(trajectory, text, plot,
                                                                        api_name="trajectory")
    text.submit(classify, inputs, outputs, **PRIVATE).success(trajectory, text, plot, **PRIVATE)
    method.input(classify, inputs, outputs, **PRIVATE)


def nextword_tab(h: Handlers, page) -> None:
    gr.Markdown("A 3-layer LSTM language model: after each token its state (h, c) is its memory of everything read "
                "so far, and from the last layer's h it guesses the next token.")
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt", lines=2, value=PROMPTS[0], elem_id="nextword-text")
            k = gr.Slider(1, 20, value=5, step=1, label="How many words (k)", elem_id="nextword-k")
            button = gr.Button("Next words", variant="primary", elem_id="nextword-button")
            gr.Examples(PROMPTS, inputs=prompt, label="Prompts")
        with gr.Column(scale=2):
            words = gr.Label(label="Likeliest next words", elem_id="nextword-label")
            notes = gr.Markdown(label="Notes", elem_classes="seqdemo-notes", elem_id="nextword-notes")
    button.click(page(h.next_words), [prompt, k], [words, notes], api_name="next_words")
    prompt.submit(page(h.next_words), [prompt, k], [words, notes], **PRIVATE)

    gr.Markdown("### Generate, token by token")
    with gr.Row():
        temperature = gr.Slider(0, 2, value=0.8, step=0.05, label="temperature (0 = always the likeliest)")
        top_k = gr.Slider(0, 200, value=50, step=1, label="top-k (0 = off)")
        top_p = gr.Slider(0.05, 1, value=0.95, step=0.01, label="top-p (nucleus)")
    with gr.Row():
        max_new = gr.Slider(1, MAX_NEW_TOKENS, value=40, step=1, label="max new tokens")
        seed = gr.Number(value=0, precision=0, label="seed (same seed, same text; blank = random)")
        generate = gr.Button("Generate", variant="primary", elem_id="generate-button")
    output = gr.Textbox(label="Prompt + continuation", lines=5, interactive=False, elem_id="generate-output")
    generate.click(page(h.generate), [prompt, max_new, temperature, top_k, top_p, seed], output, api_name="generate")

    gr.Markdown("### Surprisal: how unexpected was each token?")
    text = gr.Textbox(label="Text to score", lines=2, value="The movie was not good at all.", elem_id="surprisal-text")
    score = gr.Button("Score", variant="primary", elem_id="surprisal-button")
    highlight = gr.HighlightedText(label="Surprisal: the redder, the more bits (−log₂ p) the token cost",
                                   elem_id="surprisal-highlight")
    surprisal_notes = gr.Markdown(label="Notes", elem_classes="seqdemo-notes", elem_id="surprisal-notes")
    bits = gr.Dataframe(label="Each token: bits, probability, and what the model expected instead",
                        interactive=False, wrap=True, elem_id="surprisal-table")
    score.click(page(h.surprisal), text, [highlight, bits, surprisal_notes], api_name="surprisal")
    text.submit(page(h.surprisal), text, [highlight, bits, surprisal_notes], **PRIVATE)
    gr.Markdown(show.metrics_markdown(h.nextword, "Next-word model"), elem_id="nextword-metrics")


def inspector_tab(h: Handlers, page) -> None:
    gr.Markdown("Every gate of every unit at every token, computed from the model's own weights. Pick a signal:\n\n"
                + GATE_LEGEND)
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Text", lines=2, value=EXAMPLES[0], elem_id="gates-text")
            gr.Examples(EXAMPLES, inputs=text, label="Examples")
        with gr.Column(scale=2):
            model = gr.Dropdown(MODEL_CHOICES, value="sentiment", label="Model", elem_id="gates-model")
            button = gr.Button("Inspect", variant="primary", elem_id="gates-button")
    c = show.inspector_choices(h.sentiment)
    with gr.Row():
        layer = gr.Radio(c["layers"], value=c["last_layer"], label="Layer (0 reads the words)", elem_id="gates-layer")
        direction = gr.Radio(list(gates.DIRECTIONS), value="forward", label="Direction", visible=c["bidirectional"],
                             elem_id="gates-direction")
        signal = gr.Radio(c["signals"], value=c["signal"], label="Signal", elem_id="gates-signal")
    with gr.Row():
        order = gr.Radio(c["orders"], value="variance", label="Order the units by", elem_id="gates-order")
        # A textbox, not a gr.Number: gradio 6's number box cannot stay blank (it shows 0).
        unit = gr.Textbox(value="", max_lines=1, elem_id="gates-unit",
                          label="Unit to colour the text by (blank = the first unit of the order)",
                          placeholder="a unit number, or blank for the first unit of the order")
    heatmap = gr.Plot(label="Tokens × units (hover for values)", elem_id="gates-heatmap")
    unit_text = gr.HighlightedText(label="The text coloured by the chosen unit", elem_id="gates-unit-text")
    notes = gr.Markdown(label="Notes", elem_classes="seqdemo-notes", elem_id="gates-notes")
    with gr.Row():
        forget = gr.Plot(label="Mean forget gate per token", elem_id="gates-forget")
    saturation = gr.Dataframe(
        label="Saturation in the chosen layer and direction (and in all of them): the share of tokens × units where "
        "each gate is shut (< 0.1), open (> 0.9) or in between", interactive=False, wrap=True,
        elem_id="gates-saturation", column_widths=["8%", "44%", "10%", "10%", "10%", "9%", "9%"])
    with gr.Row():
        fmt = gr.Radio([("JSON", "json"), ("NumPy .npz", "npz")], value="npz",
                       label="Download every value of this trace as")
        export = gr.Button("Prepare download", elem_id="gates-export-button")
        file = gr.File(label="Traces", elem_id="gates-file", height=90)

    inputs = [text, model, layer, direction, signal, order, unit]
    outputs = [heatmap, unit_text, saturation, forget, notes]
    inspect_gates = page(h.inspect_gates)
    # The API endpoint takes the layer and the signal as plain values: the page's radios offer the chosen model's
    # layers and signals only, and gradio checks a radio's value against the choices it was built with (a script
    # has no page session whose choices followed the model).
    api_layer = gr.Number(value=c["last_layer"], precision=0, label="layer", visible=False)
    api_signal = gr.Textbox(value=c["signal"], label="signal", visible=False)
    gr.Button(visible=False).click(inspect_gates, [text, model, api_layer, direction, api_signal, order, unit],
                                   outputs, api_name="inspect")
    for event in (button.click, text.submit):
        event(inspect_gates, inputs, outputs, **PRIVATE)
    for event in (layer.input, direction.input, signal.input, order.input, unit.submit, unit.blur):
        event(inspect_gates, inputs, outputs, trigger_mode="always_last", **PRIVATE)
    model.input(h.controls, [model, signal, order], [layer, direction, signal, order], **PRIVATE).then(
        inspect_gates, inputs, outputs, **PRIVATE)
    export.click(page(h.export), [text, model, fmt], file, api_name="export_trace")


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
        text, _ = show.clip(text, "head_tail")
        verdicts, note = compare_view.verdicts_view(comparison, text)
        return verdicts, note, plots.gradient_figure(compare_view.gradient_curves(comparison, text))


def build_compare_tab(folder, embedding_from=None) -> None:
    """The Compare tab: the chapter's claims measured (python -m seqdemo.compare wrote `folder`), and every variant
    on the visitor's text. Without a usable comparison the tab says why in one sentence; the page works on."""
    comparison, unavailable = compare_view.open_comparison(folder, embedding_from)
    h = CompareHandlers(comparison, unavailable)
    shown = comparison is not None
    # The variants are small and stay on the CPU (also on ZeroGPU): their handlers need no GPU wrapper.
    results, read_text = friendly(h.results), friendly(h.read_text)
    initial = h.results() if shown else (None, "", None, None)
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
                text = gr.Textbox(label="Review", lines=3, value=EXAMPLES[1], elem_id="compare-text")
                button = gr.Button("Compare", variant="primary", elem_id="compare-button")
                gr.Examples(EXAMPLES, inputs=text, label="Examples")
            with gr.Column(scale=4):
                verdicts = gr.Dataframe(label="Each variant's verdict", interactive=False, wrap=True,
                                        elem_id="compare-verdicts")
                note = gr.Markdown(elem_classes="seqdemo-notes", elem_id="compare-notes")
        gr.Markdown("### The vanishing gradient, visible\n\n" + compare_view.GRADIENT_NOTE)
        gradient = gr.Plot(label="‖∂ logit / ∂ embedding‖ per token", elem_id="compare-gradient")
    gr.Button(visible=False).click(results, None, [table, claims, by_length, speed], api_name="compare_results")
    outputs = [verdicts, note, gradient]
    button.click(read_text, text, outputs, api_name="compare_text")
    text.submit(read_text, text, outputs, **PRIVATE)


def concurrency() -> int:
    """Requests served at once: the GPU overlaps a few; on a CPU each request already uses every core."""
    cores = os.cpu_count() or 1
    return int(os.environ.get("SEQDEMO_CONCURRENCY", 4 if torch.cuda.is_available() else max(2, min(cores, 8))))


def build_demo(sentiment: SentimentPipeline, nextword: NextWordPipeline, compare_folder=COMPARE_FOLDER) -> gr.Blocks:
    """The whole page around two loaded pipelines (seqdemo.load("sentiment"), seqdemo.load("nextword")), and the
    comparison in `compare_folder` (its variants on the language model's embedding)."""
    # Analytics stay off unless the user turns them on: gradio 6 reads this when a page is built and launched.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    h = Handlers(sentiment, nextword)
    gpu = zero_gpu_decorator()

    def page(handler):
        return friendly(on_zero_gpu(handler, (sentiment, nextword), gpu))

    with gr.Blocks(title="seqdemo: see inside an LSTM", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# seqdemo: see inside an LSTM")
        gr.Markdown(INTRO)
        gr.Markdown(show.header_line(sentiment, nextword), elem_id="device-line")
        with gr.Tabs():
            with gr.Tab("Sentiment (BiLSTM)", id="sentiment"):
                sentiment_tab(h, page)
            with gr.Tab("Next word (3-layer LSTM)", id="nextword"):
                nextword_tab(h, page)
            with gr.Tab("Gate inspector", id="gates"):
                inspector_tab(h, page)
            with gr.Tab("Compare", id="compare"):
                build_compare_tab(compare_folder, nextword.folder)
        gr.Markdown("API: every button is an endpoint (`/classify`, `/trajectory`, `/next_words`, `/generate`, "
                    "`/surprisal`, `/inspect`, `/export_trace`); see *Use via API* below, or call them with "
                    "`gradio_client`.")
    limit = concurrency()
    demo.queue(default_concurrency_limit=limit, max_size=16 * limit)
    return demo


def launch_options() -> dict:
    """What launch() needs beyond the Blocks (gradio 6 takes the CSS there)."""
    return {"css": CSS}


def main(checkpoints: str | None = None) -> None:
    """Loads both models once (on the GPU when there is one) and serves the page. Gradio takes the address from
    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default 127.0.0.1:7860). `checkpoints`: the local fallback folder
    (default: the project's checkpoints/; see seqdemo.hub.fetch_checkpoint)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up checks, one line per request
    sentiment = seqdemo.load("sentiment", checkpoints=checkpoints)
    nextword = seqdemo.load("nextword", checkpoints=checkpoints)
    logger.info("models on %s: sentiment from %s, next word from %s", device_name(sentiment.device),
                sentiment.source, nextword.source)
    build_demo(sentiment, nextword).launch(**launch_options())


if __name__ == "__main__":
    main()
