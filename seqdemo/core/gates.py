"""Gate traces: every gate, cell and hidden value an nn.LSTM or nn.GRU computes, for every token, with no UI.

The equations are PyTorch's (the nn.LSTM and nn.GRU documentation), which follow the LSTM of Hochreiter &
Schmidhuber (1997, "Long Short-Term Memory") with the forget gate of Gers et al. (2000), and the GRU of Cho et
al. (2014). The summaries (saturated gates, units ranked by what they do) follow Karpathy, Johnson & Fei-Fei
(2015, "Visualizing and Understanding Recurrent Networks").

A trace is a dict keyed by (layer, direction), direction 0 reading forward and 1 backward, of dicts of tensors
(batch, time, hidden), batch first and in text order whatever the module's layout:
- LSTM: "i" input gate, "f" forget gate, "g" candidate, "o" output gate, "c" cell state, "h" hidden state;
- GRU: "r" reset gate, "z" update gate, "n" candidate, "h" hidden state.
Every trace starts from the zero state, as a module called without one does. Dropout is never applied.

Speed: a Python loop over time is several times slower than the fused kernels, so each layer's hidden sequence
comes from the library kernel itself (one single-layer call per layer), every gate of every step then comes
from two matrix products per layer and direction (the gates at step t only need x_t and h_{t-1}, both known),
and the one recurrence left, c_t = f_t * c_{t-1} + i_t * g_t, is a linear scan done in log2(time) steps.
"""

from __future__ import annotations

import functools
import threading
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

DIRECTIONS = ("forward", "backward")
LSTM_VALUES = ("i", "f", "g", "o", "c", "h")
GRU_VALUES = ("r", "z", "n", "h")

Trace = dict[tuple[int, int], dict[str, torch.Tensor]]


@torch.no_grad()
def trace(rnn: nn.LSTM | nn.GRU, x: torch.Tensor) -> Trace:
    """Every gate, cell and hidden value of `rnn` reading `x` (shaped as the module reads it: (time, features)
    unbatched, else per its batch_first), from the zero state. The tensors are on the module's device."""
    if not isinstance(rnn, (nn.LSTM, nn.GRU)):
        raise TypeError(f"trace reads an nn.LSTM or nn.GRU, not {type(rnn).__name__}")
    if getattr(rnn, "proj_size", 0) > 0:
        raise ValueError(
            "LSTMs with proj_size > 0 are not supported: their hidden state is a projection of o * tanh(c), "
            "so the gates would need the projection too"
        )
    if x.dim() == 2:  # unbatched, as nn.LSTM accepts it: a batch of one
        x = x.unsqueeze(0)
    elif x.dim() != 3:
        raise ValueError(f"x must be (time, features) or 3-D, not shaped {tuple(x.shape)}")
    elif not rnn.batch_first:
        x = x.transpose(0, 1)
    if x.shape[1] == 0:
        raise ValueError("x has no time steps: there is nothing to trace")

    step_values = _lstm_step_values if isinstance(rnn, nn.LSTM) else _gru_step_values
    hidden = rnn.hidden_size
    result: Trace = {}
    layer_input = x
    for layer in range(rnn.num_layers):
        weights = [_direction_weights(rnn, layer, direction) for direction in range(_directions(rnn))]
        outputs = _layer_outputs(rnn, layer_input, [w for ws in weights for w in ws if w is not None])
        for direction, direction_weights in enumerate(weights):
            h = outputs[..., direction * hidden : (direction + 1) * hidden]
            h_before = _previous_steps(h, reverse=direction == 1)
            result[(layer, direction)] = step_values(layer_input, h, h_before, *direction_weights, direction == 1)
        layer_input = outputs
    return result


def _directions(rnn: nn.LSTM | nn.GRU) -> int:
    return 2 if rnn.bidirectional else 1


def _direction_weights(rnn: nn.LSTM | nn.GRU, layer: int, direction: int) -> list[torch.Tensor | None]:
    """[w_ih, w_hh, b_ih, b_hh] of one layer and direction, the biases None when the module has none."""
    suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
    weights = [getattr(rnn, "weight_ih" + suffix), getattr(rnn, "weight_hh" + suffix)]
    biases = [getattr(rnn, "bias_ih" + suffix), getattr(rnn, "bias_hh" + suffix)] if rnn.bias else [None, None]
    return weights + biases


def _layer_outputs(
    rnn: nn.LSTM | nn.GRU, x: torch.Tensor, weights: list[torch.Tensor], bidirectional: bool | None = None
) -> torch.Tensor:
    """One layer's hidden sequence (batch, time, directions * hidden), computed by the same kernel the module uses:
    a one-layer module of the same kind called with this layer's weights (public API, no copy of the weights)."""
    bidirectional = rnn.bidirectional if bidirectional is None else bidirectional
    one_layer = _one_layer_module(type(rnn), weights[0].shape[1], rnn.hidden_size, rnn.bias, bidirectional,
                                  threading.get_ident())
    names = [name for name, _ in one_layer.named_parameters()]
    with warnings.catch_warnings():
        # cuDNN finds a deeper layer's weights inside the module's flat buffer but not at its start, so it copies
        # them (a few MB, once per call) and says so; the copy is all it costs.
        warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
        return functional_call(one_layer, dict(zip(names, weights)), (x,))[0]


@functools.lru_cache(maxsize=64)
def _one_layer_module(cell: type, input_size: int, hidden_size: int, bias: bool, bidirectional: bool,
                      thread: int) -> nn.Module:
    # On the meta device: it holds no weights of its own, only the layout the call fills in. One per thread:
    # functional_call swaps the weights in for the call's duration, so two threads must not share one.
    return cell(input_size, hidden_size, bias=bias, batch_first=True, bidirectional=bidirectional, device="meta")


def run_direction(rnn: nn.LSTM | nn.GRU | nn.RNN, layer: int, direction: int, x: torch.Tensor) -> torch.Tensor:
    """One direction of one layer of `rnn` reading x (batch, time, features) from its first step to its last,
    from the zero state, with that direction's weights: (batch, time, hidden). The backward direction reads
    x as given, so a caller flips each sequence first. Padding after a sequence's end never reaches its steps."""
    if getattr(rnn, "nonlinearity", "tanh") != "tanh" or getattr(rnn, "proj_size", 0) > 0:
        raise ValueError("run_direction reads LSTMs without projection, GRUs and tanh RNNs")
    weights = [w for w in _direction_weights(rnn, layer, direction) if w is not None]
    return _layer_outputs(rnn, x, weights, bidirectional=False)


def _previous_steps(h: torch.Tensor, reverse: bool) -> torch.Tensor:
    """h_{t-1} for every t in the direction's reading order: the zero state at its first step."""
    start = h.new_zeros(h[:, :1].shape)
    return torch.cat([h[:, 1:], start], 1) if reverse else torch.cat([start, h[:, :-1]], 1)


def _lstm_step_values(x, h, h_before, w_ih, w_hh, b_ih, b_hh, reverse: bool) -> dict[str, torch.Tensor]:
    pre = F.linear(x, w_ih, b_ih)
    pre += F.linear(h_before, w_hh, b_hh)
    i, f, g, o = pre.chunk(4, dim=-1)  # PyTorch's order
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c = _linear_scan(f, i * g, reverse)
    return {"i": i, "f": f, "g": g, "o": o, "c": c, "h": h}


def _gru_step_values(x, h, h_before, w_ih, w_hh, b_ih, b_hh, reverse: bool) -> dict[str, torch.Tensor]:
    from_input = F.linear(x, w_ih, b_ih).chunk(3, dim=-1)  # PyTorch's order: r, z, n
    from_hidden = F.linear(h_before, w_hh, b_hh).chunk(3, dim=-1)
    r = (from_input[0] + from_hidden[0]).sigmoid()
    z = (from_input[1] + from_hidden[1]).sigmoid()
    n = (from_input[2] + r * from_hidden[2]).tanh()  # the reset gate scales the hidden term, bias included
    return {"r": r, "z": z, "n": n, "h": h}


def _linear_scan(a: torch.Tensor, b: torch.Tensor, reverse: bool) -> torch.Tensor:
    """s_t = a_t * s_{t-1} + b_t along dim 1 from s = 0, by recursive doubling (Hillis & Steele 1986).

    After the round with stride k, position t holds the recurrence run over its last 2k steps; log2(time)
    whole-tensor rounds replace time small ones, which on a GPU are as many kernel launches."""
    if reverse:
        return _linear_scan(a.flip(1), b.flip(1), reverse=False).flip(1)
    factor, s = a.clone(), b.clone()
    stride = 1
    while stride < s.shape[1]:
        s[:, stride:] += factor[:, stride:] * s[:, :-stride]
        factor[:, stride:] = factor[:, stride:] * factor[:, :-stride]  # out of place: the two slices overlap
        stride *= 2
    return s


@torch.no_grad()
def trace_model(model: nn.Module, ids: torch.Tensor | list[int]) -> Trace:
    """Traces a shipped model's recurrent layer as it runs: on `model.rnn_input(ids)`, the embeddings (and
    convolution) in front of it. `ids` is a list of token ids or a LongTensor (time,) or (1, time). Call it on a
    model in eval mode, or its dropout reaches the trace."""
    device = next(model.parameters()).device
    ids = torch.as_tensor(ids, dtype=torch.long, device=device)
    if ids.dim() == 1:
        ids = ids.unsqueeze(0)
    return trace(model.rnn, model.rnn_input(ids))


START_TOKEN = "⟨start⟩"  # how a trace shows a begin-of-text token (see trace_text)


@dataclass
class TextTrace:
    """One text's trace: `layers` holds tensors (time, hidden) on the CPU, the batch dimension dropped,
    so `layers[(0, 0)]["f"]` is a tokens x units heatmap."""

    tokens: list[str]
    ids: list[int]
    layers: Trace
    truncated: bool  # the text had more tokens than fit; only the first ones are traced


def trace_text(model: nn.Module, tokenizer, text: str, max_tokens: int = 256, start_id: int | None = None) -> TextTrace:
    """Tokenizes `text` and traces `model` on at most `max_tokens` positions. A language model that reads a
    begin-of-text token before the text (as in its training) gets it as `start_id`: it is traced first, shown as
    START_TOKEN, and counts towards `max_tokens`."""
    if max_tokens < 1 + (start_id is not None):
        raise ValueError(f"max_tokens must leave room for a token, not {max_tokens}")
    ids = tokenizer.encode(text) if text.strip() else []
    if not ids:
        raise ValueError("The text is empty: there is nothing to trace.")
    room = max_tokens - (start_id is not None)
    truncated = len(ids) > room
    ids = ids[:room]
    tokens = tokenizer.pieces(ids)
    if start_id is not None:
        ids, tokens = [start_id, *ids], [START_TOKEN, *tokens]
    layers = {
        key: {name: tensor[0].cpu() for name, tensor in values.items()}
        for key, values in trace_model(model, ids).items()
    }
    return TextTrace(tokens=tokens, ids=ids, layers=layers, truncated=truncated)


# Summaries. They take a trace with or without its batch dimension: time is always the second to last.


def _sigmoid_gates(values: dict[str, torch.Tensor]) -> tuple[str, ...]:
    return ("i", "f", "o") if "c" in values else ("r", "z")


def saturation(trace_dict: Trace, low: float = 0.1, high: float = 0.9) -> dict:
    """{(layer, direction): {gate: {"left": ..., "right": ...}}}: for each unit, the fraction of steps its gate
    spends below `low` (left-saturated: shut) and above `high` (right-saturated: open), tensors (hidden,)
    or (batch, hidden). Karpathy, Johnson & Fei-Fei (2015) find units of both kinds, and few in between."""
    return {
        key: {
            gate: {
                "left": (values[gate] < low).float().mean(-2),
                "right": (values[gate] > high).float().mean(-2),
            }
            for gate in _sigmoid_gates(values)
        }
        for key, values in trace_dict.items()
    }


def saturation_summary(trace_dict: Trace, low: float = 0.1, high: float = 0.9) -> dict[str, dict[str, float]]:
    """{gate: {"left": fraction, "right": fraction}} over every layer, direction, step and unit: one line per
    gate for display."""
    gates = _sigmoid_gates(next(iter(trace_dict.values())))
    summary = {}
    for gate in gates:
        values = torch.cat([layer_values[gate].flatten() for layer_values in trace_dict.values()])
        summary[gate] = {"left": (values < low).float().mean().item(), "right": (values > high).float().mean().item()}
    return summary


def mean_forget_per_token(trace_dict: Trace, layer: int | None = None, direction: int | None = None) -> torch.Tensor:
    """The forget gate averaged over units, per token: (time,) or (batch, time). Low where memory is erased.

    `layer` and `direction` pick one (layer, direction); left None, the mean runs over all of them."""
    chosen = [
        values
        for (this_layer, this_direction), values in trace_dict.items()
        if layer in (None, this_layer) and direction in (None, this_direction)
    ]
    if not chosen:
        raise ValueError(f"the trace has no layer {layer}, direction {direction}")
    if "f" not in chosen[0]:
        raise ValueError("a GRU has no forget gate: its update gate z is the share of memory kept")
    return torch.stack([values["f"].mean(-1) for values in chosen]).mean(0)


def rank_units_by_variance(values: torch.Tensor) -> torch.Tensor:
    """Unit indices of a (time, hidden) tensor, the unit whose value varies most over the text first."""
    return torch.argsort(values.var(dim=0, correction=0), descending=True, stable=True)


@torch.no_grad()  # a ranking, not something to differentiate: weights may be passed as they are
def rank_units_by_contribution(
    pooled_features: torch.Tensor, classifier_weight: torch.Tensor, class_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """How much each unit of the pooled feature vector pushes the classifier towards class `class_index`.

    contribution[j] = pooled[j] * (W[class_index, j] - mean of W[other, j] over the other classes): unit j's
    share of the margin between that class's logit and the others' mean (for two classes, logit of the class
    minus logit of the other), biases aside. Positive pushes towards the class, negative away from it.
    Returns (units ordered from the strongest push towards the class to the strongest push away, contributions
    in unit order). `pooled_features` is (features,) or (1, features); the weight is (classes, features)."""
    pooled = pooled_features.reshape(-1)
    if pooled.shape[0] != classifier_weight.shape[1]:
        raise ValueError(f"{pooled.shape[0]} features but the weight reads {classifier_weight.shape[1]}")
    direction = classifier_weight[class_index]
    if classifier_weight.shape[0] > 1:
        others = torch.cat([classifier_weight[:class_index], classifier_weight[class_index + 1 :]])
        direction = direction - others.mean(0)
    contribution = pooled * direction
    return torch.argsort(contribution, descending=True, stable=True), contribution


# Export: the same flat names in JSON and .npz, e.g. "layer0_forward/i", with the tokens alongside.


def _flat_arrays(text_trace: TextTrace) -> dict[str, np.ndarray]:
    arrays = {
        "tokens": np.array(text_trace.tokens, dtype=np.str_),
        "ids": np.array(text_trace.ids, dtype=np.int64),
        "truncated": np.array(text_trace.truncated),
    }
    for (layer, direction), values in text_trace.layers.items():
        for name, tensor in values.items():
            arrays[f"layer{layer}_{DIRECTIONS[direction]}/{name}"] = tensor.detach().cpu().float().numpy()
    return arrays


def to_json(text_trace: TextTrace) -> dict:
    """A dict json.dumps can write: "tokens", "ids", "truncated", and "layer{L}_{forward|backward}/{name}"
    lists (time x hidden)."""
    return {name: array.tolist() for name, array in _flat_arrays(text_trace).items()}


def to_npz(text_trace: TextTrace, path_or_file: str | BinaryIO) -> None:
    """Writes the arrays of to_json to an .npz that np.load reads with allow_pickle=False (tokens as unicode)."""
    np.savez(path_or_file, **_flat_arrays(text_trace))
