"""Plotly figures for the demo page: the reading trajectory, the gate heatmap and the mean forget gate per token.

The builders take plain numbers (lists or numpy arrays) and token strings, so they hold no model code. Token
strings come from user text: every one is HTML-escaped before it reaches plotly, which renders a few tags
(<b>, <a href=...>) inside labels and hover text; the escaped form still displays as the characters typed.
plotly is imported on first use, so importing this module costs nothing at start-up.
"""

from __future__ import annotations

import html
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

FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


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


def _layout(fig, title: str, height: int) -> None:
    fig.update_layout(
        title={"text": title, "font": {"size": 14}, "x": 0.01, "xanchor": "left"},
        template="plotly_white",
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        font={"family": FONT, "size": 12},
        hoverlabel={"font": {"family": FONT}},
    )


def trajectory_figure(
    points: Sequence[tuple[int, float]],
    tokens: Sequence[str],
    positive_label: str = "positive",
    truncated_at: int | None = None,
):
    """P(positive) after each token read. `points` = [(tokens read, P)], `tokens` = every token the model read
    (so the hover can name the last one read). `truncated_at`: where the kept head ends and the tail starts."""
    go = _figure()
    xs = [n for n, _ in points]
    ys = [p for _, p in points]
    hover = [f"after {n} token{'s' * (n != 1)}, the last one {token_text(tokens[n - 1])}" for n in xs]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines+markers" if len(xs) <= 80 else "lines",
            line={"color": "#2563eb", "width": 2},
            marker={"size": 6},
            text=hover,
            hovertemplate="%{text}<br>P(" + escape(positive_label) + ") = %{y:.3f}<extra></extra>",
            name=f"P({positive_label})",
        )
    )
    fig.add_hline(y=0.5, line={"dash": "dot", "color": "#9ca3af"}, annotation_text="undecided (0.5)",
                  annotation_position="bottom right")
    if truncated_at is not None:
        fig.add_vline(x=truncated_at + 0.5, line={"dash": "dash", "color": "#f59e0b"},
                      annotation_text="middle of the text skipped", annotation_position="top")
    if len(xs) <= 40:  # short texts: name every token under the axis
        fig.update_xaxes(tickmode="array", tickvals=xs, ticktext=[token_text(tokens[n - 1]) for n in xs],
                         tickangle=-45)
    fig.update_xaxes(title_text="tokens read so far")
    fig.update_yaxes(title_text=f"P({escape(positive_label)})", range=[-0.02, 1.02])
    _layout(fig, f"Reading trajectory: P({escape(positive_label)}) as if the text stopped after each token", 320)
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
    """Tokens (rows, in reading order, top to bottom) × units (columns, in `unit_order`), coloured by `signal`.

    Gates use a sequential scale fixed to [0, 1]; the candidate and the hidden state a diverging scale fixed to
    [−1, 1]; the cell state, which is unbounded, a diverging scale symmetric around 0 up to its largest |c|."""
    go = _figure()
    values = np.asarray(values, dtype=np.float32)
    order = np.asarray(unit_order, dtype=np.int64)
    z = values[:, order]
    rows = [token_label(t, token) for t, token in enumerate(tokens)]
    columns = [f"unit {u}" for u in order]
    if signal in GATES:
        scale, zmin, zmax = "Viridis", 0.0, 1.0
    elif signal == "c":
        bound = float(np.abs(values).max()) or 1.0
        scale, zmin, zmax = "RdBu_r", -bound, bound
    else:
        scale, zmin, zmax = "RdBu_r", -1.0, 1.0
    name = SIGNAL_NAMES.get(signal, signal)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=columns,
            y=rows,
            colorscale=scale,
            zmin=zmin,
            zmax=zmax,
            colorbar={"title": {"text": f"{signal}<br>{name}", "side": "top"}, "thickness": 14},
            hovertemplate="token %{y}<br>%{x}<br>" + signal + " = %{z:.3f}<extra></extra>",
            xgap=0,
            ygap=0,
        )
    )
    fig.update_yaxes(autorange="reversed", type="category", title_text="token (reading order)",
                     tickfont={"size": 11})
    fig.update_xaxes(type="category", title_text="unit", showticklabels=len(columns) <= 64, tickangle=-90)
    if selected_unit is not None and selected_unit in set(order.tolist()):
        column = int(np.nonzero(order == selected_unit)[0][0])
        fig.add_shape(type="rect", x0=column - 0.5, x1=column + 0.5, y0=-0.5, y1=len(rows) - 0.5,
                      line={"color": "#f97316", "width": 2}, xref="x", yref="y")
    height = int(min(900, max(380, 170 + 24 * len(rows))))
    _layout(fig, f"{escape(SIGNAL_LINES.get(signal, signal))} · {escape(where)}", height)
    return fig


def forget_figure(mean_forget: Sequence[float], tokens: Sequence[str], where: str):
    """The forget gate averaged over the units, per token: where the layer lets go of its memory."""
    go = _figure()
    rows = [token_label(t, token) for t, token in enumerate(tokens)]
    fig = go.Figure(
        go.Bar(
            x=rows,
            y=list(mean_forget),
            marker={"color": list(mean_forget), "colorscale": "Viridis", "cmin": 0, "cmax": 1,
                    "colorbar": {"title": {"text": "mean f"}, "thickness": 12}},
            hovertemplate="token %{x}<br>mean f = %{y:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(type="category", tickangle=-45, showticklabels=len(rows) <= 60, title_text="token")
    fig.update_yaxes(range=[0, 1], title_text="mean forget gate")
    _layout(fig, f"Mean forget gate per token · {escape(where)} · low = the belt is cleared here", 300)
    return fig


# -- the Compare tab (tracker issue 12) --------------------------------------------------------------------------

# One colour per compared variant in every chart; a family shares a hue (LSTMs blue, GRUs green, stacked amber).
VARIANT_COLOURS = {
    "rnn": "#dc2626", "lstm": "#2563eb", "bilstm": "#1e3a8a", "gru": "#16a34a", "bigru": "#166534",
    "conv_bilstm": "#9333ea", "lstm2": "#f59e0b", "lstm2_dropout": "#b45309",
}


def _half_spread(stat: dict | None, scale: float = 1.0) -> float:
    return 0.0 if stat is None else stat["spread"] * scale / 2


def _bottom_legend(fig) -> None:
    """A legend under the plot, so a phone's narrow screen keeps the whole width for the data."""
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.18, "xanchor": "left", "x": 0})


def length_accuracy_figure(variants: dict[str, dict], bucket_names: dict[str, str]):
    """IMDB test accuracy by review length, one bar per variant in each length group, with ± half the spread over
    seeds. `variants`: results.json's "variants"; `bucket_names`: axis label per bucket (short, medium, long)."""
    go = _figure()
    fig = go.Figure()
    for name, variant in variants.items():
        stats = [variant["imdb_accuracy_by_length"].get(bucket) for bucket in bucket_names]
        fig.add_trace(go.Bar(
            name=escape(variant["title"]),
            x=list(bucket_names.values()),
            y=[None if s is None else 100 * s["mean"] for s in stats],
            error_y={"type": "data", "array": [_half_spread(s, 100) for s in stats], "thickness": 1},
            marker={"color": VARIANT_COLOURS.get(name)},
            hovertemplate=escape(variant["title"]) + "<br>%{x}: %{y:.1f}%<extra></extra>",
        ))
    fig.update_yaxes(title_text="IMDB test accuracy (%)", range=[0, 100])
    fig.add_hline(y=50, line={"dash": "dot", "color": "#9ca3af"}, annotation_text="chance",
                  annotation_position="bottom right")
    _layout(fig, "Accuracy by review length (IMDB test reviews)", 420)
    fig.update_layout(barmode="group")
    _bottom_legend(fig)
    return fig


def speed_figure(variants: dict[str, dict]):
    """Training tokens per second per variant (± half the spread over seeds), first variant on top."""
    go = _figure()
    names = list(variants)
    titles = [escape(variants[n]["title"]) for n in names]
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
    fig.update_xaxes(title_text="training tokens per second (more is faster)")
    _layout(fig, "Training speed", int(120 + 34 * len(names)))
    fig.update_layout(showlegend=False)
    return fig


def gradient_figure(curves: dict[str, dict]):
    """‖∂ logit / ∂ embedding_t‖ against the token's distance from the end, log scale, one line per variant.
    `curves`: {variant name: {"title", "tokens", "norms"}} in reading order. A norm of exactly 0 (underflow) has
    no place on a log axis and leaves a gap."""
    go = _figure()
    fig = go.Figure()
    for name, curve in curves.items():
        tokens, norms = curve["tokens"], curve["norms"]
        distances = list(range(len(norms) - 1, -1, -1))  # the last token read is 0 tokens from the end
        fig.add_trace(go.Scatter(
            name=escape(curve["title"]),
            x=distances,
            y=[n if n > 0 else None for n in norms],
            mode="lines+markers" if len(norms) <= 80 else "lines",
            line={"color": VARIANT_COLOURS.get(name), "width": 2},
            marker={"size": 5},
            text=[token_text(t) for t in tokens],
            hovertemplate=escape(curve["title"]) + "<br>%{text}, %{x} tokens from the end"
                          "<br>‖∂ logit / ∂ embedding‖ = %{y:.3g}<extra></extra>",
        ))
    fig.update_xaxes(title_text="distance from the end of the text (tokens)", autorange="reversed")
    fig.update_yaxes(type="log", title_text="‖∂ logit / ∂ embedding‖ (log scale)", exponentformat="power")
    _layout(fig, "The vanishing gradient: how much each token can still move the decision", 420)
    _bottom_legend(fig)
    return fig
