"""seqdemo.web.plots: the vanishing-gradient chart draws values too small for its log axis on a floor line instead of
leaving gaps, and every figure's title fits a phone's plot (390 px) with the toolbar cut to two buttons."""

from __future__ import annotations

import numpy as np
import pytest

from seqdemo.web import plots

FLOOR = 1e-10  # the chart's floor, as the page's caption states it


def test_values_below_the_floor_are_drawn_on_it_and_flagged():
    values, below = plots.floor_values([0.5, 0.0, 3e-11, 1e-10, 2e-10, float("nan")], FLOOR)
    assert values == [0.5, 1e-10, 1e-10, 1e-10, 2e-10, 1e-10]
    assert below == [False, True, True, False, False, True]


def test_the_gradient_chart_has_no_gaps_and_marks_the_floor():
    curves = {"rnn": {"title": "RNN (tanh)", "tokens": ["a", "b", "c", "d"], "norms": [0.0, 1e-20, 1e-3, 0.4]},
              "lstm": {"title": "LSTM", "tokens": ["a", "b", "c", "d"], "norms": [0.1, 0.2, 0.3, 0.4]}}
    figure = plots.gradient_figure(curves)
    lines = {trace.name: trace for trace in figure.data}
    assert set(lines) == {"RNN (tanh)", "RNN (tanh): below 1e-10", "LSTM"}
    rnn = lines["RNN (tanh)"]
    assert list(rnn.x) == [3, 2, 1, 0] and list(rnn.y) == [1e-10, 1e-10, 1e-3, 0.4]  # no None: no gap
    floor = lines["RNN (tanh): below 1e-10"]
    assert list(floor.x) == [3, 2] and list(floor.y) == [1e-10, 1e-10]
    assert floor.marker.symbol == "triangle-down" and floor.marker.color == rnn.line.color
    assert list(floor.customdata) == ["0 (underflow)", "1e-20"]  # the hover still tells the true value
    assert [shape.y0 for shape in figure.layout.shapes] == [1e-10]
    assert "below 1e-10" in figure.layout.annotations[0].text
    # Nothing below the floor: no floor line, no marker trace.
    figure = plots.gradient_figure({"lstm": curves["lstm"]})
    assert len(figure.data) == 1 and not figure.layout.shapes


def every_figure() -> dict:
    tokens = [f"token{i}" for i in range(6)]
    stat = {"mean": 0.8, "spread": 0.02, "n": 2}
    variants = {name: {"title": title, "imdb_accuracy_by_length": {"short": stat, "medium": stat, "long": stat},
                       "tokens_per_second": {"mean": 50000.0, "spread": 1000, "n": 2}}
                for name, title in (("lstm", "LSTM"), ("conv_bilstm", "Conv1d (stride 2) + BiLSTM"))}
    where = "Compare tab's GRU: 64 units · layer 1, forward"
    return {
        "trajectory": plots.trajectory_figure([(n, 0.5) for n in range(1, 7)], tokens,
                                              note="64 of 200 word ends, evenly spaced; each point exact"),
        "heatmap": plots.heatmap_figure(np.zeros((6, 8)), tokens, range(8), "f", where),
        "unit": plots.unit_figure({"c": [0.0] * 6, "f": [0.5] * 6, "i": [0.5] * 6}, tokens, 3, where),
        "length": plots.length_accuracy_figure(variants, {"short": "short (< 186 tokens)",
                                                          "medium": "medium (186–323 tokens)",
                                                          "long": "long (≥ 324 tokens)"}),
        "speed": plots.speed_figure(variants),
        "gradient": plots.gradient_figure({"lstm": {"title": "LSTM", "tokens": tokens, "norms": [0.1] * 6}}),
    }


@pytest.mark.parametrize("name", ["trajectory", "heatmap", "unit", "length", "speed", "gradient"])
def test_every_title_fits_a_phone_and_the_toolbar_keeps_two_buttons(name):
    figure = every_figure()[name]
    title = figure.layout.title.text
    for line in title.split("<br>"):
        plain = line.replace("<sup>", "").replace("</sup>", "")
        # 44 characters of 14 px type fit a 390 px screen's plot; a note in small type 1.4 times as many.
        assert len(plain) <= (61 if "<sup>" in line else 44), line
    assert {"zoom", "pan", "zoomin", "zoomout", "autoscale"} <= set(figure.layout.modebar.remove)
    # Each extra title line makes the figure taller by as much, so the data keep their height.
    extra = title.count("<br>")
    assert figure.layout.margin.t == 50 + 18 * extra
