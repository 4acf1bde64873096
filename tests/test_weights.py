"""Weight storage: float16 and int8 (one scale per row) files load back strictly, widened to float32."""

import pytest
import safetensors.torch
import torch

from seqdemo.core import weights
from seqdemo.core.models import NextWordLSTM, SentimentClassifier
from seqdemo.inference.hub import CheckpointError, load_model


def classifier(**options) -> SentimentClassifier:
    torch.manual_seed(0)
    return SentimentClassifier(vocab_size=60, embed_dim=16, hidden_size=32, num_layers=2, **options).eval()


def test_int8_rows_round_trip_within_half_a_step():
    weight = torch.randn(20, 30) * torch.logspace(-3, 1, 20).unsqueeze(1)  # rows of very different sizes
    values, scale = weights.quantize_rows(weight)
    assert values.dtype == torch.int8 and scale.shape == (20,)
    restored = values.float() * scale.unsqueeze(1)
    assert ((restored - weight).abs() <= scale.unsqueeze(1) / 2 + 1e-7).all()  # each row on its own scale
    assert (values.abs().amax(dim=1) == 127).all()  # every row uses the whole range


def test_int8_checkpoint_is_smaller_and_predicts_the_same(tmp_path):
    model = classifier(weight_storage="int8")
    model.save_pretrained(tmp_path / "int8")
    classifier().save_pretrained(tmp_path / "float16")
    sizes = {name: (tmp_path / name / weights.WEIGHTS).stat().st_size for name in ("int8", "float16")}
    assert sizes["int8"] < 0.6 * sizes["float16"], sizes
    stored = safetensors.torch.load_file(tmp_path / "int8" / weights.WEIGHTS)
    assert stored["rnn.weight_ih_l1"].dtype == torch.int8 and stored["rnn.bias_ih_l1"].dtype == torch.float16

    for again in (load_model(SentimentClassifier, tmp_path / "int8"), SentimentClassifier.from_pretrained(tmp_path / "int8")):
        assert again.weight_storage == "int8"
        assert {p.dtype for p in again.parameters()} == {torch.float32}
        ids = torch.randint(1, 60, (3, 12))
        lengths = torch.tensor([12, 7, 3])
        with torch.no_grad():
            torch.testing.assert_close(again(ids, lengths).softmax(-1), model(ids, lengths).softmax(-1),
                                       atol=2e-2, rtol=0)


def test_as_stored_gives_the_weights_the_checkpoint_loads(tmp_path):
    model = classifier(weight_storage="int8")
    stored = weights.as_stored(model, "int8")
    model.save_pretrained(tmp_path)
    loaded = load_model(SentimentClassifier, tmp_path)
    for name, weight in stored.state_dict().items():
        assert torch.equal(weight, loaded.state_dict()[name]), name
    # int8 rounds the matrices; the model it was copied from keeps its own weights.
    assert not torch.equal(stored.rnn.weight_ih_l0, model.rnn.weight_ih_l0)
    assert model.rnn.weight_ih_l0.data_ptr() != stored.rnn.weight_ih_l0.data_ptr()


def test_float16_keeps_the_language_models_tied_decoder(tmp_path):
    lm = NextWordLSTM(vocab_size=40, embed_dim=8, hidden_size=8)
    lm.save_pretrained(tmp_path)
    again = load_model(NextWordLSTM, tmp_path)
    assert again.decoder.weight is again.embedding.weight
    torch.testing.assert_close(again.embedding.weight, lm.embedding.weight, atol=1e-2, rtol=1e-3)
    with pytest.raises(ValueError, match="tied"):
        weights.save(lm, tmp_path / "tied.safetensors", "int8")


def test_an_int8_file_missing_a_scale_or_a_weight_is_refused(tmp_path):
    classifier(weight_storage="int8").save_pretrained(tmp_path)
    path = tmp_path / weights.WEIGHTS
    stored = safetensors.torch.load_file(path)
    for broken in ("rnn.weight_hh_l0" + weights.SCALE_SUFFIX, "classifier.weight"):
        safetensors.torch.save_file({k: v for k, v in stored.items() if k != broken}, path)
        with pytest.raises(CheckpointError, match="cannot be loaded"):
            load_model(SentimentClassifier, tmp_path)
