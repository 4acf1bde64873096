"""The unit atlas in the Gate inspector: its table, its row clicks, its missing-file line, its forget-gate fact.

Every atlas here is a small atlas.json written by the test (never the shipped file), so each expected row and
sentence is worked out by hand from the numbers the test wrote.
"""

from __future__ import annotations

import json

import gradio as gr
import pytest
import torch
from conftest import tiny_pipelines

from seqdemo.inference.generation import NextWordPipeline
from seqdemo.inference.sentiment import SentimentPipeline
from seqdemo.web import atlas_view
from seqdemo.web.exports import ExportStore
from seqdemo.web.inspector_tab import InspectorHandlers
from seqdemo.web.page import build_demo

HOSTILE = '<img src=x onerror=alert(1)> **bold** [link](http://x)'


def unit(layer, direction, number, value, score, sign="+"):
    return {"layer": layer, "direction": direction, "unit": number, "value": value, "measure": "AUC",
            "score": score, "sign": sign, "control": 0.5, "n": 900}


def forget(layer, direction, share, mean_f):
    return {"layer": layer, "direction": direction, "share_units_keep_over_half_per_word": share,
            "mean_forget_per_token": mean_f, "sentence": "counted from 1, not shown"}


SENTIMENT_ATLAS = {
    "text": {"sentences": 1198, "texts": 634},
    "properties": [
        # three (unit, value) pairs clear the bar: unit 7's c and h (one row) and unit 3; unit 5 does not
        {"property": "negation_scope", "description": "inside a negation", "measure": "AUC", "n": 28028,
         "units_clearing_bar": 3, "best_control": 0.5487,
         "best_units": [unit(1, "backward", 7, "c", 0.93, "-"), unit(1, "backward", 7, "h", 0.91, "-"),
                        unit(0, "forward", 3, "c", 0.88), unit(0, "forward", 5, "c", 0.70)]},
        {"property": "position_in_sentence", "description": HOSTILE, "measure": "Spearman", "n": 28028,
         "units_clearing_bar": 0, "best_control": 0.04, "best_units": [unit(1, "forward", 2, "c", 0.38)],
         "finding": "no unit clears the bar: the best Spearman is 0.38"},
    ],
    "forget_gate": [forget(0, "forward", 0.0117, 0.2401), forget(0, "backward", 0.0039, 0.1647),
                    forget(1, "forward", 0.127, 0.3613), forget(1, "backward", 0.1738, 0.3456)],
}
NEXTWORD_ATLAS = {"text": {"sentences": 10}, "properties": [],
                  "forget_gate": [forget(0, "forward", 0.62, 0.71)]}


@pytest.fixture
def handlers(tmp_path, tiny_tokenizer, tiny_sentiment, tiny_nextword):
    """Inspector handlers around the tiny models, each loaded from a folder of its own holding the test's atlas."""
    for kind, atlas in (("sentiment", SENTIMENT_ATLAS), ("nextword", NEXTWORD_ATLAS)):
        (tmp_path / kind).mkdir()
        (tmp_path / kind / "atlas.json").write_text(json.dumps(atlas))
    cpu = torch.device("cpu")
    models = {"sentiment": SentimentPipeline(tiny_sentiment, tiny_tokenizer, cpu, source="test",
                                             folder=tmp_path / "sentiment"),
              "nextword": NextWordPipeline(tiny_nextword, tiny_tokenizer, cpu, source="test",
                                           folder=tmp_path / "nextword")}
    return InspectorHandlers(models, ExportStore(tmp_path / "exports"))


def test_table_rows_come_from_the_atlas_file(handlers):
    table, note = handlers.atlas("sentiment")
    assert table["visible"] is True and "Click a row" in note
    rows = table["value"]["data"]
    assert table["value"]["headers"] == ["unit", "where", "tracks", "how well"]
    assert [row[:2] for row in rows[:2]] == [["7", "layer 1 · backward"], ["3", "layer 0 · forward"]]
    assert rows[0][2] == "inside a negation (lower there)" and rows[1][2] == "inside a negation (higher there)"
    assert rows[0][3] == "AUC 0.93 on 1,198 held-out sentences (28,028 tokens); control 0.55"
    # the property no unit clears is listed as a finding, its description as plain text for a text-only cell
    assert rows[2] == ["none", "—", HOSTILE, "no unit clears the bar: the best Spearman is 0.38"]
    assert len(rows) == 3


def test_clicking_a_row_sets_the_unit_chart_controls(handlers):
    rows = handlers.atlas("sentiment")[0]["value"]["data"]
    click = gr.SelectData(None, {"index": [0, 2], "value": rows[0][2], "row_value": rows[0], "selected": True})
    assert handlers.atlas_unit(click) == (1, "backward", "7")
    finding = gr.SelectData(None, {"index": [2, 0], "value": "none", "row_value": rows[2], "selected": True})
    assert all(isinstance(update, dict) and update.get("__type__") == "update"
               for update in handlers.atlas_unit(finding))  # gr.skip(): a finding names no unit


def test_a_row_click_runs_the_unit_chart(tmp_path, tiny_tokenizer, tiny_sentiment, tiny_nextword):
    """On the page, the click's outputs are the inspector's layer, direction and unit, and the inspector's own
    handler runs next with them."""
    sentiment, nextword = tiny_pipelines(tiny_tokenizer, tiny_sentiment, tiny_nextword)
    demo = build_demo(sentiment, nextword, compare_folder=tmp_path)
    config = demo.get_config_file()
    ids = {c.get("props", {}).get("elem_id"): c["id"] for c in config["components"]}
    click = next(d for d in config["dependencies"] if (ids["gates-atlas"], "select") in map(tuple, d["targets"]))
    assert click["outputs"] == [ids["gates-layer"], ids["gates-direction"], ids["gates-unit"]]
    after = [demo.fns[d["id"]].fn for d in config["dependencies"] if d["trigger_after"] == click["id"]]
    assert "inspect_gates" in [getattr(fn, "__name__", "") for fn in after]


def test_a_model_without_an_atlas_says_so_in_one_line(handlers, tiny_tokenizer, tiny_sentiment, tmp_path):
    handlers.models["sentiment"] = SentimentPipeline(tiny_sentiment, tiny_tokenizer, torch.device("cpu"),
                                                     source="test", folder=None)
    table, note = handlers.atlas("sentiment")
    assert table["visible"] is False
    assert note == ("No unit atlas for this model yet: `python -m seqdemo.experiments.atlas --kinds sentiment` "
                    "writes one into its checkpoint folder.")
    assert handlers.forget_fact("sentiment", 1, "forward") == ""
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "atlas.json").write_text('{"properties": [')  # a file still being written
    handlers.models["sentiment"].folder = tmp_path / "broken"
    assert "could not be read" in handlers.atlas("sentiment")[1] and "\n" not in handlers.atlas("sentiment")[1]


def test_the_forget_fact_follows_model_and_layer(handlers):
    assert handlers.forget_fact("sentiment", 1, "backward") == (
        r"Measured on held\-out text: in layer 1 · backward, 17% of units keep more than half their memory from "
        r"one word to the next; mean forget gate 0\.35\. Most units here drop most of their memory at every word: "
        r"the belt is mostly rewritten, not carried\.")
    assert "layer 0 · forward, 1%" in handlers.forget_fact("sentiment", 0, "forward")
    assert "forget gate 0\\.24" in handlers.forget_fact("sentiment", 0, "forward")
    # the one-directional model: no direction named, its own numbers, and a layer it was not measured in is blank
    fact = handlers.forget_fact("nextword", 0, "forward")
    assert "in layer 0, 62% of units" in fact and "0\\.71" in fact and "carry most of their memory" in fact
    assert handlers.forget_fact("nextword", 2, "forward") == ""


def test_text_from_the_file_is_escaped_before_markdown(handlers, tmp_path):
    atlas = {"properties": [], "forget_gate": [{"layer": 0, "direction": "forward", "sentence": HOSTILE}]}
    (tmp_path / "nextword" / "atlas.json").write_text(json.dumps(atlas))
    fact = handlers.forget_fact("nextword", 0, "forward")
    assert HOSTILE not in fact  # every character Markdown or HTML would act on comes backslashed
    assert r"\<img src=x onerror=alert\(1\)\> \*\*bold\*\* \[link\]\(http://x\)" in fact
    assert atlas_view.picked(["7", HOSTILE]) is None
