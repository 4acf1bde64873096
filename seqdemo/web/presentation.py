"""What the page shows, as plain data: coloured spans, tables, notes and number formats. No gradio here, so a
script (or a test) gets exactly what the page would show.

User text reaches the page as plain strings in table cells, or HTML-escaped inside the coloured text (`chips_html`,
the one place this module writes HTML); Markdown notes carry numbers, labels from the checkpoint's config and file
contents, each escaped with `md`, never the text a person typed.

Everywhere a person reads tokens the page shows words (Tokenizer.words: pieces merged, their values summed),
whitespace as visible marks (¶ for a line break, ␣ for a space); the gate inspector keeps a per-piece view.
"""

from __future__ import annotations

import html
import itertools
import math
import re

import torch

from seqdemo.core import gates
from seqdemo.core.device import device_name
from seqdemo.core.text import letter_counts, word_count
from seqdemo.core.tokenizer import Span, Tokenizer
from seqdemo.core.units import MarkedChange
from seqdemo.core.validate import InputError
from seqdemo.web import plots
from seqdemo.web.limits import IG_STEPS, MAX_CHARS
from seqdemo.web.plots import GATES, SIGNAL_LINES, SIGNAL_NAMES

TOP_ROWS = 12  # rows in the "strongest pushes" table
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


SPACE_MARKS = {"\n": "¶", " ": "␣", "\t": "⇥", "\r": ""}


def is_space(text: str) -> bool:
    return not text.strip()


def shown(token: str) -> str:
    """A token as a person reads it: a whitespace token as its visible marks (a line break as ¶), any other
    without the space that starts its word."""
    if is_space(token):
        return "".join(SPACE_MARKS.get(ch, "␣") for ch in token) or "␣"
    return token.lstrip(" ")


def cell_text(token: str) -> str:
    """A token in a table cell."""
    return shown(token)


def chips_html(words: list[tuple[str, str, str, float]], legend: str) -> str:
    """The text as coloured chips, one per word, and its legend: (text, background colour, hover text, value)
    per word. The one place this module writes HTML: every text is escaped, the colours come from seqdemo.web.plots.

    A chip never breaks inside a word; the space before a word stays outside its chip (the line may wrap there);
    a whitespace token shows its marks, and a line break in it breaks the line. `data-value` holds the value."""
    parts = []
    for text, background, title, value in words:
        lead = " " if text.startswith(" ") and not is_space(text) else ""
        chip = (f'<span class="sq-chip" style="background:{background};color:{plots.ink_for(background)}" '
                f'title="{html.escape(title)}" data-value="{value:.6g}">{html.escape(shown(text))}</span>')
        parts.append(lead + chip + "<br>" * (is_space(text) and text.count("\n")))
    return f'<div class="sq-colours">{legend}<div class="sq-text">{"".join(parts)}</div></div>'


def legend_html(scale, left: str, right: str, middle: str = "") -> str:
    """A colour bar with its meaning at both ends (and the middle): the legend beside coloured text."""
    stops = ", ".join(f"{colour} {100 * x:.0f}%" for x, colour in scale)
    labels = "".join(f"<span>{html.escape(label)}</span>" for label in (left, middle, right))
    return (f'<div class="sq-legend"><div class="sq-legend-bar" style="background:linear-gradient(to right, '
            f'{stops})"></div><div class="sq-legend-labels">{labels}</div></div>')


def word_spans(tokenizer: Tokenizer, ids: list[int], values: list[float], starts_text: bool = True) -> list[Span]:
    """Tokenizer.words with control characters made visible: the words a person reads, each with its pieces'
    summed value."""
    return [span._replace(text=visible(span.text)) for span in tokenizer.words(ids, values, starts_text)]


def token_labels(tokenizer: Tokenizer, ids: list[int]) -> list[str]:
    """One label per piece the model read (Tokenizer.step_label), control characters made visible."""
    return [visible(tokenizer.step_label(token)) for token in ids]


def trace_labels(tokenizer: Tokenizer, traced: gates.TextTrace) -> list[str]:
    """One label per step of a gate trace (per piece): the piece, the begin-of-text token shown as ⟨start⟩."""
    return [
        label if label == gates.START_TOKEN else visible(tokenizer.step_label(token))
        for token, label in zip(traced.ids, traced.tokens)
    ]


# -- sentiment ---------------------------------------------------------------------------------------------------


def attribution_spans(tokenizer: Tokenizer, explanation) -> list[Span | None]:
    """The explanation's words, each with its pieces' summed push, None where a long text's middle was skipped."""
    ids, values, cut = explanation.ids, explanation.attributions, explanation.middle_skipped_at
    if cut is None:
        return word_spans(tokenizer, ids, values)
    return [*word_spans(tokenizer, ids[:cut], values[:cut]), None,
            *word_spans(tokenizer, ids[cut:], values[cut:], starts_text=False)]


def strongest_push(spans: list[Span | None]) -> float:
    return max((abs(s.value) for s in spans if s is not None), default=0.0) or 1.0


def attribution_chips(spans: list[Span | None], positive: str, negative: str) -> str:
    """The words coloured by their push: blue towards `positive`, orange towards `negative`, whatever the verdict;
    full colour = the strongest push in the text."""
    strongest = strongest_push(spans)
    words = []
    for s in spans:
        if s is None:
            words.append((MIDDLE_SKIPPED, "#e5e7eb", "the model did not read this part", 0.0))
            continue
        towards = positive if s.value > 0 else negative
        words.append((s.text, plots.signed_colour(s.value, strongest),
                      f"push {s.value:+.3f} (towards {towards})", s.value))
    legend = legend_html(plots.DIVERGING, f"← towards {negative}", f"towards {positive} →", "no push")
    return chips_html(words, legend)


def pushes_table(spans: list[Span | None], positive: str, negative: str, rows: int = TOP_ROWS) -> dict:
    """The `rows` strongest pushes, strongest first, in log-odds, and which label each pushed towards. Words come
    before whitespace (a line break's push is real, but it is not what a reader looks for)."""
    ranked = sorted((s for s in spans if s is not None), key=lambda s: (is_space(s.text), -abs(s.value)))[:rows]
    return table(
        ["word", "push (log-odds)", "towards"],
        [[cell_text(s.text), round(s.value, 4), positive if s.value > 0 else negative if s.value < 0 else "neither"]
         for s in ranked],
    )


def classify_view(tokenizer: Tokenizer, labels: list[str], explanation, text_tokens: int, clipped: bool,
                  text: str = "", intended: str | None = None, text_chars: int | None = None):
    """What the sentiment tab shows: the words coloured by their push, the strongest pushes, a plain sentence and
    the details. `text_tokens`: how many tokens the whole text has; `clipped`: the page cut its characters. Under
    the verdict, one line each where it applies: a long text's part that was read (`text_chars`: the length as
    typed), a text mostly outside what the model learned from, and a wrong answer on one of the page's own
    examples (`intended`: the label a person gives it)."""
    spans = attribution_spans(tokenizer, explanation)
    positive, negative = labels[-1], labels[0]
    prediction = explanation.prediction
    verdict = prediction["label"]
    colour = plots.POSITIVE if verdict == positive else plots.NEGATIVE
    summary = (f'<p class="sq-summary">The model reads this text as <span class="sq-chip" style="background:{colour};'
               f'color:#ffffff">{html.escape(verdict)}</span>, {percent(prediction["score"])} sure. Blue words pushed '
               f"it towards {html.escape(positive)}, orange ones towards {html.escape(negative)}; the deeper the "
               "colour, the stronger the push.</p>")
    lines = [read_line(spans, len(text) if text_chars is None else text_chars, clipped),
             domain_line(text, explanation.ids, tokenizer),
             wrong_line(intended, prediction, spans, positive, negative)]
    summary += "".join(f'<p class="sq-summary sq-caveat">{line}</p>' for line in lines if line)
    details = classify_notes(explanation, labels, strongest_push(spans), text_tokens, clipped)
    return attribution_chips(spans, positive, negative), pushes_table(spans, positive, negative), summary, details


# What the shipped classifier learned from (checkpoints/sentiment/README.md): the line beside an out-of-domain verdict.
TRAINED_ON = "English movie reviews (IMDB reviews and Rotten Tomatoes sentences)"
# Measured on the shipped tokenizer (the validation rows of each source): pieces
# the vocabulary lacks (byte fallback) are at most 10% of an IMDB review and 18% of a Rotten Tomatoes sentence, and
# no letter of either is outside the Latin script; Chinese, Hebrew, Arabic, Cyrillic and emoji-only texts are
# 87-98% such pieces, their letters 100% non-Latin. Half is far from both.
UNKNOWN_SHARE = 0.5
NON_LATIN_SHARE = 0.5
# Rotten Tomatoes sentences run from 2 words (0.5% of them have 2 or fewer), IMDB reviews from 11.
FEW_WORDS = 2


def domain_reason(text: str, ids: list[int], tokenizer: Tokenizer) -> str:
    """Why a text lies mostly outside what the classifier learned from, in a few words, or "" when it does not:
    no letters at all, letters mostly outside the Latin script, pieces mostly unknown to the vocabulary (read
    byte by byte), or one or two words."""
    letters, latin = letter_counts(text)
    unknown = sum(1 for token in ids if tokenizer.byte_value(token) is not None or token == tokenizer.unk_id)
    if letters == 0:
        return "it has no words, only symbols, digits or emoji"
    if letters - latin > NON_LATIN_SHARE * letters:
        return f"{letters - latin} of its {letters} letters are outside the Latin alphabet English is written in"
    if ids and unknown > UNKNOWN_SHARE * len(ids):
        return (f"{unknown} of the {len(ids)} pieces it read are bytes of characters its vocabulary never learned "
                "(emoji, accents, other scripts)")
    if word_count(text) <= FEW_WORDS:
        return "it is only one or two words long"
    return ""


def domain_line(text: str, ids: list[int], tokenizer: Tokenizer) -> str:
    """The line beside a verdict on a text mostly outside what the model learned from ("" for any other)."""
    reason = domain_reason(text, ids, tokenizer)
    if not reason:
        return ""
    return (f"<b>Mostly outside what it learned:</b> {html.escape(reason)}. The model was trained on "
            f"{html.escape(TRAINED_ON)}: read this verdict and its confidence with care.")


def wrong_line(intended: str | None, prediction: dict, spans: list[Span | None], positive: str,
               negative: str) -> str:
    """For one of the page's own examples the model gets wrong: says so, names the word that pushed hardest
    towards its wrong answer, and points at the trajectory. "" when it is right, or the text is no example."""
    verdict = prediction["label"]
    if intended is None or intended == verdict:
        return ""
    towards = 1.0 if verdict == positive else -1.0  # the sign of a push towards the (wrong) verdict
    words = [s for s in spans if s is not None and not is_space(s.text) and towards * s.value > 0]
    swing = ""
    if words:
        top = max(words, key=lambda s: towards * s.value)
        swing = (f" The word that pushed hardest towards {html.escape(verdict)} was "
                 f"“{html.escape(shown(top.text))}” ({top.value:+.2f} in log-odds, in the table below).")
    return (f"<b>The model gets this example wrong.</b> A person reads it as {html.escape(intended)}; the model says "
            f"{html.escape(verdict)} ({percent(prediction['score'])}).{swing} The reading trajectory below shows "
            f"where its verdict turned as it read.")


def read_line(spans: list[Span | None], chars: int, clipped: bool) -> str:
    """For a long text, what the model read of it, in words and characters ("" when it read it whole)."""
    if None not in spans:
        return ""
    cut = spans.index(None)
    head = sum(1 for s in spans[:cut] if re.search(r"\w", s.text))  # words, not punctuation or spaces
    tail = sum(1 for s in spans[cut + 1:] if re.search(r"\w", s.text))
    cut_chars = f" (of which the page passed on the first and last {MAX_CHARS // 2:,})" if clipped else ""
    return (f"<b>Read in part:</b> the model read the first {head:,} and last {tail:,} words of these {chars:,} "
            f"characters{cut_chars}; the middle was skipped (grey in the coloured text).")


def classify_notes(explanation, labels: list[str], strongest: float, text_tokens: int, clipped: bool) -> str:
    """What was read of a long text, and how the colours add up to the decision, exactly."""
    prediction, method = explanation.prediction, explanation.method
    positive, negative = labels[-1], labels[0]
    notes = [f"**{md(prediction['label'])}** with confidence {percent(prediction['score'])}; "
             f"the model read {prediction['tokens']} tokens (pieces of words; a word's push is the sum of its "
             "pieces')."]
    cut = explanation.middle_skipped_at
    if cut is not None:
        read = len(explanation.ids)
        notes.append(f"Truncated to {read} tokens: the text has {text_tokens:,}{'+' if clipped else ''}; the model "
                     f"read its first {cut} and last {read - cut}.")
    if clipped:
        notes.append(f"Only the first and last {MAX_CHARS // 2:,} characters were passed to the model.")
    total = sum(explanation.attributions)
    notes.append(
        METHOD_NOTES[method] + f" Full colour = the strongest push, {strongest:.3f} in log-odds (log P({md(positive)})"
        f" − log P({md(negative)})). The pushes add up to {total:+.3f}; log-odds of the text "
        f"{explanation.log_odds:+.3f} − {OFFSET_NAMES[method]} {explanation.offset:+.3f} = "
        f"{explanation.log_odds - explanation.offset:+.3f}."
    )
    return "\n\n".join(notes)


def trajectory_view(trajectory) -> tuple[list[tuple[int, float]], list[str], int | None, str]:
    """A SentimentPipeline.reading_trajectory for the chart: its points as (words read, P), every word's label (for
    the hover), how many words the kept start of a long text holds (None: read whole), and the note the chart
    shows when the points are evenly spaced (empty when every word has its point)."""
    words = trajectory.words
    points = [(index + 1, p) for index, (_, p) in zip(trajectory.word_indices, trajectory.points)]
    labels = [shown(visible(word.text)) for word in words]
    head_words = None
    if trajectory.middle_skipped_at is not None:  # the words that end before the skip are the kept start
        head_words = sum(1 for word in words if max(word.positions) < trajectory.middle_skipped_at)
    note = ""
    if trajectory.spaced:
        note = f"{len(points)} of {len(words)} word ends, evenly spaced; each point exact"
    return points, labels, head_words, note


# -- next word ---------------------------------------------------------------------------------------------------


def next_words_notes(words: list[tuple[str, float]], truncated: bool, prompt_tokens: int) -> str:
    notes = [f"These {len(words)} words hold {percent(sum(p for _, p in words))} of the probability of what comes "
             "next."]
    if truncated:
        notes.append(f"Truncated: the model read the last {prompt_tokens} tokens of the prompt.")
    return " ".join(notes)


def surprisal_view(tokenizer: Tokenizer, summary, clipped: bool) -> tuple[str, dict, str, str]:
    """Words coloured by their bits (full purple = a blind guess over the vocabulary), the table, a plain sentence
    and the details. A word's bits are its pieces' bits added up (the chance of the word is their product)."""
    spans = word_spans(tokenizer, summary.ids, [row["bits"] for row in summary.rows])
    blind = math.log2(tokenizer.vocab_size)  # a uniform guess over the vocabulary
    words = [(s.text, plots.amount_colour(min(s.value / blind, 1.0)), f"{s.value:.2f} bits", s.value) for s in spans]
    chips = chips_html(words, legend_html(plots.SEQUENTIAL, "expected (0 bits)", f"{blind:.1f}+ bits: a blind guess"))
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
    summary_line = (f"The darker a word, the more it surprised the model. This text cost it "
                    f"{summary.bits_per_char:.2f} bits per character (lower = more predictable).")
    notes = [
        f"{scored} tokens, {summary.total_bits:.1f} bits in all: per-token perplexity {summary.perplexity:.1f}, "
        f"{summary.bits_per_char:.3f} bits per character.",
        f"Full colour = {blind:.1f} bits or more: as surprising as a blind guess among the {tokenizer.vocab_size:,} "
        "tokens of the vocabulary. A word spelled by several pieces adds up its pieces' bits; the guesses are the "
        "model's top 3 for the word's first piece.",
    ]
    if summary.truncated or clipped:
        notes.append(f"Truncated to {scored} tokens: the model scored the first {scored} of "
                     f"{summary.text_tokens}{'+' if clipped else ''}.")
    columns = ["word", "bits", "probability", "pieces", "the model's top 3 guesses"]
    return chips, table(columns, rows), summary_line, "\n\n".join(notes)


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


STATES = {"c", "h"}  # values a step leaves behind: a word shows them after its last piece


def inspector_steps(tokenizer: Tokenizer, traced: gates.TextTrace, view: str = "words") -> list[Span]:
    """What the inspector's rows are: the words of the traced text ("words"), or every step the LSTM takes
    ("pieces"), each as a Span whose positions are steps of the trace. ⟨start⟩ is a row of its own."""
    if view == "pieces":
        return [Span(label, 0.0, [t]) for t, label in enumerate(trace_labels(tokenizer, traced))]
    if view != "words":
        raise InputError("view must be one of: words, pieces.")
    first = 1 if traced.tokens[0] == gates.START_TOKEN else 0
    words = word_spans(tokenizer, traced.ids[first:], [0.0] * (len(traced.ids) - first))
    shifted = [w._replace(positions=[p + first for p in w.positions]) for w in words]
    return [Span(gates.START_TOKEN, 0.0, [0])] * first + shifted


def step_values(matrix: torch.Tensor, rows: list[Span], signal: str) -> torch.Tensor:
    """(rows, units) from a (steps, units) matrix: c and h after a row's last piece, gates and candidates
    averaged over its pieces."""
    if signal in STATES:
        return matrix[[row.positions[-1] for row in rows]]
    return torch.stack([matrix[row.positions].mean(0) for row in rows])


def unit_chips(rows: list[Span], column: torch.Tensor, signal: str) -> str:
    """The text coloured by one unit: a gate on the white-to-purple scale (0 to 1), a signed value on the
    blue-orange scale (the cell state up to its largest |c| in the text, the others up to 1)."""
    values = column.tolist()
    if signal in GATES:
        colours = [plots.amount_colour(v) for v in values]
        legend = legend_html(plots.SEQUENTIAL, f"{signal} = 0 (shut)", f"{signal} = 1 (open)")
    else:
        bound = (max(abs(v) for v in values) or 1.0) if signal == "c" else 1.0
        colours = [plots.signed_colour(v, bound) for v in values]
        legend = legend_html(plots.DIVERGING, f"{signal} = −{bound:.2f}", f"{signal} = +{bound:.2f}", "0")
    words = [(row.text, colour, f"{signal} = {v:.3f}", v) for row, colour, v in zip(rows, colours, values)]
    return chips_html(words, legend)


def marked_steps(rows: list[Span], marked: str) -> list[int]:
    """The steps of the rows that the marked words cover: their first occurrence in the text, any case."""
    query = str(marked or "").strip().lower()
    if not query:
        raise InputError("Type a word or a few words from the text to find the units that notice them.")
    words = [row for row in rows if row.text != gates.START_TOKEN]
    starts = [0, *itertools.accumulate(len(w.text) for w in words)]
    begin = "".join(w.text for w in words).lower().find(query)
    if begin < 0:
        raise InputError("Those words are not in the text: type a word or a few words exactly as they appear in "
                         "it.")
    end = begin + len(query)
    covered = [w for w, start in zip(words, starts) if start < end and start + len(w.text) > begin]
    return sorted(p for row in covered for p in row.positions)


FIND_ROWS = 10
FIND_HEADERS = {"c": ["unit", "c before → after", "× its usual step", "f here (elsewhere)", "i here (elsewhere)"],
                "h": ["unit", "h before → after", "× its usual step", "z here (elsewhere)", "1 − z here (elsewhere)"]}


def found_table(change: MarkedChange, rows: int = FIND_ROWS) -> dict:
    """The `rows` units that changed most at the marked words (seqdemo.core.units.marked_change), as the table
    the page shows: memory before and after, the jump against the unit's usual step, the gates here and elsewhere."""
    data = [[u, f"{float(change.before[u]):+.2f} → {float(change.after[u]):+.2f}",
             f"{float(change.jump[u]):.1f}×",
             f"{float(change.keep_here[u]):.2f} ({float(change.keep_else[u]):.2f})",
             f"{float(change.write_here[u]):.2f} ({float(change.write_else[u]):.2f})"] for u in change.order[:rows]]
    return table(FIND_HEADERS[change.kind], data)


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


def inspector_notes(unit: int, order: list[int], order_text: str, where: str, view: str = "words",
                    contributions=None, bidirectional: bool = False, start_token: bool = False,
                    truncated: bool = False, steps: int = 0) -> str:
    hidden = len(order)
    notes = [f"**Unit {unit}** of {hidden} in {where}: rank {order.index(unit) + 1} by {order_text}."]
    if view == "words":
        notes.append("Rows are words: a word of several pieces shows the states (c, h) after its last piece (the "
                     "memory once the word is read) and the mean of its pieces' gates and candidates. Choose "
                     "*pieces* to see every step the model takes.")
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




# -- the page's header and model cards ---------------------------------------------------------------------------


def header_line(sentiment, nextword) -> str:
    """Where the models run and where their weights came from."""
    device = device_name(sentiment.device)
    if str(nextword.device) != str(sentiment.device):
        device += f" (next word: {device_name(nextword.device)})"
    return (f"**Running on:** {md(device)} · **sentiment weights:** {md(sentiment.source)} · "
            f"**next-word weights:** {md(nextword.source)}")
