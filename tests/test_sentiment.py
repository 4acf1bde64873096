"""SentimentPipeline on a small untrained model: the contract, not the accuracy (see test_shipped.py for that)."""

import copy
import math

import pytest
import torch

from seqdemo.core.models import SentimentClassifier
from seqdemo.inference.sentiment import SentimentPipeline


@pytest.fixture(scope="module")
def clf(tiny_sentiment, tiny_tokenizer):
    return SentimentPipeline(tiny_sentiment, tiny_tokenizer, torch.device("cpu"), source="test")


def test_predict_gives_a_label_and_a_score_per_text(clf):
    results = clf.predict(["I loved it", "Dull."])
    assert [set(r) >= {"label", "score", "probabilities", "truncated"} for r in results] == [True, True]
    for r in results:
        assert r["label"] in ("negative", "positive")
        assert math.isclose(sum(r["probabilities"].values()), 1.0, abs_tol=1e-5)
        assert r["score"] == max(r["probabilities"].values())
    assert clf.predict("I loved it") == results[:1]


def test_a_text_alone_and_in_a_padded_batch_agree(clf):
    texts = ["I loved it", "The plot was thin but the acting saved it, and I would watch it again."]
    together = clf.predict(texts)
    for text, result in zip(texts, together):
        assert clf.predict([text])[0]["score"] == pytest.approx(result["score"], abs=1e-5)
    # predict batches texts of similar length together: the answers still come back in the order asked.
    mixed = [texts[1], "Dull.", texts[0], texts[1] + " " + texts[1], "ok"]
    for text, result in zip(mixed, clf.predict(mixed, batch_size=2)):
        alone = clf.predict(text)[0]
        assert result["tokens"] == alone["tokens"] and result["score"] == pytest.approx(alone["score"], abs=1e-5)


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_text_is_a_plain_value_error(clf, text):
    with pytest.raises(ValueError, match="empty"):
        clf.predict([text])
    with pytest.raises(ValueError, match="empty"):
        clf.explain(text)


@pytest.mark.parametrize("text", ["😀 great 👍", "很好看的电影", "סרט נהדר", "bad\x00\x07\x1b[31m movie", "<script>x</script>"])
def test_any_script_or_symbol_is_read(clf, text):
    result = clf.predict(text)[0]
    assert result["tokens"] > 0 and not result["truncated"]


def test_a_megabyte_is_truncated_and_says_so(clf):
    # How fast: bench/bench_app.py (no wall-clock assertions in tests).
    result = clf.predict("a fine movie " * 80_000)[0]  # ~1 MB
    assert result["truncated"] and result["tokens"] == clf.max_tokens


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("pooling", ["max", "mean", "last"])
def test_evidence_splits_the_decision_exactly(tiny_tokenizer, pooling, bidirectional):
    """The shares plus the classifier's bias are the model's own log-odds, for each pooling."""
    torch.manual_seed(0)
    model = SentimentClassifier(vocab_size=tiny_tokenizer.vocab_size, embed_dim=16, hidden_size=12,
                                pooling=pooling, bidirectional=bidirectional)
    clf = SentimentPipeline(model.eval(), tiny_tokenizer, torch.device("cpu"), source="test")
    for text in ["The plot was thin but the acting saved it", "not good at all", "a"]:
        explanation = clf.explain(text)
        p = clf.predict(text)[0]["probabilities"]
        assert explanation.prediction["probabilities"] == pytest.approx(p, abs=1e-6)
        assert explanation.log_odds == pytest.approx(math.log(p["positive"]) - math.log(p["negative"]), abs=1e-4)
        assert explanation.ids == clf.encode(text)[0] and len(explanation.attributions) == len(explanation.tokens)
        assert sum(explanation.attributions) + explanation.offset == pytest.approx(explanation.log_odds, abs=1e-4)


def test_evidence_of_max_pooling_sits_where_each_unit_peaked(clf):
    """Max pooling: a token's share is the weighed value of the units whose maximum is at that token."""
    explanation = clf.explain("good good good bad")
    ids, _ = clf.encode("good good good bad")
    lengths = torch.tensor([len(ids)])
    with torch.no_grad():
        out, _ = clf.model.read(clf.model.rnn_input(torch.tensor([ids]), lengths), lengths)
    peaks = out[0].argmax(0)
    weights = clf.model.classifier.weight.detach()
    direction = weights[-1] - weights[0]
    for position, share in enumerate(explanation.attributions):
        units = peaks == position
        assert share == pytest.approx(float((out[0, position, units] * direction[units]).sum()), abs=1e-5)


def test_integrated_gradients_add_up_to_the_decision(clf):
    """Completeness: the token attributions sum to log-odds(text) - log-odds(all-zero baseline)."""
    explanation = clf.explain("The plot was thin but the acting saved it", method="integrated_gradients", steps=128)
    assert explanation.method == "integrated_gradients"
    assert len(explanation.attributions) == len(explanation.tokens)
    assert sum(explanation.attributions) == pytest.approx(explanation.log_odds - explanation.offset, abs=2e-3)


def test_an_unknown_method_is_a_value_error(clf):
    with pytest.raises(ValueError, match="method"):
        clf.explain("fine", method="saliency")


def test_trajectory_ends_at_the_prediction(clf):
    text = "not good at all"
    trajectory = clf.trajectory(text)
    assert [n for n, _ in trajectory] == list(range(1, len(clf.encode(text)[0]) + 1))
    assert trajectory[-1][1] == pytest.approx(clf.predict(text)[0]["probabilities"]["positive"], abs=1e-5)
    long = clf.trajectory("word " * 300, points=16)
    assert len(long) == 16 and long[-1][0] == len(clf.encode("word " * 300)[0])


@pytest.mark.parametrize("direction", [0, 1])
def test_unit_contributions_split_the_decisions_margin(clf, direction):
    """Each unit's pooled value times its weight towards the decision: over both directions, plus the biases,
    they make up the margin between the two logits."""
    text = "The plot was thin but the acting saved it"
    ids, _ = clf.encode(text)
    contributions = clf.unit_contributions(ids, direction)
    assert contributions.decision == clf.predict(text)[0]["label"]
    values = contributions.contributions.tolist()
    assert len(values) == clf.model.rnn.hidden_size
    assert [values[u] for u in contributions.order] == sorted(values, reverse=True)
    both = torch.cat([clf.unit_contributions(ids, d).contributions for d in (0, 1)])
    explanation = clf.explain(text)
    decided = clf.labels.index(contributions.decision)
    bias = clf.model.classifier.bias.detach()
    margin = explanation.log_odds if decided == 1 else -explanation.log_odds
    assert float(both.sum() + bias[decided] - bias[1 - decided]) == pytest.approx(margin, abs=1e-4)


@pytest.mark.parametrize("cell,layers,bidirectional,pooling", [
    ("lstm", 2, True, "max"), ("lstm", 1, True, "mean"), ("lstm", 2, True, "last"), ("lstm", 2, False, "last"),
    ("gru", 2, True, "max"), ("rnn", 1, True, "max"), ("lstm", 1, False, "max"),
])
def test_prefix_probabilities_equal_each_prefix_read_alone(tiny_tokenizer, cell, layers, bidirectional, pooling):
    """The trajectory's batched engine against the model called on each prefix by itself (no padding at all)."""
    torch.manual_seed(0)
    model = SentimentClassifier(vocab_size=tiny_tokenizer.vocab_size, embed_dim=16, hidden_size=12, cell=cell,
                                num_layers=layers, bidirectional=bidirectional, pooling=pooling).eval()
    clf = SentimentPipeline(model, tiny_tokenizer, torch.device("cpu"), source="test")
    ids, _ = clf.encode("The plot was thin but the acting saved it, and I would watch it again. Not bad at all!")
    cuts = [1, 2, 3, 5, 8, 13, 21, len(ids) - 1, len(ids)]
    with torch.no_grad():
        alone = [model(torch.tensor([ids[:c]]), torch.tensor([c]))[0].softmax(-1)[-1].item() for c in cuts]
    clf.prefix_batch_size = 4  # several groups, each padded to its own longest prefix
    assert clf.prefix_probabilities(ids, cuts) == pytest.approx(alone, abs=1e-5)


def test_reading_trajectory_is_at_word_ends_and_says_when_spaced(clf):
    text = "The plot was thin but the acting saved it"
    ids, _ = clf.encode(text)
    words = clf.tokenizer.words(ids, [0.0] * len(ids))
    trajectory = clf.reading_trajectory(text)
    assert not trajectory.spaced and trajectory.word_indices == list(range(len(words)))
    ends = [max(w.positions) + 1 for w in words]
    with torch.no_grad():
        alone = [clf.model(torch.tensor([ids[:c]]), torch.tensor([c]))[0].softmax(-1)[-1].item() for c in ends]
    assert [n for n, _ in trajectory.points] == ends
    assert [p for _, p in trajectory.points] == pytest.approx(alone, abs=1e-5)

    long = "good " * 30 + "bad " * 30 + "fine " * 30
    spaced = clf.reading_trajectory(long, points=16)
    ids, _ = clf.encode(long)
    assert spaced.spaced and len(spaced.points) == len(spaced.word_indices) == 16
    assert spaced.word_indices[-1] == len(spaced.words) - 1 and spaced.points[-1][0] == len(ids)
    gaps = {b - a for a, b in zip(spaced.word_indices, spaced.word_indices[1:])}
    assert max(gaps) - min(gaps) <= 1  # evenly spaced


def test_a_second_request_for_the_same_text_reuses_the_first(clf, monkeypatch):
    """The page asks for the prediction, the attributions and the trajectory of one text separately: the text is
    encoded once, and the whole text's logits are computed once."""
    text = "A wonderful, moving story with brilliant performances, kept for a second request."
    calls = {"encode": 0, "model": 0}
    encode, forward = clf.tokenizer.encode, clf.model.forward
    monkeypatch.setattr(clf.tokenizer, "encode", lambda t: calls.__setitem__("encode", calls["encode"] + 1) or encode(t))
    monkeypatch.setattr(clf.model, "forward", lambda *a: calls.__setitem__("model", calls["model"] + 1) or forward(*a))
    first = clf.explain(text, method="integrated_gradients", steps=4)
    assert calls == {"encode": 1, "model": 1}
    trajectory = clf.reading_trajectory(text, points=1)
    assert calls == {"encode": 1, "model": 1}  # one point, the whole text: the cached logits
    assert trajectory.points[-1][1] == pytest.approx(first.prediction["probabilities"]["positive"], abs=1e-6)


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_integrated_gradients_do_not_depend_on_the_internal_batch_size(clf, batch_size):
    text = "The plot was thin but the acting saved it"
    ids, _ = clf.encode(text)
    one_batch, offset = clf.integrated_gradients(ids, 16, batch_size=16)
    attributions, same_offset = clf.integrated_gradients(ids, 16, batch_size=batch_size)
    assert attributions == pytest.approx(one_batch, abs=1e-6) and same_offset == offset


def test_a_second_visitor_gets_the_slow_results_without_running_the_model(tiny_sentiment, tiny_tokenizer):
    """Integrated gradients and the trajectory are kept per text: the same text asked again runs no layer at all,
    an edit of a returned list does not reach the kept one, and clear_cache() after new weights recomputes."""
    pipe = SentimentPipeline(copy.deepcopy(tiny_sentiment), tiny_tokenizer, torch.device("cpu"), source="test")
    text = "The plot was thin but the acting saved it, and the ending was rushed."
    passes = []
    pipe.model.embedding.register_forward_hook(lambda *_: passes.append(1))  # every path starts there
    first = pipe.explain(text, method="integrated_gradients", steps=4)
    trajectory = pipe.reading_trajectory(text, points=4)
    assert passes  # the first visitor's answers were computed
    passes.clear()
    first.attributions[0] += 100.0
    again = pipe.explain(text, method="integrated_gradients", steps=4)
    assert pipe.reading_trajectory(text, points=4).points == trajectory.points
    assert passes == [] and again.attributions[0] == pytest.approx(first.attributions[0] - 100.0)
    with torch.no_grad():
        for parameter in pipe.model.parameters():
            parameter.mul_(1.5)
    pipe.clear_cache()
    fresh = pipe.explain(text, method="integrated_gradients", steps=4)
    assert passes and fresh.attributions != pytest.approx(again.attributions, abs=1e-6)
    assert pipe.reading_trajectory(text, points=4).points != trajectory.points


def test_the_native_lstm_kernel_gives_what_onednn_gives(clf):
    """The server runs nn.LSTM with PyTorch's own CPU kernel (native_lstm_kernels: faster here); every number
    the page shows stays what oneDNN's kernel gives, well within the page's 1e-4."""
    text = "The plot was thin but the acting saved it, and I would watch it again."
    answers, before = {}, torch.backends.mkldnn.enabled
    try:
        for enabled in (True, False):
            torch.backends.mkldnn.enabled = enabled
            clf.clear_cache()
            explained = clf.explain(text, method="integrated_gradients", steps=8)
            answers[enabled] = (explained.prediction["probabilities"]["positive"], explained.attributions,
                                [p for _, p in clf.reading_trajectory(text).points])
    finally:
        torch.backends.mkldnn.enabled = before
    assert answers[False][0] == pytest.approx(answers[True][0], abs=1e-6)
    assert answers[False][1] == pytest.approx(answers[True][1], abs=1e-5)
    assert answers[False][2] == pytest.approx(answers[True][2], abs=1e-6)
