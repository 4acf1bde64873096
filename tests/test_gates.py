"""The gate-trace engine: exact against the modules it traces, and its summaries on hand-built cases."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from seqdemo.core import gates

TOLERANCE = 1e-5


def previous_steps(h: torch.Tensor, direction: int) -> torch.Tensor:
    """h_{t-1} in the direction's reading order, the zero state before its first step."""
    zeros = torch.zeros_like(h[:, :1])
    return torch.cat([h[:, 1:], zeros], 1) if direction else torch.cat([zeros, h[:, :-1]], 1)


@settings(max_examples=50, deadline=None)
@given(
    cell=st.sampled_from([nn.LSTM, nn.GRU]),
    layers=st.integers(1, 3),
    bidirectional=st.booleans(),
    batch_first=st.booleans(),
    bias=st.booleans(),
    input_size=st.integers(1, 7),
    hidden=st.integers(1, 7),
    batch=st.integers(1, 3),
    steps=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
def test_trace_matches_the_module(
    cell, layers, bidirectional, batch_first, bias, input_size, hidden, batch, steps, seed
):
    torch.manual_seed(seed)
    rnn = cell(input_size, hidden, layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional)
    x = torch.randn((batch, steps, input_size) if batch_first else (steps, batch, input_size))
    with torch.no_grad():
        output, state = rnn(x)
    if not batch_first:
        output = output.transpose(0, 1)
    final_h, final_c = state if cell is nn.LSTM else (state, None)
    directions = 2 if bidirectional else 1

    traced = gates.trace(rnn, x)

    assert set(traced) == {(layer, direction) for layer in range(layers) for direction in range(directions)}
    for (layer, direction), values in traced.items():
        assert tuple(values) == (gates.LSTM_VALUES if cell is nn.LSTM else gates.GRU_VALUES)
        assert all(tensor.shape == (batch, steps, hidden) for tensor in values.values())
        h = values["h"]
        last = -1 if direction == 0 else 0  # the backward direction's last step is the first token
        state_index = layer * directions + direction
        torch.testing.assert_close(h[:, last], final_h[state_index], atol=TOLERANCE, rtol=0)
        if layer == layers - 1:
            half = output[..., direction * hidden : (direction + 1) * hidden]
            torch.testing.assert_close(h, half, atol=TOLERANCE, rtol=0)
        # The gates rebuild the module's own hidden states, in every layer.
        if cell is nn.LSTM:
            torch.testing.assert_close(values["c"][:, last], final_c[state_index], atol=TOLERANCE, rtol=0)
            torch.testing.assert_close(values["o"] * values["c"].tanh(), h, atol=TOLERANCE, rtol=0)
        else:
            rebuilt = (1 - values["z"]) * values["n"] + values["z"] * previous_steps(h, direction)
            torch.testing.assert_close(rebuilt, h, atol=TOLERANCE, rtol=0)


def test_trace_is_exact_over_a_long_text_in_float64():
    """The rebuilt cell state is the module's, not an approximation: in float64 they agree to rounding, over
    enough steps for every round of the scan, with forget gates held open so the cell remembers everything."""
    torch.manual_seed(0)
    rnn = nn.LSTM(5, 16, 2, bidirectional=True, batch_first=True).double()
    with torch.no_grad():
        for name, parameter in rnn.named_parameters():
            if name.startswith("bias_ih"):
                parameter.view(4, -1)[1] += 5.0
    x = torch.randn(2, 300, 5, dtype=torch.float64)
    with torch.no_grad():
        _, (_, final_c) = rnn(x)
    traced = gates.trace(rnn, x)
    for (layer, direction), values in traced.items():
        last = -1 if direction == 0 else 0
        torch.testing.assert_close(values["c"][:, last], final_c[layer * 2 + direction], atol=1e-10, rtol=0)


def test_unbatched_input_is_a_batch_of_one():
    torch.manual_seed(0)
    rnn = nn.LSTM(3, 4, batch_first=False)
    x = torch.randn(5, 3)
    with torch.no_grad():
        output, _ = rnn(x)
    traced = gates.trace(rnn, x)
    torch.testing.assert_close(traced[(0, 0)]["h"], output.unsqueeze(0), atol=TOLERANCE, rtol=0)


def test_projected_lstm_is_refused():
    with pytest.raises(ValueError, match="proj_size"):
        gates.trace(nn.LSTM(3, 4, proj_size=2), torch.randn(1, 5, 3))


def test_trace_model_follows_the_shipped_models(tiny_sentiment, tiny_nextword):
    ids = torch.tensor([[5, 17, 42, 9, 120, 7]])
    with torch.no_grad():
        out, _ = tiny_sentiment.rnn(tiny_sentiment.rnn_input(ids))
    traced = gates.trace_model(tiny_sentiment, ids)
    hidden = tiny_sentiment.rnn.hidden_size
    torch.testing.assert_close(traced[(0, 0)]["h"], out[..., :hidden], atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(traced[(0, 1)]["h"], out[..., hidden:], atol=TOLERANCE, rtol=0)

    with torch.no_grad():
        expected, _ = tiny_nextword.rnn(tiny_nextword.rnn_input(ids))
    traced = gates.trace_model(tiny_nextword, ids[0].tolist())
    assert len(traced) == 3
    torch.testing.assert_close(traced[(2, 0)]["h"], expected, atol=TOLERANCE, rtol=0)


def test_trace_text_names_every_token(tiny_sentiment, tiny_tokenizer):
    text = "The movie was great and I loved it."
    ids = tiny_tokenizer.encode(text)
    result = gates.trace_text(tiny_sentiment, tiny_tokenizer, text)
    assert result.ids == ids
    assert result.tokens == tiny_tokenizer.pieces(ids)
    assert not result.truncated
    assert result.layers[(0, 1)]["f"].shape == (len(ids), tiny_sentiment.rnn.hidden_size)

    short = gates.trace_text(tiny_sentiment, tiny_tokenizer, text, max_tokens=3)
    assert short.truncated and short.ids == ids[:3] and len(short.tokens) == 3
    assert short.layers[(0, 0)]["h"].shape[0] == 3


def test_trace_text_reads_a_start_token_first(tiny_nextword, tiny_tokenizer):
    """The language model's view: begin-of-text, then the text, traced as one sequence."""
    text = "The movie was great and I loved it."
    ids = tiny_tokenizer.encode(text)
    result = gates.trace_text(tiny_nextword, tiny_tokenizer, text, max_tokens=4, start_id=tiny_tokenizer.bos_id)
    assert result.ids == [tiny_tokenizer.bos_id, *ids[:3]] and result.truncated
    assert result.tokens == [gates.START_TOKEN, *tiny_tokenizer.pieces(ids[:3])]
    with torch.no_grad():
        output, _ = tiny_nextword.rnn(tiny_nextword.rnn_input(torch.tensor([result.ids])))
    last = tiny_nextword.rnn.num_layers - 1
    torch.testing.assert_close(result.layers[(last, 0)]["h"], output[0], atol=TOLERANCE, rtol=0)
    with pytest.raises(ValueError, match="room"):
        gates.trace_text(tiny_nextword, tiny_tokenizer, text, max_tokens=1, start_id=tiny_tokenizer.bos_id)


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_is_refused(tiny_sentiment, tiny_tokenizer, text):
    with pytest.raises(ValueError, match="empty"):
        gates.trace_text(tiny_sentiment, tiny_tokenizer, text)


def lstm_with_gate_biases(input_gate: float, forget_gate: float, output_gate: float) -> nn.LSTM:
    """A bidirectional LSTM whose gates are set by their biases alone: every weight is zero."""
    rnn = nn.LSTM(3, 4, bidirectional=True, batch_first=True)
    with torch.no_grad():
        for name, parameter in rnn.named_parameters():
            parameter.zero_()
            if name.startswith("bias_ih"):
                i, f, g, o = parameter.view(4, -1)
                i.fill_(input_gate), f.fill_(forget_gate), o.fill_(output_gate)
    return rnn


def test_gates_forced_shut_or_open_read_as_saturated():
    rnn = lstm_with_gate_biases(input_gate=10.0, forget_gate=-10.0, output_gate=0.0)
    saturation = gates.saturation(gates.trace(rnn, torch.randn(2, 9, 3)))
    assert set(saturation) == {(0, 0), (0, 1)}
    for per_gate in saturation.values():
        assert set(per_gate) == {"i", "f", "o"}
        assert per_gate["f"]["left"].shape == (2, 4)
        assert torch.all(per_gate["f"]["left"] == 1) and torch.all(per_gate["f"]["right"] == 0)
        assert torch.all(per_gate["i"]["right"] == 1) and torch.all(per_gate["i"]["left"] == 0)
        assert torch.all(per_gate["o"]["left"] == 0) and torch.all(per_gate["o"]["right"] == 0)  # sigmoid(0) = 0.5

    summary = gates.saturation_summary(gates.trace(rnn, torch.randn(1, 9, 3)))
    assert summary == {
        "i": {"left": 0.0, "right": 1.0},
        "f": {"left": 1.0, "right": 0.0},
        "o": {"left": 0.0, "right": 0.0},
    }


def test_gru_saturation_reads_reset_and_update_gates():
    rnn = nn.GRU(3, 4, batch_first=True)
    with torch.no_grad():
        for parameter in rnn.parameters():
            parameter.zero_()
        rnn.bias_ih_l0.view(3, -1)[0].fill_(-10.0)  # reset gate shut
        rnn.bias_ih_l0.view(3, -1)[1].fill_(10.0)  # update gate open
    summary = gates.saturation_summary(gates.trace(rnn, torch.randn(1, 6, 3)))
    assert summary == {"r": {"left": 1.0, "right": 0.0}, "z": {"left": 0.0, "right": 1.0}}


def test_mean_forget_per_token():
    forget = torch.tensor([[0.2, 0.4], [1.0, 0.0], [0.9, 0.7]])  # (time, hidden)
    trace_dict = {(0, 0): {"f": forget}, (0, 1): {"f": 1 - forget}}
    torch.testing.assert_close(gates.mean_forget_per_token(trace_dict, 0, 0), torch.tensor([0.3, 0.5, 0.8]))
    torch.testing.assert_close(gates.mean_forget_per_token(trace_dict, 0, 1), torch.tensor([0.7, 0.5, 0.2]))
    torch.testing.assert_close(gates.mean_forget_per_token(trace_dict), torch.tensor([0.5, 0.5, 0.5]))
    with pytest.raises(ValueError, match="no layer"):
        gates.mean_forget_per_token(trace_dict, layer=1)
    with pytest.raises(ValueError, match="GRU"):
        gates.mean_forget_per_token({(0, 0): {"z": forget}})


def test_rank_units_by_variance():
    values = torch.tensor(
        [
            [0.0, 5.0, 1.0, 3.0],
            [0.0, -5.0, 2.0, 0.0],
            [0.0, 5.0, 3.0, -3.0],
        ]
    )  # unit 0 constant, unit 1 swings most, then unit 3, then unit 2
    assert gates.rank_units_by_variance(values).tolist() == [1, 3, 2, 0]


def test_rank_units_by_contribution():
    pooled = torch.tensor([1.0, -2.0, 0.5, 3.0])
    weight = torch.tensor(
        [
            [0.0, 1.0, 0.0, 1.0],  # negative
            [1.0, 0.0, 2.0, 1.0],  # positive
        ]
    )
    order, contribution = gates.rank_units_by_contribution(pooled, weight, class_index=1)
    torch.testing.assert_close(contribution, torch.tensor([1.0, 2.0, 1.0, 0.0]))
    assert order.tolist() == [1, 0, 2, 3]
    # Summed, the contributions are the logit margin the weights give (no bias here).
    logits = weight @ pooled
    torch.testing.assert_close(contribution.sum(), logits[1] - logits[0])

    order, contribution = gates.rank_units_by_contribution(pooled.unsqueeze(0), weight, class_index=0)
    torch.testing.assert_close(contribution, torch.tensor([-1.0, -2.0, -1.0, 0.0]))
    assert order.tolist() == [3, 0, 2, 1]

    three_classes = torch.cat([weight, torch.tensor([[2.0, 2.0, 0.0, 1.0]])])  # margin against the others' mean
    _, contribution = gates.rank_units_by_contribution(pooled, three_classes, class_index=2)
    torch.testing.assert_close(contribution, torch.tensor([1.5, -3.0, -0.5, 0.0]))

    trained = weight.clone().requires_grad_(True)  # a model's weight as it is: the ranking does not track it
    assert not gates.rank_units_by_contribution(pooled, trained, class_index=1)[1].requires_grad


@pytest.fixture(scope="module")
def text_trace(tiny_sentiment, tiny_tokenizer) -> gates.TextTrace:
    return gates.trace_text(tiny_sentiment, tiny_tokenizer, "A wonderful, moving story.")


def test_to_json_round_trips(text_trace):
    exported = json.loads(json.dumps(gates.to_json(text_trace)))
    assert exported["tokens"] == text_trace.tokens
    assert exported["ids"] == text_trace.ids
    assert exported["truncated"] is False
    for (layer, direction), values in text_trace.layers.items():
        for name, tensor in values.items():
            key = f"layer{layer}_{('forward', 'backward')[direction]}/{name}"
            assert torch.equal(torch.tensor(exported[key]), tensor)


@pytest.mark.parametrize("to_file", [True, False])
def test_to_npz_round_trips_without_pickle(text_trace, tmp_path, to_file):
    target = tmp_path / "trace.npz" if to_file else io.BytesIO()
    gates.to_npz(text_trace, target)
    if not to_file:
        target.seek(0)
    with np.load(target, allow_pickle=False) as loaded:
        assert loaded["tokens"].tolist() == text_trace.tokens
        assert loaded["ids"].tolist() == text_trace.ids
        assert not loaded["truncated"]
        for (layer, direction), values in text_trace.layers.items():
            for name, tensor in values.items():
                key = f"layer{layer}_{('forward', 'backward')[direction]}/{name}"
                assert np.array_equal(loaded[key], tensor.numpy())



@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("max_tokens", [256, 5])
def test_trace_text_backward_direction_is_the_modules_own_output(tiny_tokenizer, layers, max_tokens):
    """Both directions of the last layer, in text order, equal nn.LSTM's own output on the same tokens: the
    backward h at token t has read the text from its end back to t (so at the last token it has read one)."""
    from seqdemo.core.models import SentimentClassifier

    torch.manual_seed(0)
    model = SentimentClassifier(vocab_size=tiny_tokenizer.vocab_size, embed_dim=16, hidden_size=12,
                                num_layers=layers).eval()
    text = "The plot was thin but the acting saved it, and I would watch it again."
    result = gates.trace_text(model, tiny_tokenizer, text, max_tokens=max_tokens)
    assert len(result.ids) == min(max_tokens, len(tiny_tokenizer.encode(text))) > 3
    with torch.no_grad():
        output, _ = model.rnn(model.rnn_input(torch.tensor([result.ids])))
    hidden = model.rnn.hidden_size
    torch.testing.assert_close(result.layers[(layers - 1, 0)]["h"], output[0, :, :hidden], atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(result.layers[(layers - 1, 1)]["h"], output[0, :, hidden:], atol=TOLERANCE, rtol=0)
