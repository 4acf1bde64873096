"""What the page shows, as plain data: coloured spans, tables, notes and number formats. No gradio here, so a
script (or a test) gets exactly what the page would show.

User text reaches the page only as plain strings in spans and table cells; Markdown notes carry numbers, labels
from the checkpoint's config and file contents, each escaped with `md`, never the text a person typed.
"""

from __future__ import annotations

import json
import math
import re

import torch

from seqdemo import gates
from seqdemo.device import device_name
from seqdemo.plots import GATES, SIGNAL_LINES, SIGNAL_NAMES
from seqdemo.tokenizer import Span, Tokenizer

MAX_CHARS = 100_000  # the longest text the page passes on: far beyond what the models read (512 / 2048 tokens)
TOP_ROWS = 12  # rows in the "strongest pushes" table
IG_STEPS = 16  # integrated-gradients steps (SentimentPipeline.explain's default)
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
MIDDLE_SKIPPED = "  […middle skipped…]  "
ORDER_CHOICES = [
    ("unit index", "index"),
    ("variance over the text", "variance"),
    ("contribution to the decision", "contribution"),
]
SATURATION_HEADERS = ["gate", "what it does", "shut %", "open %", "in between %", "shut %, all layers",
                      "open %, all layers"]


# -- text and numbers ------------------------------------------------------------------------------------------

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


def md(text) -> str:
    """Any text made literal inside Markdown."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", str(text))


def percent(p: float) -> str:
    return f"{100 * p:.1f}%"


def table(headers: list[str], rows: list[list]) -> dict:
    """The value a gradio Dataframe takes (and a script can read without gradio)."""
    return {"headers": headers, "data": rows}


def cell_text(token: str) -> str:
    """A token in a table cell: a token made of spaces shows them as ␣, or the cell would look empty."""
    return token if token.strip() else token.replace(" ", "␣")


def clip(text, keep: str) -> tuple[str, bool]:
    """At most MAX_CHARS characters: the 'head', the 'tail' or the 'head_tail' (both ends, as the classifier
    keeps the first and last tokens of a long review). Returns (text, whether it was cut)."""
    if not isinstance(text, str):
        raise TypeError("Type a text first.")
    if len(text) <= MAX_CHARS:
        return text, False
    if keep == "head":
        return text[:MAX_CHARS], True
    if keep == "tail":
        return text[-MAX_CHARS:], True
    half = MAX_CHARS // 2
    return text[:half] + " " + text[-half:], True


def text_spans(tokenizer: Tokenizer, ids: list[int], values: list[float], starts_text: bool = True) -> list[Span]:
    """Tokenizer.spans with control characters made visible: what a HighlightedText or a table shows."""
    return [span._replace(text=visible(span.text)) for span in tokenizer.spans(ids, values, starts_text)]


def token_labels(tokenizer: Tokenizer, ids: list[int]) -> list[str]:
    """One label per token the model read (Tokenizer.step_label), control characters made visible."""
    return [visible(tokenizer.step_label(token)) for token in ids]


def trace_labels(tokenizer: Tokenizer, traced: gates.TextTrace) -> list[str]:
    """One label per step of a gate trace: token_labels, the begin-of-text token shown as ⟨start⟩."""
    return [
        label if label == gates.START_TOKEN else visible(tokenizer.step_label(token))
        for token, label in zip(traced.ids, traced.tokens)
    ]


# -- sentiment ---------------------------------------------------------------------------------------------------


def attribution_spans(tokenizer: Tokenizer, explanation) -> list[Span | None]:
    """The explanation's tokens as spans, None where a long text's middle was skipped."""
    ids, values, cut = explanation.ids, explanation.attributions, explanation.middle_skipped_at
    if cut is None:
        return list(text_spans(tokenizer, ids, values))
    return [*text_spans(tokenizer, ids[:cut], values[:cut]), None,
            *text_spans(tokenizer, ids[cut:], values[cut:], starts_text=False)]


def verdict_sign(prediction: dict, positive: str) -> float:
    """+1 when the verdict is the positive label, -1 otherwise: attributions are in log P(positive) - log
    P(negative), and the page colours a push towards the verdict red whichever way the verdict went."""
    return 1.0 if prediction["label"] == positive else -1.0


def strongest_push(spans: list[Span | None]) -> float:
    return max((abs(s.value) for s in spans if s is not None), default=0.0) or 1.0


def attribution_highlights(spans: list[Span | None], sign: float) -> list[tuple[str, float | None]]:
    """(text, colour in [-1, 1]) per span: +1 the strongest push towards the verdict, -1 against it."""
    strongest = strongest_push(spans)
    return [(MIDDLE_SKIPPED, None) if s is None else (s.text, round(sign * s.value / strongest, 4)) for s in spans]


def pushes_table(spans: list[Span | None], positive: str, negative: str, rows: int = TOP_ROWS) -> dict:
    """The `rows` strongest pushes, strongest first, in log-odds, and which label each pushed towards."""
    ranked = sorted((s for s in spans if s is not None), key=lambda s: -abs(s.value))[:rows]
    return table(
        ["token", f"push on log P({positive})/P({negative})", "towards"],
        [[cell_text(s.text), round(s.value, 4), positive if s.value > 0 else negative] for s in ranked],
    )


def classify_view(tokenizer: Tokenizer, labels: list[str], explanation, text_tokens: int, clipped: bool):
    """What /classify shows: the tokens coloured by their push (red towards the verdict), the strongest pushes,
    the notes. `text_tokens`: how many tokens the whole text has; `clipped`: the page cut its characters."""
    spans = attribution_spans(tokenizer, explanation)
    sign = verdict_sign(explanation.prediction, labels[-1])
    notes = classify_notes(explanation, labels, strongest_push(spans), text_tokens, clipped)
    return attribution_highlights(spans, sign), pushes_table(spans, labels[-1], labels[0]), notes


def classify_notes(explanation, labels: list[str], strongest: float, text_tokens: int, clipped: bool) -> str:
    """The verdict, what was read of a long text, and how the colours add up to the decision."""
    prediction, method = explanation.prediction, explanation.method
    positive, negative = labels[-1], labels[0]
    notes = [f"**{md(prediction['label'])}** with confidence {percent(prediction['score'])}; "
             f"the model read {prediction['tokens']} tokens."]
    cut = explanation.middle_skipped_at
    if cut is not None:
        read = len(explanation.ids)
        notes.append(f"Truncated to {read} tokens: the text has {text_tokens:,}{'+' if clipped else ''}; the model "
                     f"read its first {cut} and last {read - cut}.")
    if clipped:
        notes.append(f"Only the first and last {MAX_CHARS // 2:,} characters were passed to the model.")
    total = sum(explanation.attributions)
    notes.append(
        METHOD_NOTES[method] + f" Red tokens pushed towards the verdict ({md(prediction['label'])}), purple "
        f"ones against it; full colour = the strongest push, {strongest:.3f} in log-odds (log P({md(positive)}) "
        f"− log P({md(negative)})). The pushes add up to {total:+.3f}; log-odds of the text "
        f"{explanation.log_odds:+.3f} − {OFFSET_NAMES[method]} {explanation.offset:+.3f} = "
        f"{explanation.log_odds - explanation.offset:+.3f}."
    )
    return "\n\n".join(notes)


# -- next word ---------------------------------------------------------------------------------------------------


def next_words_notes(words: list[tuple[str, float]], truncated: bool, prompt_tokens: int) -> str:
    notes = [f"These {len(words)} words hold {percent(sum(p for _, p in words))} of the probability of what comes "
             "next."]
    if truncated:
        notes.append(f"Truncated: the model read the last {prompt_tokens} tokens of the prompt.")
    return " ".join(notes)


def surprisal_view(tokenizer: Tokenizer, summary, clipped: bool) -> tuple[list, dict, str]:
    """Tokens coloured by their bits (full red = a blind guess over the vocabulary), the table, the notes."""
    spans = text_spans(tokenizer, summary.ids, [row["bits"] for row in summary.rows])
    blind = math.log2(tokenizer.vocab_size)  # a uniform guess over the vocabulary
    highlighted = [(s.text, round(min(s.value / blind, 1.0), 4)) for s in spans]
    rows = []
    for span in spans:
        alternatives = summary.rows[span.positions[0]]["alternatives"]
        rows.append([
            cell_text(span.text),
            round(span.value, 3),
            round(2.0 ** -span.value, 5),
            len(span.positions),
            " · ".join(f"{visible(piece)!r} {percent(p)}" for piece, p in alternatives),
        ])
    scored = len(summary.ids)
    notes = [
        f"{scored} tokens, {summary.total_bits:.1f} bits in all: per-token perplexity {summary.perplexity:.1f}, "
        f"{summary.bits_per_char:.3f} bits per character.",
        f"Full red = {blind:.1f} bits or more: as surprising as a blind guess among the {tokenizer.vocab_size:,} "
        "tokens of the vocabulary. Characters spelled by several byte pieces (emoji, rare scripts) add up their "
        "pieces' bits.",
    ]
    if summary.truncated or clipped:
        notes.append(f"Truncated to {scored} tokens: the model scored the first {scored} of "
                     f"{summary.text_tokens}{'+' if clipped else ''}.")
    columns = ["token", "bits", "probability", "pieces", "the model's top 3 guesses"]
    return highlighted, table(columns, rows), "\n\n".join(notes)


# -- the gate inspector ------------------------------------------------------------------------------------------


def inspector_choices(pipeline) -> dict:
    """The inspector's choices for a model: its layers, its directions, its signals, its orderings (contribution
    to the decision exists for the classifier only)."""
    rnn = pipeline.model.rnn
    signals = gates.LSTM_VALUES if isinstance(rnn, torch.nn.LSTM) else gates.GRU_VALUES
    return {
        "layers": [(f"layer {n}", n) for n in range(rnn.num_layers)],
        "last_layer": rnn.num_layers - 1,
        "bidirectional": rnn.bidirectional,
        "signals": [(f"{s} · {SIGNAL_NAMES[s]}", s) for s in signals],
        "signal": "f" if "f" in signals else "z",
        "orders": ORDER_CHOICES if pipeline.kind == "sentiment" else ORDER_CHOICES[:2],
    }


def check_layer_and_direction(rnn: torch.nn.RNNBase, layer, direction: str) -> tuple[int, int]:
    """(layer, direction index) for a request, or a ValueError a person can act on."""
    layer = int(layer if layer is not None else rnn.num_layers - 1)
    if not 0 <= layer < rnn.num_layers:
        raise ValueError(f"This model has layers 0 to {rnn.num_layers - 1}.")
    if direction == "backward" and not rnn.bidirectional:
        raise ValueError("This model reads forward only.")
    if direction not in gates.DIRECTIONS:
        raise ValueError("Direction must be forward or backward.")
    return layer, gates.DIRECTIONS.index(direction)


def rank_units(pipeline, traced: gates.TextTrace, matrix: torch.Tensor, signal: str, order: str, layer: int,
               direction: int):
    """The units of the chosen layer in the chosen order, the order in words, and the units' contributions to
    the classifier's decision when that is the order (seqdemo.sentiment.UnitContributions), else None."""
    if order == "index":
        return list(range(matrix.shape[1])), "unit index", None
    if order == "variance":
        return gates.rank_units_by_variance(matrix).tolist(), f"variance of {signal} over the text", None
    if order != "contribution":
        raise ValueError("Order must be index, variance or contribution.")
    if pipeline.kind != "sentiment":
        raise ValueError("Contribution to the decision exists for the classifier only: the next-word model makes "
                         "no single decision.")
    last = pipeline.model.rnn.num_layers - 1
    if layer != last:
        raise ValueError(f"Contribution to the decision exists for the last layer only (layer {last}): the "
                         "classifier reads that layer.")
    contributions = pipeline.unit_contributions(traced.ids, direction)
    return contributions.order, f"contribution to the decision “{md(contributions.decision)}”", contributions


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
        raise ValueError("The unit must be a whole number (like 37), or blank for the first unit of the order.")
    return int(number)


def pick_unit(value, order: list[int], hidden: int) -> int:
    unit = parse_unit(value)
    unit = order[0] if unit is None else unit
    if not 0 <= unit < hidden:
        raise ValueError(f"Units run from 0 to {hidden - 1} in this layer.")
    return unit


def unit_highlights(labels: list[str], column: torch.Tensor, signal: str) -> tuple[list, str]:
    """The text coloured by one unit (red high, purple negative), and what the shade means."""
    if signal in GATES:
        scale, meaning = 1.0, "shade = the gate's value, from 0 (no colour) to 1 (full red)"
    else:
        scale = float(column.abs().max()) or 1.0
        meaning = (f"red = positive, purple = negative; full colour = {scale:.3f}, the unit's largest "
                   f"|{signal}| in this text")
    first_text_step = 1 if labels[0] == gates.START_TOKEN else 0  # its word-start mark is no space
    highlighted = [
        (label.lstrip(" ") if t == first_text_step and label.strip() else label, round(float(v) / scale, 4))
        for t, (label, v) in enumerate(zip(labels, column.tolist()))
    ]
    return highlighted, meaning


def saturation_table(layers: gates.Trace, layer: int, direction: int) -> dict:
    """The share of steps × units each gate spends shut (< 0.1) or open (> 0.9), here and in all layers."""
    here = gates.saturation({(layer, direction): layers[(layer, direction)]})[(layer, direction)]
    everywhere = gates.saturation_summary(layers)
    rows = []
    for gate, shares in here.items():
        shut, opened = float(shares["left"].mean()), float(shares["right"].mean())
        rows.append([gate, SIGNAL_LINES[gate], round(100 * shut, 1), round(100 * opened, 1),
                     round(100 * (1 - shut - opened), 1), round(100 * everywhere[gate]["left"], 1),
                     round(100 * everywhere[gate]["right"], 1)])
    return table(SATURATION_HEADERS, rows)


def inspector_notes(unit: int, order: list[int], order_text: str, where: str, meaning: str,
                    contributions=None, bidirectional: bool = False, start_token: bool = False,
                    truncated: bool = False, steps: int = 0) -> str:
    hidden = len(order)
    notes = [f"**Unit {unit}** of {hidden} in {where}: rank {order.index(unit) + 1} by {order_text}. {meaning}."]
    if contributions is not None:
        values = contributions.contributions
        top = ", ".join(f"{u} ({float(values[u]):+.3f})" for u in order[:8])
        notes.append(f"Unit {unit} adds {float(values[unit]):+.3f} to the logit margin of "
                     f"“{md(contributions.decision)}” (pooled value × classifier weight). Strongest pushes "
                     f"towards it: {top}.")
    else:
        notes.append(f"First units in this order: {', '.join(map(str, order[:10]))}.")
    if bidirectional:
        notes.append("The forward direction reads left to right; the backward one reads right to left, so its "
                     "first step is the last token.")
    if start_token:
        notes.append(f"The next-word model reads a begin-of-text token ({gates.START_TOKEN}) before the text, as it "
                     "does when it generates.")
    if truncated:
        notes.append(f"Truncated: only the first {steps} tokens are traced.")
    return "\n\n".join(notes)


def mean_forget(traced: gates.TextTrace, layer: int, direction: int, where: str) -> tuple[list[float], str]:
    """The forget gate averaged over the units, per step, and the figure's place name; a GRU has no forget gate,
    and its update gate z (the share of memory kept) stands in."""
    if "f" in traced.layers[(layer, direction)]:
        return gates.mean_forget_per_token(traced.layers, layer, direction).tolist(), where
    return traced.layers[(layer, direction)]["z"].mean(-1).tolist(), where + " (update gate z)"


# -- the page's header and model cards ---------------------------------------------------------------------------


def header_line(sentiment, nextword) -> str:
    """Where the models run and where their weights came from."""
    device = device_name(sentiment.device)
    if str(nextword.device) != str(sentiment.device):
        device += f" (next word: {device_name(nextword.device)})"
    return (f"**Running on:** {md(device)} · **sentiment weights:** {md(sentiment.source)} · "
            f"**next-word weights:** {md(nextword.source)}")


def metrics_markdown(pipeline, what: str) -> str:
    """The measured test metrics of the checkpoint: its folder's metrics.json, else the "Test metrics" table of
    its model card (README.md), else "not measured yet". Hub downloads include both files."""
    folder = getattr(pipeline, "folder", None)
    if folder is None:
        return f"**{what}: test metrics** not measured yet."
    metrics_file = folder / "metrics.json"
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
    card = folder / "README.md"
    if card.is_file():
        text = card.read_text(errors="replace")
        section = text.split("## Test metrics", 1)[1] if "## Test metrics" in text else ""
        rows = [line for line in section.splitlines() if line.startswith("|")]
        if len(rows) > 2:
            return f"**{what}: measured test metrics** (from the model card)\n\n" + "\n".join(rows)
    return f"**{what}: test metrics** not measured yet."
