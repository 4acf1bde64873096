"""Plotly figures for the demo page, and its colours: the reading trajectory, the gate heatmap and one unit's
line chart over the text.

The builders take plain numbers (lists or numpy arrays) and token strings, so they hold no model code. Token
strings come from user text: every one is HTML-escaped before it reaches plotly, which renders a few tags
(<b>, <a href=...>) inside labels and hover text; the escaped form still displays as the characters typed.
plotly is imported on first use, so importing this module costs nothing at start-up.
"""

from __future__ import annotations

import html
import math
import textwrap
from typing import Sequence

import numpy as np

# One line per signal: what the value means, for titles, colour bars and the page's legend.
SIGNAL_LINES = {
    "i": "input gate i: how much of the new candidate is written into the cell (1 = write)",
    "f": "forget gate f: how much of the old cell state is kept (1 = keep)",
    "g": "candidate g: the new content offered to the cell (−1 … 1)",
    "o": "output gate o: how much of the cell is shown as the hidden state (1 = show)",
    "c": "cell state c: the conveyor belt, the long-term memory (c = f·c_prev + i·g)",
    "h": "hidden state h: what the cell outputs at this step (h = o·tanh(c))",
    # GRU models (a configuration option of the classifier)
    "r": "reset gate r: how much of the old state the candidate may read (1 = all)",
    "z": "update gate z: how much of the old state is kept (1 = keep)",
    "n": "candidate n: the new content offered to the state (−1 … 1)",
}
SIGNAL_NAMES = {
    "i": "input gate",
    "f": "forget gate",
    "g": "candidate",
    "o": "output gate",
    "c": "cell state",
    "h": "hidden state",
    "r": "reset gate",
    "z": "update gate",
    "n": "candidate",
}
GATES = {"i", "f", "o", "r", "z"}  # sigmoids: every value lies in [0, 1]

# The page's one colour language. Sentiment: positive always blue, negative always orange, on every tab (the
# pushes are in log P(positive) - log P(negative), so a push's sign picks its colour). Signed values (c, h, g and
# the candidates) sit on the same blue-orange scale centred at 0; amounts from 0 to 1 (gates) and surprisal on
# one white-to-purple scale. Plotly figures and the coloured text use the same stops.
POSITIVE, NEGATIVE = "#2166ac", "#b35806"
DIVERGING = [(0.0, NEGATIVE), (0.25, "#f1a340"), (0.5, "#f7f7f7"), (0.75, "#67a9cf"), (1.0, POSITIVE)]
SEQUENTIAL = [(0.0, "#fcfbfd"), (0.5, "#9e9ac8"), (1.0, "#3f007d")]
UNIT_LINES = {"c": "#111827", "h": "#6b7280", "f": "#7b3294", "i": "#1b7837", "o": "#a6761d", "g": "#0e7490",
              "z": "#7b3294", "r": "#a6761d", "n": "#0e7490"}
CLEARED_BELOW, WRITTEN_ABOVE = 0.5, 0.5  # the unit chart marks f < 0.5 (cleared) and i > 0.5 (written)
TOP_UNITS = 32  # the heatmap shows this many units unless all are asked for

FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


def colour_at(scale: Sequence[tuple[float, str]], x: float) -> str:
    """The colour at x in [0, 1] on a scale of (position, "#rrggbb") stops, linearly between stops."""
    x = min(max(float(x), 0.0), 1.0)
    for (x0, c0), (x1, c1) in zip(scale, scale[1:]):
        if x <= x1:
            t = (x - x0) / (x1 - x0)
            rgb0, rgb1 = _rgb(c0), _rgb(c1)
            return "#" + "".join(f"{round(a + t * (b - a)):02x}" for a, b in zip(rgb0, rgb1))
    return scale[-1][1]


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def ink_for(background: str) -> str:
    """Black or white text, whichever reads on the background."""
    r, g, b = _rgb(background)
    return "#ffffff" if 0.299 * r + 0.587 * g + 0.114 * b < 140 else "#111827"


def signed_colour(value: float, bound: float) -> str:
    """A signed value on the diverging scale: -bound full orange, 0 white, +bound full blue."""
    return colour_at(DIVERGING, 0.5 + 0.5 * value / (bound or 1.0))


def amount_colour(value: float, top: float = 1.0) -> str:
    """An amount on the sequential scale: 0 white, `top` full purple."""
    return colour_at(SEQUENTIAL, value / (top or 1.0))


def plotly_scale(scale: Sequence[tuple[float, str]]) -> list[list]:
    return [[x, c] for x, c in scale]


def escape(text: str) -> str:
    """User text made inert for plotly labels (plotly turns the entities back into the characters)."""
    return html.escape(text, quote=False)


def token_text(token: str) -> str:
    """A token for a label: spaces shown as ␣ (a piece that starts a word starts with one), HTML-escaped."""
    return escape(token.replace(" ", "␣") or "∅")


def token_label(position: int, token: str) -> str:
    """A unique, readable axis label: the position, then the token."""
    return f"{position} {token_text(token)}"


def _figure():
    import plotly.graph_objects as go

    return go


# The plotly toolbar keeps only "download as PNG" and "reset axes": the full bar is wider than the label beside it
# on a phone (390 px) and covered it; zoom and pan still work by dragging and double-clicking the plot.
MODEBAR_REMOVED = ["zoom", "pan", "select", "lasso", "zoomin", "zoomout", "autoscale", "togglehover",
                   "togglespikelines", "hoverclosest", "hovercompare"]
TITLE_CHARACTERS = 44  # a title line's length that fits a phone's plot (about 330 px at 14 px type)


def wrap_title(title: str, width: int = TITLE_CHARACTERS) -> str:
    """A title on lines of at most `width` characters (<br> between them), so a phone's narrow plot shows all of it;
    a line that holds markup (<sup>…</sup>) is kept whole."""
    lines = []
    for line in title.split("<br>"):
        lines += [line] if "<" in line else textwrap.wrap(line, width, break_long_words=False) or [line]
    return "<br>".join(lines)


def _layout(fig, title: str, height: int) -> None:
    title = wrap_title(title)
    fig.update_layout(
        title={"text": title, "font": {"size": 14}, "x": 0.01, "xanchor": "left"},
        template="plotly_white",
        height=height + 18 * title.count("<br>"),  # each extra title line takes room from the top, not the data
        margin={"l": 10, "r": 10, "t": 50 + 18 * title.count("<br>"), "b": 10},
        font={"family": FONT, "size": 12},
        hoverlabel={"font": {"family": FONT}},
        modebar={"remove": MODEBAR_REMOVED, "bgcolor": "rgba(255,255,255,0.8)"},
    )


def trajectory_figure(
    points: Sequence[tuple[int, float]],
    tokens: Sequence[str],
    positive_label: str = "positive",
    truncated_at: int | None = None,
    unit: str = "token",
    note: str = "",
):
    """P(positive) after each token read. `points` = [(tokens read, P)], `tokens` = every token the model read
    (so the hover can name the last one read). `truncated_at`: where the kept head ends and the tail starts.
    `unit`: what the points count ("word" when the page merged the pieces into words). `note`: a second title
    line (e.g. that the points are spaced), plain text: it is escaped here."""
    go = _figure()
    xs = [n for n, _ in points]
    ys = [p for _, p in points]
    hover = [f"after {n} {unit}{'s' * (n != 1)}, the last one {token_text(tokens[n - 1])}" for n in xs]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines+markers" if len(xs) <= 80 else "lines",
            line={"color": "#111827", "width": 2},
            marker={"size": 6},
            text=hover,
            hovertemplate="%{text}<br>P(" + escape(positive_label) + ") = %{y:.3f}<extra></extra>",
            name=f"P({positive_label})",
        )
    )
    # The halves in the sentiment colours: above 0.5 the model leans positive (blue), below negative (orange).
    fig.add_hrect(y0=0.5, y1=1.02, fillcolor=POSITIVE, opacity=0.10, line_width=0)
    fig.add_hrect(y0=-0.02, y1=0.5, fillcolor=NEGATIVE, opacity=0.10, line_width=0)
    fig.add_hline(y=0.5, line={"dash": "dot", "color": "#9ca3af"}, annotation_text="undecided (0.5)",
                  annotation_position="bottom right")
    if truncated_at is not None:
        fig.add_vline(x=truncated_at + 0.5, line={"dash": "dash", "color": "#f59e0b"},
                      annotation_text="middle of the text skipped", annotation_position="top")
    if len(xs) <= 40:  # short texts: name every token under the axis
        fig.update_xaxes(tickmode="array", tickvals=xs, ticktext=[token_text(tokens[n - 1]) for n in xs],
                         tickangle=-45)
    fig.update_xaxes(title_text=f"{unit}s read so far")
    fig.update_yaxes(title_text=f"P({escape(positive_label)})", range=[-0.02, 1.02])
    title = f"P({escape(positive_label)}) " + ("while reading" if note else f"after each {unit}")
    # The note in small type, wrapped here (wrap_title keeps a marked-up line whole): about 1.4 times as many
    # characters fit a line.
    note_lines = textwrap.wrap(escape(note), int(TITLE_CHARACTERS * 1.4), break_long_words=False)
    _layout(fig, "<br>".join([title] + [f"<sup>{line}</sup>" for line in note_lines]), 320)
    fig.update_layout(showlegend=False)
    return fig


def heatmap_figure(
    values: np.ndarray,
    tokens: Sequence[str],
    unit_order: Sequence[int],
    signal: str,
    where: str,
    selected_unit: int | None = None,
):
    """Tokens (rows, in reading order, top to bottom) × units (columns, in `unit_order`, numbered on the axis),
    coloured by `signal`. `values` holds every unit (tokens × hidden); only the units of `unit_order` are shown.

    Gates sit on the sequential scale fixed to [0, 1]; the candidate and the hidden state on the diverging scale
    fixed to [−1, 1]; the cell state, which is unbounded, on the diverging scale up to its largest |c|."""
    go = _figure()
    values = np.asarray(values, dtype=np.float32)
    order = np.asarray(unit_order, dtype=np.int64)
    z = values[:, order]
    rows = [token_label(t, token) for t, token in enumerate(tokens)]
    columns = [str(u) for u in order]
    if signal in GATES:
        scale, zmin, zmax = SEQUENTIAL, 0.0, 1.0
    else:
        bound = (float(np.abs(values).max()) or 1.0) if signal == "c" else 1.0
        scale, zmin, zmax = DIVERGING, -bound, bound
    name = SIGNAL_NAMES.get(signal, signal)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=columns,
            y=rows,
            colorscale=plotly_scale(scale),
            zmin=zmin,
            zmax=zmax,
            colorbar={"title": {"text": f"{signal}<br>{name}", "side": "top"}, "thickness": 12, "len": 0.9},
            hovertemplate="%{y}<br>unit %{x}<br>" + signal + " = %{z:.3f}<extra></extra>",
            xgap=1 if len(columns) <= 64 else 0,
            ygap=1,
        )
    )
    fig.update_yaxes(autorange="reversed", type="category", tickfont={"size": 11}, automargin=True)
    fig.update_xaxes(type="category", title_text="unit number", tickangle=-90, tickfont={"size": 9},
                     side="bottom", automargin=True)
    if selected_unit is not None and selected_unit in set(order.tolist()):
        column = int(np.nonzero(order == selected_unit)[0][0])
        fig.add_shape(type="rect", x0=column - 0.5, x1=column + 0.5, y0=-0.5, y1=len(rows) - 0.5,
                      line={"color": "#e11d48", "width": 2}, xref="x", yref="y")
    height = int(min(900, max(320, 130 + 22 * len(rows))))
    _layout(fig, f"{escape(name)} {signal} · {escape(where)}", height)
    return fig


def unit_figure(steps: dict[str, Sequence[float]], tokens: Sequence[str], unit: int, where: str):
    """One unit over the text: its cell state (and hidden state) above, its gates below, on shared tokens.
    `steps` maps signal names ("c", "h", "f", "i", "o", or a GRU's) to one value per token. Moments when the
    forget gate is low (the belt is cleared) and the input gate high (something is written) are marked on c."""
    go = _figure()
    from plotly.subplots import make_subplots

    rows = [token_label(t, token) for t, token in enumerate(tokens)]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.55, 0.45])
    states = [s for s in ("c", "h") if s in steps]
    gates = [s for s in ("f", "i", "o", "z", "r") if s in steps]
    for s in states:
        fig.add_trace(go.Scatter(
            x=rows, y=list(steps[s]), name=f"{s} · {SIGNAL_NAMES[s]}", mode="lines+markers",
            line={"color": UNIT_LINES[s], "width": 3 if s == "c" else 1.5, "dash": "solid" if s == "c" else "dot"},
            marker={"size": 5}, hovertemplate="%{x}<br>" + s + " = %{y:.3f}<extra></extra>"), row=1, col=1)
    for s in gates:
        fig.add_trace(go.Scatter(
            x=rows, y=list(steps[s]), name=f"{s} · {SIGNAL_NAMES[s]}", mode="lines+markers",
            line={"color": UNIT_LINES[s], "width": 2}, marker={"size": 5},
            hovertemplate="%{x}<br>" + s + " = %{y:.3f}<extra></extra>"), row=2, col=1)
    if "c" in steps and "f" in steps and "i" in steps:
        c = list(steps["c"])
        for name, test, symbol, colour in (
            (f"cleared (f < {CLEARED_BELOW})", lambda t: steps["f"][t] < CLEARED_BELOW, "x", UNIT_LINES["f"]),
            (f"written (i > {WRITTEN_ABOVE})", lambda t: steps["i"][t] > WRITTEN_ABOVE, "triangle-up", UNIT_LINES["i"]),
        ):
            marked = [t for t in range(len(rows)) if test(t)]
            fig.add_trace(go.Scatter(
                x=[rows[t] for t in marked], y=[c[t] for t in marked], name=name, mode="markers",
                marker={"symbol": symbol, "size": 12, "color": colour, "line": {"width": 1, "color": colour}},
                hovertemplate="%{x}<br>" + name + "<extra></extra>"), row=1, col=1)
    fig.update_yaxes(title_text="memory", zeroline=True, zerolinecolor="#9ca3af", row=1, col=1)
    fig.update_yaxes(title_text="gates", range=[-0.03, 1.03], row=2, col=1)
    fig.update_xaxes(type="category", tickangle=-45, showticklabels=len(rows) <= 80, automargin=True, row=2, col=1)
    _layout(fig, f"Unit {unit} · {escape(where)}", 460)
    fig.update_layout(legend={"orientation": "h", "y": -0.25 if len(rows) <= 80 else -0.05, "x": 0,
                              "font": {"size": 11}})
    return fig


# -- the Compare tab (tracker issue 12) --------------------------------------------------------------------------

# One colour per compared variant in every chart; a family shares a hue (the plain RNN grey, LSTMs violet, GRUs
# green, the Conv1d front end fuchsia, stacked LSTMs pink). None is blue or orange: those mean positive and negative.
VARIANT_COLOURS = {
    "rnn": "#525252", "lstm": "#7c3aed", "bilstm": "#4c1d95", "gru": "#059669", "bigru": "#065f46",
    "conv_bilstm": "#c026d3", "lstm2": "#db2777", "lstm2_dropout": "#9d174d",
}
# Short, medium, long reviews: greys, lighter to darker (blue and orange mean positive and negative on the page).
LENGTH_COLOURS = ("#c7c7c7", "#8c8c8c", "#3f3f3f")


def _half_spread(stat: dict | None, scale: float = 1.0) -> float:
    return 0.0 if stat is None else stat["spread"] * scale / 2


def _axis_label(title: str, width: int = 17) -> str:
    """A variant's name for a category axis, on two lines when long, so a phone's narrow screen keeps room for
    the bars ("Conv1d (stride 2)<br>+ BiLSTM")."""
    return "<br>".join(textwrap.wrap(escape(title), width, break_long_words=False))


def _bottom_legend(fig) -> None:
    """A legend under the plot, so a phone's narrow screen keeps the whole width for the data."""
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.18, "xanchor": "left", "x": 0})


def length_accuracy_figure(variants: dict[str, dict], bucket_names: dict[str, str]):
    """IMDB test accuracy by review length: one row per variant (named on the axis, as in the speed chart, so a
    phone's narrow screen keeps its width for the bars), one bar per length group with ± half the spread over
    seeds. `variants`: results.json's "variants"; `bucket_names`: legend label per bucket (short, medium, long)."""
    go = _figure()
    fig = go.Figure()
    titles = [_axis_label(variant["title"]) for variant in variants.values()]
    for (bucket, label), colour in zip(bucket_names.items(), LENGTH_COLOURS):
        stats = [variant["imdb_accuracy_by_length"].get(bucket) for variant in variants.values()]
        fig.add_trace(go.Bar(
            name=escape(label),
            x=[None if s is None else 100 * s["mean"] for s in stats],
            y=titles,
            orientation="h",
            error_x={"type": "data", "array": [_half_spread(s, 100) for s in stats], "thickness": 1},
            marker={"color": colour},
            hovertemplate="%{y}<br>" + escape(label) + ": %{x:.1f}%<extra></extra>",
        ))
    # The axis starts at chance (50% on balanced labels): a bar's length is what the variant learned. A variant
    # below chance moves the start down, so that its bar still shows.
    lowest = min([50.0] + [x for trace in fig.data for x in trace.x if x is not None])
    ticks = list(range(int(lowest // 10 * 10), 101, 10))
    fig.update_xaxes(range=[ticks[0], 100], tickvals=ticks, tickangle=0, automargin=True,
                     ticktext=["50<br>chance" if t == 50 else str(t) for t in ticks])
    fig.update_yaxes(autorange="reversed", type="category")
    _layout(fig, "IMDB test accuracy (%) by review length", int(140 + 60 * len(titles)))
    fig.update_layout(barmode="group", bargap=0.25, margin={"r": 24})  # room for the last tick's label, 100
    _bottom_legend(fig)
    return fig


def speed_figure(variants: dict[str, dict]):
    """Training tokens per second per variant (± half the spread over seeds), first variant on top."""
    go = _figure()
    names = list(variants)
    titles = [_axis_label(variants[n]["title"]) for n in names]
    speeds = [variants[n]["tokens_per_second"] for n in names]
    fig = go.Figure(go.Bar(
        x=[None if s is None else s["mean"] for s in speeds],
        y=titles,
        orientation="h",
        error_x={"type": "data", "array": [_half_spread(s) for s in speeds], "thickness": 1},
        marker={"color": [VARIANT_COLOURS.get(n) for n in names]},
        hovertemplate="%{y}: %{x:,.0f} tokens/s<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", type="category")
    # The unit goes in the title, not under the axis: at phone width the variant names leave the axis little room.
    _layout(fig, "Training speed (tokens/s, more is faster)", int(120 + 34 * len(names)))
    fig.update_layout(showlegend=False)
    return fig


GRADIENT_FLOOR = 1e-10  # the gradient chart's lowest decade: smaller norms (down to an exact 0) sit on this line


def floor_values(values: Sequence[float], floor: float = GRADIENT_FLOOR) -> tuple[list[float], list[bool]]:
    """Values for a log axis: each one below `floor` (0 included, which float32 reaches by underflow) is drawn at
    `floor`, and flagged, so that a line never breaks where a value has no place on the axis."""
    below = [not value >= floor for value in values]  # NaN counts as below: it has no place on the axis either
    return [floor if low else float(value) for value, low in zip(values, below)], below


def gradient_figure(curves: dict[str, dict], floor: float = GRADIENT_FLOOR):
    """‖∂ logit / ∂ embedding_t‖ against the token's distance from the end, log scale, one line per variant.
    `curves`: {variant name: {"title", "tokens", "norms"}} in reading order. A norm below `floor` (an exact 0
    included) is drawn on the floor line with a ▼ of the line's colour, instead of a gap in the line."""
    go = _figure()
    fig = go.Figure()
    exponent = round(math.log10(floor))
    floor_name = f"below 1e{exponent}"
    floored = False  # whether any line has a value on the floor: only then is the floor line drawn
    for name, curve in curves.items():
        tokens, norms = curve["tokens"], curve["norms"]
        distances = list(range(len(norms) - 1, -1, -1))  # the last token read is 0 tokens from the end
        ys, below = floor_values(norms, floor)
        title, colour = escape(curve["title"]), VARIANT_COLOURS.get(name)
        shown = ["0 (underflow)" if n == 0 else f"{n:.3g}" for n in norms]
        fig.add_trace(go.Scatter(
            name=title, legendgroup=name, x=distances, y=ys,
            mode="lines+markers" if len(norms) <= 80 else "lines",
            line={"color": colour, "width": 2}, marker={"size": 5},
            text=[token_text(t) for t in tokens], customdata=shown,
            hovertemplate=title + "<br>%{text}, %{x} tokens from the end"
                          "<br>‖∂ logit / ∂ embedding‖ = %{customdata}<extra></extra>",
        ))
        if any(below):
            floored = True
            low = [i for i, flag in enumerate(below) if flag]
            fig.add_trace(go.Scatter(
                name=f"{title}: {floor_name}", legendgroup=name, showlegend=False, mode="markers",
                x=[distances[i] for i in low], y=[floor] * len(low),
                marker={"symbol": "triangle-down", "size": 8, "color": colour},
                text=[token_text(tokens[i]) for i in low], customdata=[shown[i] for i in low],
                hovertemplate=title + "<br>%{text}, %{x} tokens from the end<br>‖∂ logit / ∂ embedding‖ = "
                              "%{customdata}, " + floor_name + "<extra></extra>",
            ))
    if floored:
        fig.add_hline(y=floor, line={"dash": "dot", "color": "#9ca3af"})
        # An annotation on a log axis is placed by the exponent (add_hline's own annotation lands at 10^floor ≈ 1).
        fig.add_annotation(text=f"▼ {floor_name} (0 included)", xref="paper", x=0, xanchor="left", yref="y",
                           y=math.log10(floor), yanchor="bottom", showarrow=False,
                           font={"size": 11, "color": "#4b5563"})
    fig.update_xaxes(title_text="tokens from the end", autorange="reversed")
    fig.update_yaxes(type="log", title_text="gradient norm (log)", exponentformat="power")
    _layout(fig, "Vanishing gradient: how much each token<br>can still move the decision", 420)
    _bottom_legend(fig)
    return fig
