"""The Gate inspector tab: every gate of every unit at every word, one unit followed, the units that notice a word.

Endpoints: /inspect (text, kind, layer, direction, signal, order, unit, units, view), /find_units (text, kind,
layer, direction, marked, measure), /export_trace (text, kind, fmt).
"""

from __future__ import annotations

import functools

import gradio as gr
import torch

from seqdemo.core import gates, units
from seqdemo.core import validate as valid
from seqdemo.core.validate import InputError
from seqdemo.web import atlas_view, plots
from seqdemo.web import presentation as show
from seqdemo.web.endpoints import PRIVATE, Wiring
from seqdemo.web.exports import ExportRefused, ExportStore
from seqdemo.web.limits import INSPECT_TOKENS, MAX_CHARS
from seqdemo.web.page_parts import EXAMPLES, caption, error_box, on_example

MODEL_CHOICES = [("Sentiment: bidirectional LSTM classifier", "sentiment"), ("Next word: 3-layer LSTM", "nextword")]
UNIT_CHOICES = [(f"top {plots.TOP_UNITS}", "top"), ("all units", "all")]
VIEW_CHOICES = [("words", "words"), ("pieces (what the LSTM reads)", "pieces")]
MEASURE_CHOICES = [("memory jumps (an LSTM's c, a GRU's h)", "memory"),
                   ("gates move (f dips or i rises; a GRU's z dips)", "gates")]
GATE_LEGEND = "\n".join(f"- **{s}**: {plots.SIGNAL_LINES[s]}" for s in gates.LSTM_VALUES)
FOUND_HINT = "Click a row to see that unit's line chart."
ATLAS_NOTE = ("Units found automatically: each is scored on held-out text the model never trained on, and listed only "
              "when it clears a stated bar and beats the best score any unit reaches against shuffled labels "
              "(the control). Where no unit clears the bar, the row says so: that is a finding too. **Click a row** "
              "to see that unit's line chart on your text.")
# After a row click, bring the unit's chart into view (on a phone it is several screens below the table).
SCROLL_TO_CHART = "() => document.getElementById('gates-unit-chart')?.scrollIntoView({behavior: 'smooth'})"


def _values(choices) -> list[str]:
    return [value for _, value in choices]


class InspectorHandlers:
    """What the tab's controls do, around the models it offers (the two main ones and the comparison's GRUs)."""

    def __init__(self, models: dict, exports: ExportStore):
        self.models, self.exports = models, exports
        # The inspector's controls redraw from the same text: trace it once. A trace of 256 tokens holds every
        # value of every layer and direction (about 13 MB for the 2-layer BiLSTM at 512 units): keep a few.
        self._cached_trace = functools.lru_cache(maxsize=4)(self._trace)

    def _trace(self, kind: str, text: str) -> gates.TextTrace:
        return self.models[kind].gate_trace(text, max_tokens=INSPECT_TOKENS)

    def gate_trace(self, kind: str, text: str) -> tuple[gates.TextTrace, bool]:
        kind = valid.choice(kind, "model", self.models)
        text, clipped = valid.clip(valid.text(text), "head", MAX_CHARS)
        return self._cached_trace(kind, text), clipped

    def _layer_values(self, text: str, kind: str, layer, direction: str):
        traced, clipped = self.gate_trace(kind, text)
        rnn = self.models[kind].model.rnn
        layer, d = valid.layer_and_direction(layer, direction, rnn.num_layers, rnn.bidirectional, gates.DIRECTIONS)
        where = f"layer {layer}" + (f", {direction}" if rnn.bidirectional else "")
        return traced, clipped, layer, d, where

    def _order(self, kind: str, traced, matrix, signal: str, order: str, layer: int, d: int):
        """The units in the chosen order, the order in words, and the contributions when that is the order."""
        pipe = self.models[kind]
        if order != "contribution":
            what = "unit index" if order == "index" else f"variance of {signal} over the text"
            return units.order(matrix, order), what, None
        if pipe.kind != "sentiment":
            raise InputError("Contribution to the decision exists for the classifier only: the next-word model "
                             "makes no single decision.")
        last = pipe.model.rnn.num_layers - 1
        if layer != last:
            raise InputError(f"Contribution to the decision exists for the last layer only (layer {last}): the "
                             "classifier reads that layer.")
        contributions = pipe.unit_contributions(traced.ids, d)
        what = f"contribution to the decision “{show.md(contributions.decision)}”"
        return contributions.order, what, contributions

    def inspect_gates(self, text: str, kind: str = "sentiment", layer: float = 0, direction: str = "forward",
                      signal: str = "f", order: str = "variance", unit: str | int | None = None,
                      units: str = "top", view: str = "words"):
        """Heatmap (words × the top or all units), the text coloured by one unit, that unit's line chart,
        the saturation table, the details."""
        traced, clipped, layer, d, where = self._layer_values(text, kind, layer, direction)
        pipe, rnn = self.models[kind], self.models[kind].model.rnn
        values = traced.layers[(layer, d)]
        signal = valid.choice(signal, "signal", values)
        order = valid.choice(order, "order", _values(show.ORDER_CHOICES))
        units = valid.choice(units, "units", _values(UNIT_CHOICES))
        view = valid.choice(view, "view", _values(VIEW_CHOICES))
        matrix = values[signal].float()
        order, order_text, contributions = self._order(kind, traced, matrix, signal, order, layer, d)
        unit = valid.unit(unit, order, matrix.shape[1])
        rows = show.inspector_steps(pipe.tokenizer, traced, view)
        labels = [show.shown(row.text) for row in rows]
        shown_units = order if units == "all" else order[:plots.TOP_UNITS]
        by_row = show.step_values(matrix, rows, signal)
        heatmap = plots.heatmap_figure(by_row.numpy(), labels, shown_units, signal, where, selected_unit=unit)
        unit_text = show.unit_chips(rows, by_row[:, unit], signal)
        lines = {name: show.step_values(v.float(), rows, name)[:, unit].tolist() for name, v in values.items()
                 if name not in ("g", "n")}
        chart = plots.unit_figure(lines, labels, unit, where)
        notes = show.inspector_notes(unit, order, order_text, where, view, contributions, rnn.bidirectional,
                                     pipe.start_id is not None, traced.truncated or clipped, len(traced.ids))
        return heatmap, unit_text, chart, show.saturation_table(traced.layers, layer, d), notes

    def find_units(self, text: str, kind: str = "sentiment", layer: float = 0, direction: str = "forward",
                   marked: str = "", measure: str = "memory"):
        """The units of the chosen layer and direction that change most at the marked words, ranked."""
        measure = valid.choice(measure, "measure", _values(MEASURE_CHOICES))
        traced, _, layer, d, where = self._layer_values(text, kind, layer, direction)
        rows = show.inspector_steps(self.models[kind].tokenizer, traced, "words")
        steps = show.marked_steps(rows, valid.text(marked, "marked words"))
        change = units.marked_change(traced.layers[(layer, d)], steps, measure)
        what = "memory jumps most" if measure == "memory" else "gates move most"
        return show.found_table(change), (f"In {where}, these units' {what} at the marked words, strongest first "
                                          f"(unit {change.order[0]} on top). {FOUND_HINT}")

    def refresh_found(self, text: str, kind: str = "sentiment", layer: float = 0, direction: str = "forward",
                      marked: str = "", measure: str = "memory"):
        """find_units for a new text or model: when the marked words are not in the new text, the table clears
        and one line says why (the visitor did not touch the word box, so it is no error of theirs)."""
        try:
            return self.find_units(text, kind, layer, direction, marked, measure)
        except InputError as error:
            if "not in the text" not in str(error) and "Type a word" not in str(error):
                raise
        headers = show.FIND_HEADERS["c" if isinstance(self.models[kind].model.rnn, torch.nn.LSTM) else "h"]
        return show.table(headers, []), ("The marked words are not in this text: type a word from it in the box "
                                          "above and press Enter to find the units that notice it.")

    @staticmethod
    def found_unit(evt: gr.SelectData) -> str:
        """The unit of the row clicked in the found-units table (its first cell)."""
        return str(evt.row_value[0])

    def atlas_parts(self, kind: str = "sentiment") -> tuple[dict, bool, str]:
        """The atlas table of the chosen model, whether it has one, and the line above the table."""
        pipe = self.models.get(kind)
        atlas, missing = atlas_view.read_atlas(pipe)
        bidirectional = bool(pipe is not None and pipe.model.rnn.bidirectional)
        return atlas_view.atlas_table(atlas, bidirectional), atlas is not None, missing or ATLAS_NOTE

    def atlas(self, kind: str = "sentiment"):
        """The atlas table (hidden when the model has none) and the line above it."""
        rows, found, note = self.atlas_parts(kind)
        return gr.update(value=rows, visible=found), note

    def forget_fact(self, kind: str = "sentiment", layer=0, direction: str = "forward") -> str:
        """The measured forget-gate fact for the chosen model, layer and direction ("" when it has no atlas)."""
        pipe = self.models.get(kind)
        if pipe is None:
            return ""
        atlas, _ = atlas_view.read_atlas(pipe)
        return atlas_view.forget_fact(atlas, layer, direction, pipe.model.rnn.bidirectional)

    @staticmethod
    def atlas_unit(evt: gr.SelectData):
        """The layer, direction and unit of the atlas row clicked; a row that names no unit changes nothing."""
        picked = atlas_view.picked(list(evt.row_value or []))
        if picked is None:
            return gr.skip(), gr.skip(), gr.skip()
        layer, direction, unit = picked
        return layer, direction, unit

    def export(self, text: str, kind: str = "sentiment", fmt: str = "json", request: gr.Request = None):
        """A file with every gate, cell and hidden value of the traced text (seqdemo.core.gates.to_json / to_npz),
        counted against the visitor's share of the store (gradio's session hash names the visitor)."""
        traced, _ = self.gate_trace(kind, text)
        visitor = getattr(request, "session_hash", None)
        try:
            return str(self.exports.write(traced, f"seqdemo-gates-{kind}.{fmt}", fmt, visitor=visitor))
        except ExportRefused as refused:  # too large, or the store is full: the visitor's to act on
            raise InputError(str(refused)) from None

    def controls(self, kind: str, signal: str | None = None, order: str | None = None):
        """Updates for the layer, direction, signal and order choices when the model changes (kept when valid)."""
        c = show.inspector_choices(self.models.get(kind, self.models["sentiment"]))
        return (
            gr.update(choices=c["layers"], value=c["last_layer"]),
            gr.update(choices=list(gates.DIRECTIONS), value="forward", visible=c["bidirectional"]),
            gr.update(choices=c["signals"], value=signal if signal in _values(c["signals"]) else c["signal"]),
            gr.update(choices=c["orders"], value=order if order in _values(c["orders"]) else "variance"),
        )


def _controls(c: dict) -> dict:
    """The radios and boxes that choose what is shown, for the model the page opens on (`c`: inspector_choices)."""
    with gr.Row():
        layer = gr.Radio(c["layers"], value=c["last_layer"], label="Layer (0 reads the words)", elem_id="gates-layer")
        direction = gr.Radio(list(gates.DIRECTIONS), value="forward", label="Direction", visible=c["bidirectional"],
                             elem_id="gates-direction")
        signal = gr.Radio(c["signals"], value=c["signal"], label="Signal", elem_id="gates-signal")
    with gr.Row():
        order = gr.Radio(c["orders"], value="variance", label="Order the units by", elem_id="gates-order")
        shown = gr.Radio(UNIT_CHOICES, value="top", label="Units shown", elem_id="gates-units")
        view = gr.Radio(VIEW_CHOICES, value="words", label="Rows", elem_id="gates-view")
        # A textbox, not a gr.Number: gradio 6's number box cannot stay blank (it shows 0).
        unit = gr.Textbox(value="", max_lines=1, elem_id="gates-unit",
                          label="Unit to follow (blank = the first of the order)",
                          placeholder="a unit number, or blank")
    return {"layer": layer, "direction": direction, "signal": signal, "order": order, "units": shown, "view": view, "unit": unit}


def _views() -> dict:
    error = error_box("gates-error")
    heatmap = gr.Plot(label="Words × units", elem_id="gates-heatmap")
    caption("Each column is one unit (its number below), each row a word. A column that changes colour at one word "
            "belongs to a unit that reacts to it: type its number in the unit box to follow it.")
    unit_text = gr.HTML(label="The text coloured by the followed unit", elem_id="gates-unit-text")
    caption("The text coloured by the followed unit's signal: the words where it lights up are the ones it "
            "responds to.")
    chart = gr.Plot(label="The followed unit over the text", elem_id="gates-unit-chart")
    caption("The conveyor belt: the black line is the unit's memory c. ✕ marks a word where the forget gate fell "
            "below 0.5 (most of the belt was dropped), ▲ one where the input gate rose above 0.5 (something new "
            "was written). A GRU has no separate belt: its memory is h, which the update gate z keeps.")
    return {"error": error, "heatmap": heatmap, "unit_text": unit_text, "chart": chart}


def _atlas(h: InspectorHandlers) -> dict:
    """The section the inspector opens on: the units of the chosen model that track something nameable."""
    gr.Markdown("### Units that track something you can name")
    rows, found, note = h.atlas_parts("sentiment")
    note = gr.Markdown(note, elem_id="gates-atlas-note")
    # Taller than gradio's 500 px: the shipped atlas (15 rows, wrapped) shows whole at 1280 px, no scrollbar inside.
    table = gr.Dataframe(rows, label="Unit atlas", interactive=False, wrap=True, visible=found, max_height=1000,
                         elem_id="gates-atlas")
    return {"note": note, "table": table}


def _finder() -> dict:
    gr.Markdown("### Find the units that notice a word")
    with gr.Row():
        marked = gr.Textbox(value="not", max_lines=1, label="Word or words from the text (Enter finds)",
                            elem_id="gates-marked")
        measure = gr.Radio(MEASURE_CHOICES, value="memory", label="Rank units by", elem_id="gates-measure")
        find = gr.Button("Find units", elem_id="gates-find-button")
    error = error_box("gates-find-error")
    note = gr.Markdown(label="What the table shows", elem_id="gates-found-note")
    found = gr.Dataframe(label="Units that notice the marked words", interactive=False, wrap=True,
                         elem_id="gates-found")
    return {"marked": marked, "measure": measure, "find": find, "error": error, "note": note, "found": found}


def _details_and_download() -> dict:
    with gr.Accordion("Details: the exact numbers", open=False):
        notes = gr.Markdown(label="Details", elem_classes="seqdemo-notes", elem_id="gates-notes")
        saturation = gr.Dataframe(
            label="Saturation in the chosen layer and direction (and in all of them): the share of tokens × units "
            "where each gate is shut (< 0.1), open (> 0.9) or in between", interactive=False, wrap=True,
            elem_id="gates-saturation")
    with gr.Accordion("Download every value of this trace", open=False):
        with gr.Row():
            fmt = gr.Radio([("JSON", "json"), ("NumPy .npz", "npz")], value="npz", label="Format")
            export = gr.Button("Prepare download", elem_id="gates-export-button")
            file = gr.File(label="Traces", elem_id="gates-file", height=90)
        error = error_box("gates-export-error")
    return {"notes": notes, "saturation": saturation, "fmt": fmt, "export": export, "file": file, "error": error}


def inspector_tab(w: Wiring, h: InspectorHandlers, model_choices: list[tuple[str, str]]) -> None:
    gr.Markdown("Every gate of every unit at every word, computed from the model's own weights. Start with a "
                "unit from the **atlas** below, or **find the units** that notice a word of your choice.")
    first = show.inspector_choices(h.models["sentiment"])
    forget = gr.Markdown(h.forget_fact("sentiment", first["last_layer"], "forward"), elem_id="gates-forget")
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
    a = _atlas(h)
    c = _controls(first)
    v, f, d = _views(), _finder(), _details_and_download()
    c = dict(text=text, model=model, button=button, examples=examples, **c)
    _wire_atlas(w, h, c, dict(forget=forget, **a), *_wire(w, h, c, v, f, d))


def _wire(w: Wiring, h: InspectorHandlers, c: dict, v: dict, f: dict, d: dict) -> None:
    """The inspector's events: /inspect on every control that changes the view, /find_units on the finder's
    controls (a new text or model refreshes the finder, or clears it with one line), /export_trace."""
    text, model = c["text"], c["model"]
    inputs = [c[name] for name in ("text", "model", "layer", "direction", "signal", "order", "unit", "units", "view")]
    outputs = [v["heatmap"], v["unit_text"], v["chart"], d["saturation"], d["notes"]]
    find_inputs = [text, model, c["layer"], c["direction"], f["marked"], f["measure"]]
    found = [f["found"], f["note"]]
    redraw = [c[name].input for name in ("layer", "direction", "signal", "order", "units", "view")]
    inspect, _ = w.event(h.inspect_gates, [c["button"].click, text.submit, *redraw, c["unit"].submit,
                                           c["unit"].blur], inputs, outputs, v["error"], api_name="inspect",
                         on_load=True, trigger_mode="always_last")
    w.event(h.find_units, [f["find"].click, f["marked"].submit, f["measure"].input, c["layer"].input,
                           c["direction"].input], find_inputs, found, f["error"], api_name="find_units")
    refresh, _ = w.event(h.refresh_found, [c["button"].click, text.submit], find_inputs, found, f["error"],
                         on_load=True)
    picked = f["found"].select(h.found_unit, None, c["unit"], **PRIVATE)
    w.chain(picked, inspect, inputs, outputs, v["error"])
    # No preprocessing: a second model switch can arrive while the page still shows the first one's signal, which
    # gradio would refuse against the new model's choices; controls keeps a signal only where it is valid.
    switched = model.input(h.controls, [model, c["signal"], c["order"]],
                           [c["layer"], c["direction"], c["signal"], c["order"]], preprocess=False, **PRIVATE)
    w.chain(w.chain(switched, inspect, inputs, outputs, v["error"]), refresh, find_inputs, found, f["error"])
    on_example(w, c["examples"], inspect, inputs, outputs, v["error"])
    on_example(w, c["examples"], refresh, find_inputs, found, f["error"])
    # A download belongs to the text and model it was made from: a new one of either takes it away.
    for event in (text.change, model.change):
        event(None, None, d["file"], js="() => null", **PRIVATE)
    w.event(h.export, [d["export"].click], [text, model, d["fmt"]], [d["file"]], d["error"],
            api_name="export_trace")
    return switched, (inspect, inputs, outputs, v["error"]), (refresh, find_inputs, found, f["error"])


def _wire_atlas(w: Wiring, h: InspectorHandlers, c: dict, a: dict, switched, inspect: tuple, refresh: tuple):
    """The atlas follows the model; the forget-gate fact follows the model, layer and direction; a click on an
    atlas row sets the layer, direction and unit, then redraws the inspector (and the finder) for that unit."""
    where = [c["model"], c["layer"], c["direction"]]
    c["model"].input(h.atlas, c["model"], [a["table"], a["note"]], **PRIVATE)
    switched.then(h.forget_fact, where, a["forget"], **PRIVATE)  # once the layer choices are the new model's
    gr.on([c["layer"].input, c["direction"].input], h.forget_fact, where, a["forget"], **PRIVATE)
    picked = a["table"].select(h.atlas_unit, None, [c["layer"], c["direction"], c["unit"]], **PRIVATE)
    picked.then(h.forget_fact, where, a["forget"], **PRIVATE)
    w.chain(picked, *refresh)
    w.chain(picked, *inspect).then(None, None, None, js=SCROLL_TO_CHART, **PRIVATE)
