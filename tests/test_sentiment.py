"""SentimentPipeline on a small untrained model: the contract, not the accuracy (see test_shipped.py for that)."""

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


def test_a_megabyte_is_truncated_quickly_and_says_so(clf):
    import time

    started = time.perf_counter()
    result = clf.predict("a fine movie " * 80_000)[0]  # ~1 MB
    assert time.perf_counter() - started < 10
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
