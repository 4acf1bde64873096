"""SentimentPipeline on a small untrained model: the contract, not the accuracy (see test_shipped.py for that)."""

import math

import pytest
import torch

from seqdemo.sentiment import SentimentPipeline


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


def test_integrated_gradients_add_up_to_the_decision(clf):
    """Completeness: the token attributions sum to log-odds(text) - log-odds(all-zero baseline)."""
    explanation = clf.explain("The plot was thin but the acting saved it", steps=128)
    p = explanation.prediction["probabilities"]
    log_odds = math.log(p["positive"]) - math.log(p["negative"])
    assert len(explanation.attributions) == len(explanation.tokens)
    assert sum(explanation.attributions) == pytest.approx(log_odds - explanation.baseline_log_odds, abs=2e-3)


def test_trajectory_ends_at_the_prediction(clf):
    explanation = clf.explain("not good at all")
    lengths = [n for n, _ in explanation.trajectory]
    assert lengths == list(range(1, len(explanation.tokens) + 1))
    assert explanation.trajectory[-1][1] == pytest.approx(explanation.prediction["probabilities"]["positive"], abs=1e-5)
    long = clf.explain("word " * 300, trajectory_points=16)
    assert len(long.trajectory) == 16 and long.trajectory[-1][0] == len(long.tokens)
