"""The models' contracts: padding never changes a prediction, the LM's state continues a text, options build."""

import os

import pytest
import torch

from seqdemo.core.models import NextWordLSTM, SentimentClassifier
from seqdemo.core.text import pad_batch


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"pooling": "last"},
        {"pooling": "mean", "num_layers": 2, "dropout": 0.2},
        {"cell": "gru"},
        {"bidirectional": False, "pooling": "last"},
        {"conv_channels": 10, "conv_kernel": 5},
        {"conv_channels": 10, "conv_kernel": 3, "conv_stride": 2},
        {"conv_channels": 10, "conv_kernel": 5, "conv_stride": 2, "pooling": "last"},
        {"cell": "rnn", "pooling": "last", "bidirectional": False},
        {"num_layers": 2, "layer_dropout": 0.2},
    ],
)
def test_padding_never_changes_a_prediction(options):
    torch.manual_seed(0)
    model = SentimentClassifier(vocab_size=50, embed_dim=8, hidden_size=6, **options).eval()
    texts = [torch.randint(4, 50, (n,)).tolist() for n in (3, 11, 1, 7)]
    ids, lengths = pad_batch(texts, pad_id=0)
    with torch.no_grad():
        batched = model(ids, lengths)
        for row, text in enumerate(texts):
            alone = model(torch.tensor([text]), torch.tensor([len(text)]))
            assert torch.allclose(batched[row], alone[0], atol=1e-5), (options, row)


def test_classifier_linear_reads_both_directions():
    model = SentimentClassifier(vocab_size=50, embed_dim=8, hidden_size=6)
    assert model.classifier.in_features == 2 * 6
    assert model.rnn.bidirectional and isinstance(model.rnn, torch.nn.LSTM)


def test_a_strided_convolution_shortens_what_the_recurrence_reads():
    model = SentimentClassifier(vocab_size=50, embed_dim=8, hidden_size=6, conv_channels=4, conv_stride=2)
    lengths = torch.tensor([1, 2, 7, 8])
    assert model.rnn_lengths(lengths).tolist() == [1, 1, 4, 4]
    ids = torch.randint(4, 50, (1, 8))
    assert model.rnn_input(ids).shape[1] == 4


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="cell"):
        SentimentClassifier(cell="transformer")
    with pytest.raises(ValueError, match="pooling"):
        SentimentClassifier(pooling="attention")


def test_language_model_state_continues_the_text():
    """Feeding a text in two parts with the returned (h, c) equals feeding it at once."""
    torch.manual_seed(0)
    model = NextWordLSTM(vocab_size=40, embed_dim=8, hidden_size=8, num_layers=3).eval()
    ids = torch.randint(0, 40, (2, 9))
    with torch.no_grad():
        whole, _ = model(ids)
        first, state = model(ids[:, :5])
        rest, _ = model(ids[:, 5:], state)
    assert torch.allclose(torch.cat([first, rest], 1), whole, atol=1e-5)
    assert model.rnn.num_layers == 3


def test_tied_weights_and_projection():
    tied = NextWordLSTM(vocab_size=40, embed_dim=8, hidden_size=8)
    assert tied.decoder.weight is tied.embedding.weight and tied.projection is None
    bridged = NextWordLSTM(vocab_size=40, embed_dim=8, hidden_size=12)
    assert bridged.decoder.weight is bridged.embedding.weight and bridged.projection.in_features == 12
    untied = NextWordLSTM(vocab_size=40, embed_dim=8, hidden_size=12, tie_weights=False)
    assert untied.decoder.weight is not untied.embedding.weight and untied.decoder.in_features == 12
    logits, (h, c) = bridged(torch.randint(0, 40, (1, 4)))
    assert logits.shape == (1, 4, 40) and h.shape == c.shape == (3, 1, 12)


def test_config_travels_inside_the_checkpoint(tmp_path):
    model = SentimentClassifier(vocab_size=50, embed_dim=8, hidden_size=6, cell="gru", labels=["neg", "pos"])
    model.save_pretrained(tmp_path)
    again = SentimentClassifier.from_pretrained(tmp_path)
    assert isinstance(again.rnn, torch.nn.GRU) and again.labels == ["neg", "pos"]
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "config.json").exists()


def test_locked_dropout_keeps_one_mask_per_sequence():
    from seqdemo.core.models import locked_dropout

    torch.manual_seed(0)
    x = torch.ones(3, 6, 40)
    dropped = locked_dropout(x, 0.5, training=True)
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped))  # the same units dropped at every step
    assert not torch.equal(dropped[0], dropped[1])  # but each sequence has its own mask
    assert set(dropped.unique().tolist()) == {0.0, 2.0}  # survivors scaled by 1 / (1 - p)
    assert torch.equal(locked_dropout(x, 0.5, training=False), x)


def test_language_model_regularisation_acts_only_while_training():
    torch.manual_seed(0)
    plain = NextWordLSTM(vocab_size=50, embed_dim=16, hidden_size=16, num_layers=2, dropout=0.0)
    regularised = NextWordLSTM(vocab_size=50, embed_dim=16, hidden_size=16, num_layers=2, dropout=0.0,
                               embedding_dropout=0.3, weight_drop=0.5)
    regularised.load_state_dict(plain.state_dict())
    ids = torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        assert torch.equal(plain.eval()(ids)[0], regularised.eval()(ids)[0])
        stored = regularised.rnn.weight_hh_l1.clone()
        train_out = regularised.train()(ids)[0]
    assert not torch.allclose(train_out, plain(ids)[0])
    assert torch.equal(regularised.rnn.weight_hh_l1, stored)  # DropConnect masks a copy, never the weight itself
    regularised(ids)[0].sum().backward()
    assert regularised.rnn.weight_hh_l1.grad is not None and regularised.rnn.weight_hh_l1.grad.abs().sum() > 0


def test_threads_times_concurrent_handlers_never_exceed_the_cores():
    from seqdemo.inference.pipeline import available_cores, choose_threads

    for cores in (1, 2, 3, 8, 16):
        for concurrency in (1, 2, 3, 4, 20):
            threads = choose_threads(concurrency, cores)
            assert threads >= 1 and (threads * concurrency <= cores or threads == 1)
            assert (threads + 1) * concurrency > cores  # and no fewer than that allows
    assert 1 <= available_cores() <= (os.cpu_count() or 1)
