"""seqdemo.experiments.evaluate produces the README's numbers: each metric is checked against an independent computation."""

import json
import math
import shutil

import pytest
import torch

from seqdemo.experiments import evaluate
from seqdemo.experiments.data import CLOSING_SENTENCE, Review, closing_sentences
from seqdemo.inference.hub import load_folder


@pytest.fixture
def folders(tmp_path, tiny_checkpoints):
    """Copies of the tiny checkpoints with the kind in config.json, as seqdemo.experiments.train writes it."""
    result = {}
    for kind, source in tiny_checkpoints.items():
        folder = tmp_path / kind
        shutil.copytree(source, folder)
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({"kind": kind, **config}))
        result[kind] = folder
    return result


TEXTS = ["The movie was great.", "Dull plot.", "Not good at all!", "I loved it.", "A wonderful film.", "Awful."]


def test_accuracy_counts_agreement_per_source(folders):
    pipeline = load_folder("sentiment", folders["sentiment"], device="cpu")
    predicted = [pipeline.labels.index(p["label"]) for p in pipeline.predict(TEXTS)]
    agreeing = [Review(t, label, "imdb") for t, label in zip(TEXTS, predicted)]
    disagreeing = [Review(t, 1 - label, "rotten_tomatoes") for t, label in zip(TEXTS, predicted)]
    assert evaluate.accuracy_by_source(pipeline, agreeing + disagreeing) == {"imdb": 1.0, "rotten_tomatoes": 0.0}
    half = agreeing[:3] + [Review(r.text, 1 - r.label, r.source) for r in agreeing[3:]]
    assert evaluate.accuracy(pipeline, half) == 0.5


def test_bits_per_character_match_token_by_token_scoring(folders):
    pipeline = load_folder("nextword", folders["nextword"], device="cpu")
    reviews = [Review(t, 1, "imdb") for t in TEXTS] + [Review("not an imdb review", 0, "rotten_tomatoes")]
    results = evaluate.nextword_metrics(pipeline, reviews)
    nll, tokens, chars = 0.0, 0, 0
    for text in TEXTS:  # one text at a time, one step at a time, state carried: no batching, no padding
        ids = [pipeline.tokenizer.bos_id, *pipeline.tokenizer.encode(text)]
        state = None
        with torch.no_grad():
            for current, following in zip(ids, ids[1:]):
                logits, state = pipeline.model(torch.tensor([[current]]), state)
                nll -= float(logits[0, -1].log_softmax(-1)[following])
        tokens += len(ids) - 1
        chars += len(text)
    assert results["imdb test reviews"] == len(TEXTS)
    assert results["bits per character"] == pytest.approx(nll / math.log(2) / chars, abs=1e-4)
    assert results["per-token perplexity"] == pytest.approx(math.exp(nll / tokens), abs=0.01)


def test_bag_of_words_baseline_is_trained_and_scored_per_source():
    good = ["a great wonderful film", "great acting, wonderful story", "wonderful and great"]
    bad = ["an awful boring film", "boring acting, awful story", "awful and boring"]
    train = [Review(t, 1, "imdb") for t in good] + [Review(t, 0, "imdb") for t in bad]
    test = [Review("great, wonderful", 1, "imdb"), Review("awful, boring", 0, "rotten_tomatoes"),
            Review("boring and awful", 1, "rotten_tomatoes")]  # the last one's label is wrong on purpose
    results = evaluate.bag_of_words_baseline(train * 4, test)
    assert results == {"baseline TF-IDF+LR accuracy imdb": 1.0, "baseline TF-IDF+LR accuracy rotten_tomatoes": 0.5}


def test_main_writes_metrics_and_the_card_quotes_them(folders, monkeypatch):
    rows = [Review(t, i % 2, source) for i, t in enumerate(TEXTS) for source in ("imdb", "rotten_tomatoes")]
    monkeypatch.setattr(evaluate, "load_splits", lambda: {"train": rows, "valid": [], "test": rows})
    evaluate.main([str(folders["sentiment"]), "--device", "cpu", "--no-baseline"])
    metrics = json.loads((folders["sentiment"] / "metrics.json").read_text())
    assert set(metrics["results"]) == {"accuracy imdb", "accuracy rotten_tomatoes",
                                       "accuracy rotten_tomatoes, typed casually"}
    card = (folders["sentiment"] / "README.md").read_text()
    assert metrics["command"] in card
    for name, value in metrics["results"].items():
        assert f"| {name} | {value} |" in card


def test_sources_limit_what_is_measured(folders, monkeypatch):
    rows = [Review(t, i % 2, source) for i, t in enumerate(TEXTS) for source in ("imdb", "rotten_tomatoes")]
    monkeypatch.setattr(evaluate, "load_splits", lambda: {"train": rows, "valid": [], "test": rows})
    evaluate.main([str(folders["sentiment"]), "--device", "cpu", "--no-baseline", "--sources", "imdb"])
    metrics = json.loads((folders["sentiment"] / "metrics.json").read_text())
    assert set(metrics["results"]) == {"accuracy imdb"} and metrics["test rows"] == len(TEXTS)


def test_split_valid_measures_the_validation_rows_and_leaves_the_test_record_alone(folders, monkeypatch, capsys):
    pipeline = load_folder("sentiment", folders["sentiment"], device="cpu")
    predicted = [pipeline.labels.index(p["label"]) for p in pipeline.predict(TEXTS)]
    valid = [Review(t, label, "imdb") for t, label in zip(TEXTS, predicted)]  # all right on IMDB
    valid += [Review(t, 1 - label, "rotten_tomatoes") for t, label in zip(TEXTS, predicted)]  # all wrong on RT
    test = [Review(t, 0, "imdb") for t in TEXTS]
    monkeypatch.setattr(evaluate, "load_splits", lambda: {"train": test, "valid": valid, "test": test})
    card_before = (folders["sentiment"] / "README.md").read_bytes()
    assert not (folders["sentiment"] / "metrics.json").exists()
    evaluate.main([str(folders["sentiment"]), "--device", "cpu", "--no-baseline", "--split", "valid"])
    printed = json.loads(capsys.readouterr().out)
    # The closing sentences of the IMDB validation reviews are a source of their own (here the two reviews long
    # enough to have one are a single sentence, so each closing sentence is its review, read right).
    closing = closing_sentences(valid)
    assert len(closing) == 2 and printed["valid rows"] == len(valid) + len(closing)
    results = printed["results"]
    assert results["accuracy imdb"] == 1.0 and results["accuracy rotten_tomatoes"] == 0.0
    assert results[f"accuracy {CLOSING_SENTENCE}"] == 1.0
    assert results["mean over sources"] == 0.6667  # per source, not per row (8 of 14)
    assert not (folders["sentiment"] / "metrics.json").exists()
    assert (folders["sentiment"] / "README.md").read_bytes() == card_before


def test_a_config_without_a_kind_is_refused():
    from seqdemo.experiments.card import kind_of

    assert kind_of({"kind": "nextword", "labels": []}) == "nextword"  # the written kind wins over any guess
    with pytest.raises(ValueError, match="names no model kind"):
        kind_of({"labels": ["negative", "positive"]})
