"""The unit atlas on the page: reads a checkpoint's atlas.json and turns it into the inspector's table and lines.

`python -m seqdemo.experiments.atlas` writes atlas.json into each checkpoint folder (the web never imports the
experiments layer; it reads the file). Its "properties" name what units track, scored on held-out text against a
control; its "forget_gate" measures how much memory each layer's forget gates keep. Layers are counted from 0 here,
as the inspector's layer choice counts them. Text from the file reaches Markdown only through `md`; the table's
cells are plain text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from seqdemo.web.presentation import md, table

ATLAS_FILE = "atlas.json"
COMMAND = "python -m seqdemo.experiments.atlas --kinds {kind}"
SHIPPED = ("sentiment", "nextword")  # the checkpoints the atlas command scores
HEADERS = ["unit", "where", "tracks", "how well"]
UNITS_PER_PROPERTY = 3  # a phone-sized table: the strongest few units of each property
WHERE = re.compile(r"layer (\d+)(?: · (forward|backward))?$")
DROPS = "Most units here drop most of their memory at every word: the belt is mostly rewritten, not carried."
KEEPS = "Most units here carry most of their memory on to the next word, as the conveyor belt story tells."
SIDES = {  # what the sign of a unit's score means, per measure
    "AUC": {"+": "higher there", "-": "lower there"},
    "Spearman": {"+": "rises with it", "-": "falls as it grows"},
    "probe accuracy": {"+": "higher in positive texts", "-": "higher in negative texts"},
}


def read_atlas(pipeline) -> tuple[dict | None, str]:
    """The atlas of the folder `pipeline` was loaded from, and "" (or None and one line saying why there is none).
    A file the atlas run is still writing reads as unreadable, not as an error of the page."""
    folder = getattr(pipeline, "folder", None)
    kind = getattr(pipeline, "kind", "")
    if folder is None or not (Path(folder) / ATLAS_FILE).is_file():
        if kind in SHIPPED:
            return None, (f"No unit atlas for this model yet: `{COMMAND.format(kind=kind)}` writes one into its "
                          "checkpoint folder.")
        return None, "No unit atlas for this model: the atlas covers the two main models (Sentiment, Next word)."
    try:
        atlas = json.loads((Path(folder) / ATLAS_FILE).read_text())
    except (OSError, ValueError):
        atlas = None
    if not isinstance(atlas, dict) or not isinstance(atlas.get("properties"), list):
        return None, (f"This model's unit atlas could not be read: `{COMMAND.format(kind=kind or '...')}` writes it "
                      "again.")
    return atlas, ""


def where(layer: int, direction: str, bidirectional: bool) -> str:
    """A layer and direction as the table shows them (and `picked` reads them back)."""
    return f"layer {layer}" + (f" · {direction}" if bidirectional else "")


def picked(row: list) -> tuple[int, str, str] | None:
    """The (layer, direction, unit) of a clicked table row, or None for a row that names no unit (a finding)."""
    unit, place = str(row[0]).strip(), WHERE.match(str(row[1]).strip()) if len(row) > 1 else None
    if not unit.isdigit() or place is None:
        return None
    return int(place.group(1)), place.group(2) or "forward", unit


def _count(number) -> str:
    return f"{number:,}" if isinstance(number, int) else str(number)


def _held_out(prop: dict, atlas: dict) -> str:
    """What a score was measured on: the texts for a per-text probe, the sentences (and tokens) otherwise."""
    text = atlas.get("text", {}) if isinstance(atlas.get("text"), dict) else {}
    if prop.get("measure") == "probe accuracy":
        return f"{_count(prop.get('n', text.get('texts', '?')))} held-out texts"
    sentences = text.get("sentences")
    tokens = f" ({_count(prop['n'])} tokens)" if "n" in prop else ""
    return (f"{_count(sentences)} held-out sentences{tokens}" if sentences is not None
            else f"{_count(prop.get('n', '?'))} held-out tokens")


def _how_well(prop: dict, unit: dict, atlas: dict) -> str:
    measure = str(prop.get("measure", unit.get("measure", "score")))
    line = f"{measure} {float(unit['score']):.2f} on {_held_out(prop, atlas)}"
    if "best_control" in prop:
        line += f"; control {float(prop['best_control']):.2f}"
    if "chance" in prop:
        line += f"; chance {float(prop['chance']):.2f}"
    return line


def _tracks(prop: dict, sign: str) -> str:
    side = SIDES.get(str(prop.get("measure")), {}).get(sign)
    return f"{prop.get('description', prop.get('property', '?'))}" + (f" ({side})" if side else "")


def property_rows(prop: dict, atlas: dict, bidirectional: bool) -> list[list]:
    """One property's rows: its strongest distinct units that clear the bar, or one row saying none does. The
    atlas lists units strongest first, so the first `units_clearing_bar` of them are the ones that clear it."""
    clearing = int(prop.get("units_clearing_bar", 0) or 0)
    rows, seen = [], set()
    for unit in prop.get("best_units", [])[:clearing]:
        key = (unit["layer"], unit["direction"], unit["unit"])
        if key in seen:  # the same unit's h and c: one row, its stronger value (listed first)
            continue
        seen.add(key)
        rows.append([str(unit["unit"]), where(int(unit["layer"]), str(unit["direction"]), bidirectional),
                     _tracks(prop, unit.get("sign", "")), _how_well(prop, unit, atlas)])
    if not rows:
        finding = prop.get("finding") or "no unit clears the bar"
        return [["none", "—", str(prop.get("description", prop.get("property", "?"))), str(finding)]]
    return rows[:UNITS_PER_PROPERTY]


def atlas_table(atlas: dict | None, bidirectional: bool) -> dict:
    """The inspector's atlas table (seqdemo.web.presentation.table): every property, its units or its finding."""
    rows = [] if atlas is None else [row for prop in atlas["properties"] if isinstance(prop, dict)
                                     for row in property_rows(prop, atlas, bidirectional)]
    return table(HEADERS, rows)


def forget_fact(atlas: dict | None, layer, direction: str, bidirectional: bool) -> str:
    """The measured forget-gate fact for one layer and direction, as Markdown ("" when the atlas has none)."""
    try:
        layer = int(layer)
    except (TypeError, ValueError):
        return ""
    if atlas is None:
        return ""
    direction = direction if bidirectional else "forward"
    for entry in atlas.get("forget_gate", []):
        if not isinstance(entry, dict) or entry.get("layer") != layer or entry.get("direction") != direction:
            continue
        share, mean_f = entry.get("share_units_keep_over_half_per_word"), entry.get("mean_forget_per_token")
        if not isinstance(share, (int, float)) or not isinstance(mean_f, (int, float)):
            return md(f"Measured on held-out text: {entry.get('sentence', '')}")
        # Built from the numbers, not the file's sentence: that one counts layers from 1, the page from 0.
        return md(f"Measured on held-out text: in {where(layer, direction, bidirectional)}, {share:.0%} of "
                  f"units keep more than half their memory from one word to the next; mean forget gate "
                  f"{mean_f:.2f}. {KEEPS if share >= 0.5 else DROPS}")
    return ""
