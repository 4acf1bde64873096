"""The seqdemo page: see how the LSTM reads.

    python app.py                                   # http://127.0.0.1:7860
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=8080 python app.py

Hugging Face Spaces runs `python app.py` as well, so the models load once, in `main()`, and the page is built
around them by `build_demo(sentiment, nextword)`; tests build the same page around small models instead.

UI wiring only: every number comes from seqdemo (the pipelines and seqdemo.gates); the figures are drawn by
seqdemo.plots. User text is never rendered as HTML: it reaches the page through Label, HighlightedText,
Textbox and Dataframe cells (all text), plotly labels (escaped), and never through Markdown or an error
message unescaped.
"""

from __future__ import annotations

import os

# Analytics stay off unless the user turns them on: gradio reads this when it is imported.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import codecs  # noqa: E402
import functools  # noqa: E402
import html  # noqa: E402
import inspect as pyinspect  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import gradio as gr  # noqa: E402
import torch  # noqa: E402

from seqdemo import gates, plots  # noqa: E402
from seqdemo.device import describe  # noqa: E402

logger = logging.getLogger("seqdemo.app")

MAX_CHARS = 100_000  # the longest text a handler passes on: far beyond what the models read (512 / 2048 tokens)
INSPECT_TOKENS = 256  # the gate inspector traces at most this many tokens
TOP_ROWS = 12  # rows in the "strongest pushes" table
IG_STEPS = 16  # integrated-gradients steps (SentimentPipeline.explain's default)
METHOD_CHOICES = [
    ("where the verdict was read (exact, one forward pass)", "evidence"),
    (f"integrated gradients ({IG_STEPS} steps, slower)", "integrated_gradients"),
]
METHOD_NOTES = {
    "evidence": "Colours: **where the verdict was read**. The classifier keeps, for each of its features, the "
    "largest value one LSTM unit reached anywhere in the text (max pooling), and weighs them linearly; a token's "
    "push is the weighed value of the features that peaked at it. Exact, but a token's state has read its "
    "neighbours too (the forward LSTM everything before it, the backward one everything after).",
    "integrated_gradients": f"Colours: **integrated gradients** ({IG_STEPS} steps from an all-zero input to the "
    "text's embeddings): how the log-odds change as each token fades in. The pushes approach the difference below "
    "as the steps grow.",
}
OFFSET_NAMES = {"evidence": "the classifier's bias", "integrated_gradients": "log-odds of the all-zero input"}
MAX_NEW_TOKENS = 300  # the page's slider; the library accepts up to 1000
STREAM_INTERVAL = 0.04  # seconds between two streamed updates (at most 25 a second; every token when slower)
EXPORT_MAX_AGE = 3600  # trace downloads are deleted after an hour
EXPORTS = Path(tempfile.gettempdir()) / "seqdemo-exports"

EXAMPLES = ["not good at all", "The plot was thin but the acting saved it", "I loved it"]
PROMPTS = ["The acting was", "I would not recommend this movie to", "The best thing about this film is"]
MODEL_CHOICES = [("Sentiment: bidirectional LSTM classifier", "sentiment"), ("Next word: 3-layer LSTM", "nextword")]
ORDER_CHOICES = [
    ("unit index", "index"),
    ("variance over the text", "variance"),
    ("contribution to the decision", "contribution"),
]
DIRECTION_NAMES = gates.DIRECTIONS  # ("forward", "backward")
START = gates.START_TOKEN  # how the inspector labels the next-word model's begin-of-text token

INTRO = """\
An LSTM reads a text one token at a time. Its **cell state** *c* is a conveyor belt that carries memory from
token to token, and three gates decide what rides on it: the **forget gate** *f* says how much of the old
memory stays on the belt, the **input gate** *i* how much of the new candidate *g* is put on, and the
**output gate** *o* how much of the belt is shown as the hidden state *h* that the next layer (or the
classifier) reads. Every number below is computed by the two trained models as you ask.
"""

GATE_LEGEND = "\n".join(f"- **{s}**: {plots.SIGNAL_LINES[s]}" for s in gates.LSTM_VALUES)

CSS = ".seqdemo-notes p { margin: 0.25em 0; }"


# -- text helpers ----------------------------------------------------------------------------------------------

_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def visible(text: str) -> str:
    """Control characters made visible (␀, ␇, ...) and bidi overrides named, so a span shows what was read.
    Newlines and tabs stay as they are."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in "\n\t":
            out.append(ch)
        elif code < 0x20:
            out.append(chr(0x2400 + code))
        elif code == 0x7F:
            out.append("␡")
        elif ch in _BIDI_CONTROLS:
            out.append(f"[U+{code:04X}]")
        else:
            out.append(ch)
    return "".join(out)


def md(text: str) -> str:
    """Any text made literal inside Markdown (the page never shows user text this way; file contents it does)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", str(text))


def clip(text, keep: str) -> tuple[str, bool]:
    """At most MAX_CHARS characters: the 'head', the 'tail' or the 'head_tail' (both ends, as the classifier
    keeps the first and last tokens of a long review). Returns (text, whether it was cut)."""
    if not isinstance(text, str):
        raise gr.Error("Type a text first.", print_exception=False)
    if len(text) <= MAX_CHARS:
        return text, False
    if keep == "head":
        return text[:MAX_CHARS], True
    if keep == "tail":
        return text[-MAX_CHARS:], True
    half = MAX_CHARS // 2
    return text[:half] + " " + text[-half:], True


def token_spans(
    tokenizer, ids: list[int], values: list[float], first: bool = True
) -> list[tuple[str, float, list[int]]]:
    """The text the model read, cut at its tokens: [(text, summed value, piece positions)].

    Byte-fallback pieces (an emoji is four) are merged into the characters they spell, and their values are
    summed: right for surprisal (bits add up along a character's pieces) and for attributions (completeness).
    `first`: the span starts the text, so the word-start mark of its first piece is no space."""
    spans: list[tuple[str, float, list[int]]] = []
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending_value, pending_positions = 0.0, []
    for position, (token, value) in enumerate(zip(ids, values)):
        if tokenizer.sp.is_byte(token):
            byte = int(tokenizer.sp.id_to_piece(token)[3:5], 16)
            pending_value += value
            pending_positions.append(position)
            text = decoder.decode(bytes([byte]))
            if text:
                spans.append((text, pending_value, pending_positions))
                pending_value, pending_positions = 0.0, []
            continue
        if pending_positions:  # an unfinished character before a normal piece
            spans.append((decoder.decode(b"", final=True) or "\ufffd", pending_value, pending_positions))
            decoder.reset()
            pending_value, pending_positions = 0.0, []
        spans.append((tokenizer.display(token), value, [position]))
    if pending_positions:
        spans.append((decoder.decode(b"", final=True) or "\ufffd", pending_value, pending_positions))
    if first and spans and spans[0][0].startswith(" "):
        text, value, positions = spans[0]
        spans[0] = (text[1:], value, positions)
        if not spans[0][0] and len(spans) > 1:  # a lone word-start mark: part of the next span
            text, next_value, next_positions = spans[1]
            spans[1:2] = []
            spans[0] = (text, value + next_value, positions + next_positions)
    return [(visible(text), value, positions) for text, value, positions in spans]


def step_labels(tokenizer, ids: list[int], pieces: list[str]) -> list[str]:
    """One label per step the model took: the piece, except that a byte piece spelling a whole ASCII character
    shows that character ("<" rather than <0x3C>), and the begin-of-text token shows as ⟨start⟩."""
    labels = []
    for token, label in zip(ids, pieces):
        if label == START:
            labels.append(label)
        elif tokenizer.sp.is_byte(token) and int(tokenizer.sp.id_to_piece(token)[3:5], 16) < 0x80:
            labels.append(visible(chr(int(tokenizer.sp.id_to_piece(token)[3:5], 16))))
        else:
            labels.append(visible(label))
    return labels


def step_tokens(tokenizer, text_trace) -> list[str]:
    return step_labels(tokenizer, text_trace.ids, text_trace.tokens)


def user_error(error: Exception) -> gr.Error:
    return gr.Error(html.escape(str(error)), print_exception=False)


def friendly(fn):
    """Library ValueErrors (empty text, bad sampling settings) become a gr.Error with their message; anything
    else is logged with its traceback and shown as one plain line: the page never shows a stack trace."""

    def convert(error: Exception) -> gr.Error:
        if isinstance(error, gr.Error):
            return error
        if isinstance(error, (ValueError, TypeError)):
            return user_error(error)
        logger.exception("%s failed", fn.__name__)
        return gr.Error(
            f"Something went wrong inside the model ({type(error).__name__}); the server log has the details.",
            print_exception=False,
        )

    if pyinspect.isgeneratorfunction(fn):

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


def parse_unit(value) -> int | None:
    """A unit number from the page's box or a script: blank (or None) means "the first unit of the order"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not number.is_integer():
        raise gr.Error("The unit must be a whole number (like 37), or blank for the first unit of the order.",
                       print_exception=False)
    return int(number)


def table(headers: list[str], rows: list[list]) -> dict:
    return {"headers": headers, "data": rows}


def percent(p: float) -> str:
    return f"{100 * p:.1f}%"


# -- model cards -----------------------------------------------------------------------------------------------


def metrics_markdown(pipeline, what: str) -> str:
    """The measured test metrics of the checkpoint: its folder's metrics.json, else the "Test metrics" table of
    its model card (README.md), else "not measured yet". Hub downloads include both files."""
    folder = getattr(pipeline, "folder", None)
    if folder is not None:
        metrics_file = folder / "metrics.json"
        try:
            metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
        except (OSError, ValueError):
            metrics = None
        if isinstance(metrics, dict) and isinstance(metrics.get("results"), dict):
            command = str(metrics.get("command", "?")).replace("`", "'")
            lines = [
                f"**{what}: measured test metrics** (`{command}` on {md(metrics.get('hardware', '?'))})",
                "",
                "| metric | value |",
                "|---|---|",
            ]
            lines += [f"| {md(name)} | {md(value)} |" for name, value in metrics["results"].items()]
            return "\n".join(lines)
        card = folder / "README.md"
        if card.is_file():
            text = card.read_text(errors="replace")
            section = text.split("## Test metrics", 1)[1] if "## Test metrics" in text else ""
            rows = [line for line in section.splitlines() if line.startswith("|")]
            if len(rows) > 2:
                return f"**{what}: measured test metrics** (from the model card)\n\n" + "\n".join(rows)
    return f"**{what}: test metrics** not measured yet."


# -- the handlers ----------------------------------------------------------------------------------------------


class Handlers:
    """What each button does. One instance per page, around the two loaded pipelines."""

    def __init__(self, sentiment, nextword):
        self.sentiment, self.nextword = sentiment, nextword
        self.models = {"sentiment": sentiment, "nextword": nextword}
        self._trace = functools.lru_cache(maxsize=8)(self._trace_uncached)

    # ---------------------------------------------------------------------------------------- sentiment

    def classify(self, text: str, method: str = "evidence"):
        """Label, attribution highlights, strongest pushes, notes."""
        pipe = self.sentiment
        text, clipped = clip(text, "head_tail")
        explanation = pipe.explain(text, method=method, steps=IG_STEPS)
        ids, prediction = explanation.ids, explanation.prediction
        truncated = prediction["truncated"]
        positive, negative = pipe.labels[-1], pipe.labels[0]
        sign = 1.0 if prediction["label"] == positive else -1.0

        attributions = explanation.attributions
        half = pipe.max_tokens // 2
        if truncated:
            parts = [(ids[:half], attributions[:half], True), (ids[half:], attributions[half:], False)]
        else:
            parts = [(ids, attributions, True)]
        spans = []
        for index, (part_ids, part_values, first) in enumerate(parts):
            if index:
                spans.append(None)  # the skipped middle
            spans.extend(token_spans(pipe.tokenizer, part_ids, part_values, first=first))
        strongest = max((abs(s[1]) for s in spans if s is not None), default=0.0) or 1.0
        highlighted = [
            ("  […middle skipped…]  ", None) if s is None else (s[0], round(sign * s[1] / strongest, 4))
            for s in spans
        ]

        ranked = sorted((s for s in spans if s is not None), key=lambda s: -abs(s[1]))[:TOP_ROWS]
        pushes = table(
            ["token", f"push on log P({positive})/P({negative})", "towards"],
            [[s[0] if s[0].strip() else s[0].replace(" ", "␣"), round(s[1], 4), positive if s[1] > 0 else negative]
             for s in ranked],
        )

        notes = [
            f"**{md(prediction['label'])}** with confidence {percent(prediction['score'])}; "
            f"the model read {prediction['tokens']} tokens.",
        ]
        if truncated:
            full = len(pipe.tokenizer.encode(text))
            notes.append(
                f"Truncated to {pipe.max_tokens} tokens: the text has {full:,}{'+' if clipped else ''}; the model "
                f"read its first {half} and last {pipe.max_tokens - half}."
            )
        if clipped:
            notes.append(f"Only the first and last {MAX_CHARS // 2:,} characters were passed to the model.")
        notes.append(
            METHOD_NOTES[method] + f" Red tokens pushed towards the verdict ({md(prediction['label'])}), purple "
            f"ones against it; full colour = the strongest push, {strongest:.3f} in log-odds (log P({md(positive)}) "
            f"− log P({md(negative)})). The pushes add up to {sum(attributions):+.3f}; log-odds of the text "
            f"{explanation.log_odds:+.3f} − {OFFSET_NAMES[method]} {explanation.offset:+.3f} = "
            f"{explanation.log_odds - explanation.offset:+.3f}."
        )
        return prediction["probabilities"], highlighted, pushes, "\n\n".join(notes)

    def trajectory(self, text: str):
        """P(positive) after each token, as a line over the tokens read."""
        pipe = self.sentiment
        text, _ = clip(text, "head_tail")
        ids, truncated = pipe.encode(text)
        return plots.trajectory_figure(
            pipe.trajectory(text), step_labels(pipe.tokenizer, ids, pipe.tokenizer.pieces(ids)), pipe.labels[-1],
            truncated_at=pipe.max_tokens // 2 if truncated else None,
        )

    # ---------------------------------------------------------------------------------------- next word

    def next_words(self, prompt: str, k: float = 5):
        pipe = self.nextword
        prompt, clipped = clip(prompt, "tail")
        k = int(k or 5)
        if not 1 <= k <= 50:
            raise gr.Error("k must be between 1 and 50.", print_exception=False)
        words = pipe.next_words(prompt, k=k)
        _, truncated = pipe.prompt_ids(prompt)
        mass = sum(p for _, p in words)
        notes = [f"These {len(words)} words hold {percent(mass)} of the probability of what comes next."]
        if truncated or clipped:
            notes.append(f"Truncated: the model read the last {pipe.max_tokens - 1} tokens of the prompt.")
        return dict(words), " ".join(notes)

    def generate(self, prompt: str, max_new_tokens: float = 40, temperature: float = 0.8, top_k: float = 50,
                 top_p: float = 0.95, seed: float | None = 0):
        """Streams the prompt and its continuation; an update at most every STREAM_INTERVAL seconds, so a fast
        model does not spend its time on messages (a slow one still shows every token as it comes)."""
        prompt, _ = clip(prompt, "tail")
        stream = self.nextword.stream(
            prompt,
            max_new_tokens=int(max_new_tokens),
            temperature=float(temperature),
            top_k=int(top_k),
            top_p=float(top_p),
            seed=None if seed is None or (isinstance(seed, float) and math.isnan(seed)) else int(seed),
        )
        text, last = prompt, 0.0
        for text in stream:
            now = time.perf_counter()
            if now - last >= STREAM_INTERVAL:
                last = now
                yield text
        yield text

    def surprisal(self, text: str):
        """Tokens coloured by surprisal, the table of bits and alternatives, notes."""
        pipe = self.nextword
        text, clipped = clip(text, "head")
        rows = pipe.surprisal(text, alternatives=3)
        ids = pipe.tokenizer.encode(text)
        scored = ids[: len(rows)]
        bits = [row["bits"] for row in rows]
        spans = token_spans(pipe.tokenizer, scored, bits)
        blind = math.log2(pipe.tokenizer.vocab_size)  # a uniform guess over the vocabulary
        highlighted = [(s[0], round(min(s[1] / blind, 1.0), 4)) for s in spans]
        data = []
        for span_text, span_bits, positions in spans:
            alternatives = rows[positions[0]]["alternatives"]
            data.append([
                span_text if span_text.strip() else span_text.replace(" ", "␣"),
                round(span_bits, 3),
                round(2.0 ** -span_bits, 5),
                len(positions),
                " · ".join(f"{visible(piece)!r} {percent(p)}" for piece, p in alternatives),
            ])
        surprise_table = table(["token", "bits", "probability", "pieces", "the model's top 3 guesses"], data)
        total_bits = sum(bits)
        scored_chars = len(pipe.tokenizer.decode(scored)) if len(scored) < len(ids) else len(text)
        notes = [
            f"{len(rows)} tokens, {total_bits:.1f} bits in all: per-token perplexity "
            f"{2 ** (total_bits / len(rows)):.1f}, {total_bits / max(scored_chars, 1):.3f} bits per character.",
            f"Full red = {blind:.1f} bits or more: as surprising as a blind guess among the "
            f"{pipe.tokenizer.vocab_size:,} tokens of the vocabulary. Characters spelled by several byte pieces "
            "(emoji, rare scripts) add up their pieces' bits.",
        ]
        if len(scored) < len(ids) or clipped:
            notes.append(f"Truncated to {len(scored)} tokens: the model scored the first {len(scored)} of "
                         f"{len(ids)}{'+' if clipped else ''}.")
        return highlighted, surprise_table, "\n\n".join(notes)

    # ----------------------------------------------------------------------------------------- gates

    def _trace_uncached(self, kind: str, text: str) -> gates.TextTrace:
        pipe = self.models[kind]
        # The language model reads a begin-of-text token first (as in training and generation): trace that too.
        start_id = pipe.tokenizer.bos_id if kind == "nextword" else None
        return gates.trace_text(pipe.model, pipe.tokenizer, text, max_tokens=INSPECT_TOKENS, start_id=start_id)

    def trace(self, kind: str, text: str) -> tuple[gates.TextTrace, bool]:
        if kind not in self.models:
            raise gr.Error(f"Model must be one of {', '.join(self.models)}.", print_exception=False)
        text, clipped = clip(text, "head")
        return self._trace(kind, text), clipped

    def control_choices(self, kind: str) -> dict:
        """The inspector's choices for a model: its layers, its directions, its signals, its orderings."""
        rnn = self.models.get(kind, self.sentiment).model.rnn
        signals = gates.LSTM_VALUES if isinstance(rnn, torch.nn.LSTM) else gates.GRU_VALUES
        return {
            "layers": [(f"layer {n}", n) for n in range(rnn.num_layers)],
            "last_layer": rnn.num_layers - 1,
            "bidirectional": rnn.bidirectional,
            "signals": [(f"{s} · {plots.SIGNAL_NAMES[s]}", s) for s in signals],
            "signal": "f" if "f" in signals else "z",
            "orders": ORDER_CHOICES if kind == "sentiment" else ORDER_CHOICES[:2],
        }

    def controls(self, kind: str, signal: str | None = None, order: str | None = None):
        """Updates for the layer, direction, signal and order choices when the model changes (kept when valid)."""
        c = self.control_choices(kind)
        signals = [value for _, value in c["signals"]]
        orders = [value for _, value in c["orders"]]
        return (
            gr.update(choices=c["layers"], value=c["last_layer"]),
            gr.update(choices=list(DIRECTION_NAMES), value="forward", visible=c["bidirectional"]),
            gr.update(choices=c["signals"], value=signal if signal in signals else c["signal"]),
            gr.update(choices=c["orders"], value=order if order in orders else "variance"),
        )

    def _contribution(self, text_trace: gates.TextTrace, direction: int, hidden: int):
        """Units of one direction ordered by how much they push the classifier towards its decision on the traced
        tokens, with their contributions (logit units) and the decision."""
        pipe = self.sentiment
        model = pipe.model
        with torch.no_grad():
            ids = torch.tensor([text_trace.ids], device=pipe.device)
            lengths = torch.tensor([len(text_trace.ids)])
            _, pooled = model.read(model.rnn_input(ids, lengths), lengths)
            decision = int(model.classifier(pooled).argmax(-1))
        weight = model.classifier.weight.float().cpu()
        _, contribution = gates.rank_units_by_contribution(pooled[0].float().cpu(), weight, decision)
        mine = contribution[direction * hidden : (direction + 1) * hidden]
        return torch.argsort(mine, descending=True, stable=True), mine, pipe.labels[decision]

    def inspect(self, text: str, kind: str = "sentiment", layer: float = 0, direction: str = "forward",
                signal: str = "f", order: str = "variance", unit: str | int | None = None):
        """Heatmap, the text coloured by one unit, saturation table, mean forget gate per token, notes."""
        text_trace, clipped = self.trace(kind, text)
        rnn = self.models[kind].model.rnn
        layer = int(layer if layer is not None else rnn.num_layers - 1)
        if not 0 <= layer < rnn.num_layers:
            raise gr.Error(f"This model has layers 0 to {rnn.num_layers - 1}.", print_exception=False)
        if direction not in DIRECTION_NAMES or (direction == "backward" and not rnn.bidirectional):
            raise gr.Error("This model reads forward only." if not rnn.bidirectional
                           else "Direction must be forward or backward.", print_exception=False)
        d = DIRECTION_NAMES.index(direction)
        values = text_trace.layers[(layer, d)]
        if signal not in values:
            raise gr.Error(f"Signal must be one of {', '.join(values)}.", print_exception=False)
        matrix = values[signal].float()
        hidden = matrix.shape[1]
        tokens = step_tokens(self.models[kind].tokenizer, text_trace)

        contribution = decision = None
        if order == "index":
            unit_order = torch.arange(hidden)
            order_text = "unit index"
        elif order == "variance":
            unit_order = gates.rank_units_by_variance(matrix)
            order_text = f"variance of {signal} over the text"
        elif order == "contribution":
            if kind != "sentiment":
                raise gr.Error("Contribution to the decision exists for the classifier only: the next-word model "
                               "makes no single decision.", print_exception=False)
            if layer != rnn.num_layers - 1:
                raise gr.Error(f"Contribution to the decision exists for the last layer only (layer "
                               f"{rnn.num_layers - 1}): the classifier reads that layer.", print_exception=False)
            unit_order, contribution, decision = self._contribution(text_trace, d, hidden)
            order_text = f"contribution to the decision “{md(decision)}”"
        else:
            raise gr.Error("Order must be index, variance or contribution.", print_exception=False)
        unit_order = unit_order.tolist()

        unit = parse_unit(unit)
        if unit is None:
            unit = unit_order[0]
        if not 0 <= unit < hidden:
            raise gr.Error(f"Units run from 0 to {hidden - 1} in this layer.", print_exception=False)

        where = f"layer {layer}" + (f", {direction}" if rnn.bidirectional else "")
        heatmap = plots.heatmap_figure(matrix.numpy(), tokens, unit_order, signal, where, selected_unit=unit)

        # The text coloured by the chosen unit: red for high values, purple for negative ones.
        column = matrix[:, unit]
        if signal in plots.GATES:
            scale, scale_text = 1.0, "shade = the gate's value, from 0 (no colour) to 1 (full red)"
        else:
            scale = float(column.abs().max()) or 1.0
            scale_text = (f"red = positive, purple = negative; full colour = {scale:.3f}, the unit's largest "
                          f"|{signal}| in this text")
        first_text_token = 1 if tokens[0] == START else 0
        unit_text = [
            (tok.lstrip(" ") if t == first_text_token and tok.strip() else tok, round(float(v) / scale, 4))
            for t, (tok, v) in enumerate(zip(tokens, column.tolist()))
        ]

        # Saturation: the share of steps × units a gate spends shut (< 0.1) or open (> 0.9).
        chosen = {(layer, d): values}
        saturated = gates.saturation(chosen)[(layer, d)]
        overall = gates.saturation_summary(text_trace.layers)
        rows = []
        for gate, shares in saturated.items():
            shut, opened = float(shares["left"].mean()), float(shares["right"].mean())
            rows.append([
                gate,
                plots.SIGNAL_LINES[gate],
                round(100 * shut, 1),
                round(100 * opened, 1),
                round(100 * (1 - shut - opened), 1),
                round(100 * overall[gate]["left"], 1),
                round(100 * overall[gate]["right"], 1),
            ])
        saturation_table = table(
            ["gate", "what it does", "shut %", "open %", "in between %", "shut %, all layers", "open %, all layers"],
            rows,
        )

        if "f" in values:
            forget = gates.mean_forget_per_token(text_trace.layers, layer, d)
            forget_plot = plots.forget_figure(forget.tolist(), tokens, where)
        else:  # a GRU: its update gate z is the share of memory kept
            forget_plot = plots.forget_figure(values["z"].mean(-1).tolist(), tokens, where + " (update gate z)")

        rank = unit_order.index(unit) + 1
        notes = [f"**Unit {unit}** of {hidden} in {where}: rank {rank} by {order_text}. {scale_text}."]
        if contribution is not None:
            top = ", ".join(f"{u} ({float(contribution[u]):+.3f})" for u in unit_order[:8])
            notes.append(f"Unit {unit} adds {float(contribution[unit]):+.3f} to the logit margin of "
                         f"“{md(decision)}” (pooled value × classifier weight). Strongest pushes towards it: "
                         f"{top}.")
        else:
            notes.append(f"First units in this order: {', '.join(map(str, unit_order[:10]))}.")
        if rnn.bidirectional:
            notes.append("The forward direction reads left to right; the backward one reads right to left, so its "
                         "first step is the last token.")
        if kind == "nextword":
            notes.append(f"The next-word model reads a begin-of-text token ({START}) before the text, as it does "
                         "when it generates.")
        if text_trace.truncated or clipped:
            notes.append(f"Truncated: only the first {len(tokens)} tokens are traced.")
        return heatmap, unit_text, saturation_table, forget_plot, "\n\n".join(notes)

    def export(self, text: str, kind: str = "sentiment", fmt: str = "json") -> str:
        """A file with every gate, cell and hidden value of the traced text (seqdemo.gates.to_json / to_npz)."""
        text_trace, _ = self.trace(kind, text)
        if fmt not in ("json", "npz"):
            raise gr.Error("Format must be json or npz.", print_exception=False)
        EXPORTS.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - EXPORT_MAX_AGE
        for old in EXPORTS.glob("*/*"):
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
                    old.parent.rmdir()
            except OSError:
                pass
        folder = EXPORTS / uuid.uuid4().hex
        folder.mkdir()
        path = folder / f"seqdemo-gates-{kind}.{fmt}"
        if fmt == "npz":
            gates.to_npz(text_trace, str(path))
        else:
            data = gates.to_json(text_trace)
            path.write_text(json.dumps(_round_floats(data), separators=(",", ":"), ensure_ascii=False))
        return str(path)


def _round_floats(value, digits: int = 6):
    """float32 values written with 6 decimals: the file shrinks threefold and loses nothing float32 holds."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, list):
        return [_round_floats(v, digits) for v in value]
    return value


# -- the page --------------------------------------------------------------------------------------------------


def header(sentiment, nextword) -> str:
    device = describe(sentiment.device)
    if str(nextword.device) != str(sentiment.device):
        device += f" (next word: {describe(nextword.device)})"
    return (
        f"**Running on:** {md(device)} · **sentiment weights:** {md(sentiment.source)} · "
        f"**next-word weights:** {md(nextword.source)}"
    )


def concurrency() -> int:
    """Requests served at once: the GPU overlaps a few; on a CPU each request already uses every core."""
    cores = os.cpu_count() or 1
    return int(os.environ.get("SEQDEMO_CONCURRENCY", 4 if torch.cuda.is_available() else max(2, min(cores, 8))))


def build_demo(sentiment, nextword) -> gr.Blocks:
    """The whole page around two loaded pipelines (seqdemo.load("sentiment"), seqdemo.load("nextword"))."""
    h = Handlers(sentiment, nextword)

    with gr.Blocks(title="seqdemo: see inside an LSTM", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# seqdemo: see inside an LSTM")
        gr.Markdown(INTRO)
        gr.Markdown(header(sentiment, nextword), elem_id="device-line")

        with gr.Tabs():
            # ------------------------------------------------------------------------------- sentiment
            with gr.Tab("Sentiment (BiLSTM)", id="sentiment"):
                gr.Markdown(
                    "A **bidirectional** LSTM reads the review twice, left to right and right to left; the "
                    "classifier looks at both readings (max-pooled over the tokens) and decides."
                )
                with gr.Row():
                    with gr.Column(scale=3):
                        s_text = gr.Textbox(label="Review", lines=3, value=EXAMPLES[1], elem_id="sentiment-text")
                        s_method = gr.Radio(METHOD_CHOICES, value="evidence", label="Token colours",
                                            elem_id="sentiment-method")
                        s_button = gr.Button("Classify", variant="primary", elem_id="sentiment-button")
                        gr.Examples(EXAMPLES, inputs=s_text, label="Try negation and contrast")
                    with gr.Column(scale=2):
                        s_label = gr.Label(label="Verdict and confidence", num_top_classes=2, elem_id="sentiment-label")
                s_highlight = gr.HighlightedText(
                    label="How much each token pushed the decision: red = towards the verdict, purple = against it",
                    elem_id="sentiment-highlight",
                )
                s_notes = gr.Markdown(label="Notes", elem_classes="seqdemo-notes", elem_id="sentiment-notes")
                s_plot = gr.Plot(label="Reading trajectory", elem_id="sentiment-trajectory")
                s_table = gr.Dataframe(label="Strongest pushes", interactive=False, elem_id="sentiment-table")
                gr.Markdown(metrics_markdown(sentiment, "Sentiment model"), elem_id="sentiment-metrics")
                # The verdict and its colours come first; the trajectory (one pass per prefix) follows.
                s_inputs, s_outputs = [s_text, s_method], [s_label, s_highlight, s_table, s_notes]
                s_button.click(friendly(h.classify), s_inputs, s_outputs, api_name="classify").success(
                    friendly(h.trajectory), s_text, s_plot, api_name="trajectory"
                )
                s_text.submit(friendly(h.classify), s_inputs, s_outputs, api_visibility="private").success(
                    friendly(h.trajectory), s_text, s_plot, api_visibility="private"
                )
                s_method.input(friendly(h.classify), s_inputs, s_outputs, api_visibility="private")

            # ------------------------------------------------------------------------------- next word
            with gr.Tab("Next word (3-layer LSTM)", id="nextword"):
                gr.Markdown(
                    "A 3-layer LSTM language model: after each token its state (h, c) is its memory of "
                    "everything read so far, and from the last layer's h it guesses the next token."
                )
                with gr.Row():
                    with gr.Column(scale=3):
                        n_prompt = gr.Textbox(label="Prompt", lines=2, value=PROMPTS[0], elem_id="nextword-text")
                        n_k = gr.Slider(1, 20, value=5, step=1, label="How many words (k)")
                        n_button = gr.Button("Next words", variant="primary", elem_id="nextword-button")
                        gr.Examples(PROMPTS, inputs=n_prompt, label="Prompts")
                    with gr.Column(scale=2):
                        n_label = gr.Label(label="Likeliest next words", elem_id="nextword-label")
                        n_notes = gr.Markdown(label="Notes", elem_classes="seqdemo-notes", elem_id="nextword-notes")
                n_button.click(friendly(h.next_words), [n_prompt, n_k], [n_label, n_notes], api_name="next_words")
                n_prompt.submit(friendly(h.next_words), [n_prompt, n_k], [n_label, n_notes],
                                api_visibility="private")

                gr.Markdown("### Generate, token by token")
                with gr.Row():
                    g_temperature = gr.Slider(0, 2, value=0.8, step=0.05,
                                              label="temperature (0 = always the likeliest)")
                    g_top_k = gr.Slider(0, 200, value=50, step=1, label="top-k (0 = off)")
                    g_top_p = gr.Slider(0.05, 1, value=0.95, step=0.01, label="top-p (nucleus)")
                with gr.Row():
                    g_max = gr.Slider(1, MAX_NEW_TOKENS, value=40, step=1, label="max new tokens")
                    g_seed = gr.Number(value=0, precision=0, label="seed (same seed, same text; blank = random)")
                    g_button = gr.Button("Generate", variant="primary", elem_id="generate-button")
                g_output = gr.Textbox(label="Prompt + continuation", lines=5, interactive=False,
                                      elem_id="generate-output")
                g_button.click(friendly(h.generate), [n_prompt, g_max, g_temperature, g_top_k, g_top_p, g_seed],
                               g_output, api_name="generate")

                gr.Markdown("### Surprisal: how unexpected was each token?")
                u_text = gr.Textbox(label="Text to score", lines=2, value="The movie was not good at all.",
                                    elem_id="surprisal-text")
                u_button = gr.Button("Score", variant="primary", elem_id="surprisal-button")
                u_highlight = gr.HighlightedText(
                    label="Surprisal: the redder, the more bits (−log₂ p) the token cost",
                    elem_id="surprisal-highlight",
                )
                u_notes = gr.Markdown(label="Notes", elem_classes="seqdemo-notes", elem_id="surprisal-notes")
                u_table = gr.Dataframe(label="Each token: bits, probability, and what the model expected instead",
                                       interactive=False, wrap=True, elem_id="surprisal-table")
                u_button.click(friendly(h.surprisal), u_text, [u_highlight, u_table, u_notes], api_name="surprisal")
                u_text.submit(friendly(h.surprisal), u_text, [u_highlight, u_table, u_notes],
                              api_visibility="private")
                gr.Markdown(metrics_markdown(nextword, "Next-word model"), elem_id="nextword-metrics")

            # ------------------------------------------------------------------------------- gates
            with gr.Tab("Gate inspector", id="gates"):
                gr.Markdown(
                    "Every gate of every unit at every token, computed from the model's own weights. Pick a "
                    "signal:\n\n" + GATE_LEGEND
                )
                with gr.Row():
                    with gr.Column(scale=3):
                        i_text = gr.Textbox(label="Text", lines=2, value=EXAMPLES[0], elem_id="gates-text")
                        gr.Examples(EXAMPLES, inputs=i_text, label="Examples")
                    with gr.Column(scale=2):
                        i_model = gr.Dropdown(MODEL_CHOICES, value="sentiment", label="Model", elem_id="gates-model")
                        i_button = gr.Button("Inspect", variant="primary", elem_id="gates-button")
                c = h.control_choices("sentiment")
                with gr.Row():
                    i_layer = gr.Radio(c["layers"], value=c["last_layer"], label="Layer (0 reads the words)",
                                       elem_id="gates-layer")
                    i_direction = gr.Radio(list(DIRECTION_NAMES), value="forward", label="Direction",
                                           visible=c["bidirectional"], elem_id="gates-direction")
                    i_signal = gr.Radio(c["signals"], value=c["signal"], label="Signal", elem_id="gates-signal")
                with gr.Row():
                    i_order = gr.Radio(c["orders"], value="variance", label="Order the units by",
                                       elem_id="gates-order")
                    # A textbox, not a gr.Number: gradio 6's number box cannot stay blank (it shows 0).
                    i_unit = gr.Textbox(value="", max_lines=1, elem_id="gates-unit",
                                        label="Unit to colour the text by (blank = the first unit of the order)",
                                        placeholder="a unit number, or blank for the first unit of the order")
                i_heatmap = gr.Plot(label="Tokens × units (hover for values)", elem_id="gates-heatmap")
                i_unit_text = gr.HighlightedText(label="The text coloured by the chosen unit",
                                                 elem_id="gates-unit-text")
                i_notes = gr.Markdown(label="Notes", elem_classes="seqdemo-notes", elem_id="gates-notes")
                with gr.Row():
                    i_forget = gr.Plot(label="Mean forget gate per token", elem_id="gates-forget")
                i_saturation = gr.Dataframe(
                    label="Saturation in the chosen layer and direction (and in all of them): the share of "
                    "tokens × units where each gate is shut (< 0.1), open (> 0.9) or in between",
                    interactive=False, wrap=True, elem_id="gates-saturation",
                    column_widths=["8%", "44%", "10%", "10%", "10%", "9%", "9%"],
                )
                with gr.Row():
                    e_format = gr.Radio([("JSON", "json"), ("NumPy .npz", "npz")], value="npz",
                                        label="Download every value of this trace as")
                    e_button = gr.Button("Prepare download", elem_id="gates-export-button")
                    e_file = gr.File(label="Traces", elem_id="gates-file", height=90)

                i_inputs = [i_text, i_model, i_layer, i_direction, i_signal, i_order, i_unit]
                i_outputs = [i_heatmap, i_unit_text, i_saturation, i_forget, i_notes]
                inspect = friendly(h.inspect)
                # The API endpoint takes the layer and the signal as plain values: the page's radios offer the
                # chosen model's layers and signals only, and gradio checks a radio's value against the choices
                # it was built with (a script has no page session whose choices followed the model).
                api_layer = gr.Number(value=c["last_layer"], precision=0, label="layer", visible=False)
                api_signal = gr.Textbox(value=c["signal"], label="signal", visible=False)
                api_button = gr.Button(visible=False)
                api_button.click(inspect, [i_text, i_model, api_layer, i_direction, api_signal, i_order, i_unit],
                                 i_outputs, api_name="inspect")
                i_button.click(inspect, i_inputs, i_outputs, api_visibility="private")
                i_text.submit(inspect, i_inputs, i_outputs, api_visibility="private")
                for control in (i_layer, i_direction, i_signal, i_order):
                    control.input(inspect, i_inputs, i_outputs, api_visibility="private", trigger_mode="always_last")
                for event in (i_unit.submit, i_unit.blur):
                    event(inspect, i_inputs, i_outputs, api_visibility="private", trigger_mode="always_last")
                i_model.input(
                    h.controls, [i_model, i_signal, i_order], [i_layer, i_direction, i_signal, i_order],
                    api_visibility="private",
                ).then(inspect, i_inputs, i_outputs, api_visibility="private")
                e_button.click(friendly(h.export), [i_text, i_model, e_format], e_file, api_name="export_trace")

        gr.Markdown(
            "API: every button is an endpoint (`/classify`, `/trajectory`, `/next_words`, `/generate`, `/surprisal`, "
            "`/inspect`, `/export_trace`); see *Use via API* below, or call them with `gradio_client`."
        )

    limit = concurrency()
    demo.queue(default_concurrency_limit=limit, max_size=16 * limit)
    return demo


def launch_options() -> dict:
    """What launch() needs beyond the Blocks (gradio 6 takes the CSS there)."""
    return {"css": CSS}


def main() -> None:
    """Loads both models once (on the GPU when there is one) and serves the page. Gradio takes the address from
    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default 127.0.0.1:7860)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up checks, one line per request
    import seqdemo

    sentiment = seqdemo.load("sentiment")
    nextword = seqdemo.load("nextword")
    logger.info("models on %s: sentiment from %s, next word from %s", describe(sentiment.device),
                sentiment.source, nextword.source)
    build_demo(sentiment, nextword).launch(**launch_options())


if __name__ == "__main__":
    main()
