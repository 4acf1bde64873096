"""Measures a checkpoint on the test split and writes the numbers into its folder (metrics.json and the card).

    python -m seqdemo.experiments.evaluate checkpoints/sentiment   # accuracy per source, and a TF-IDF baseline beside it
    python -m seqdemo.experiments.evaluate checkpoints/nextword    # perplexity and bits per character on IMDB test reviews
    python -m seqdemo.experiments.evaluate FOLDER --sources rotten_tomatoes --no-baseline   # one source's test rows only
    python -m seqdemo.experiments.evaluate FOLDER --split valid   # the validation rows training chooses by; prints, writes nothing

The sentiment run also trains and scores the bag-of-words baseline (scikit-learn: TF-IDF of 1-2-grams + logistic
regression) on the very same split, so the comparison is measured here, not quoted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from seqdemo.core.device import device_name
from seqdemo.core.text import casual
from seqdemo.experiments.card import METRICS_FILE, kind_of, read_json, write_model_card
from seqdemo.experiments.data import Review, closing_sentences, load_splits
from seqdemo.inference.generation import perplexity_and_bits_per_char
from seqdemo.inference.hub import load_folder


def accuracy(pipeline, reviews: list[Review]) -> float:
    predicted = pipeline.predict([r.text for r in reviews], batch_size=64)
    return sum(p["label"] == pipeline.labels[r.label] for p, r in zip(predicted, reviews)) / len(reviews)


def accuracy_by_source(pipeline, reviews: list[Review]) -> dict[str, float]:
    return {
        source: round(accuracy(pipeline, [r for r in reviews if r.source == source]), 4)
        for source in sorted({r.source for r in reviews})
    }


def validation_rows(valid: list[Review], sources: list[str]) -> list[Review]:
    """The rows a classifier is chosen by: the validation rows of `sources`, and the closing sentences of their IMDB
    reviews as a source of their own. Chosen by 426 Rotten Tomatoes sentences alone, run after run fitted them:
    validation rose while the test split stayed where it was."""
    rows = [r for r in valid if r.source in sources]
    return rows + closing_sentences(rows)


def mean_over_sources(by_source: dict[str, float]) -> float:
    """The number training picks its epoch by: each source counts alike, so short texts count as much as reviews."""
    return sum(by_source.values()) / len(by_source)


def sentiment_metrics(pipeline, rows: list[Review], with_mean: bool = False) -> dict[str, float]:
    by_source = accuracy_by_source(pipeline, rows)
    results = {f"accuracy {source}": value for source, value in by_source.items()}
    if with_mean:
        results["mean over sources"] = round(mean_over_sources(by_source), 4)
    # Short sentences as people type them into a demo: lower case, no punctuation.
    typed = [Review(casual(r.text) or r.text, r.label, r.source) for r in rows if r.source == "rotten_tomatoes"]
    if typed:
        results["accuracy rotten_tomatoes, typed casually"] = round(accuracy(pipeline, typed), 4)
    return results


def bag_of_words_baseline(train: list[Review], test: list[Review]) -> dict[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    features = vectorizer.fit_transform([r.text for r in train])
    classifier = LogisticRegression(C=4.0, max_iter=2000).fit(features, [r.label for r in train])
    results = {}
    for source in sorted({r.source for r in test}):
        rows = [r for r in test if r.source == source]
        predicted = classifier.predict(vectorizer.transform([r.text for r in rows]))
        results[f"baseline TF-IDF+LR accuracy {source}"] = round(
            sum(int(p) == r.label for p, r in zip(predicted, rows)) / len(rows), 4
        )
    return results


def nextword_metrics(pipeline, rows: list[Review], split: str = "test") -> dict[str, float]:
    texts = [r.text for r in rows if r.source == "imdb"]
    nll_nats, tokens, chars = 0.0, 0, 0
    for text, (ids, log_probs, truncated) in zip(texts, pipeline.score_ids(texts, batch_size=32)):
        nll_nats -= float(log_probs.sum())
        tokens += len(ids)
        chars += len(pipeline.tokenizer.decode(ids)) if truncated else len(text)
    perplexity, bits_per_char = perplexity_and_bits_per_char(nll_nats, tokens, chars)
    return {
        f"imdb {split} reviews": len(texts),
        "per-token perplexity": round(perplexity, 2),
        "bits per character": round(bits_per_char, 4),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="checkpoint folder (config.json, model.safetensors, tokenizer.model)")
    parser.add_argument("--no-baseline", action="store_true", help="sentiment: skip the TF-IDF baseline")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--sources", default="imdb,rotten_tomatoes",
                        help="comma-separated sources of the rows to measure on (the language model reads IMDB's)")
    parser.add_argument("--split", choices=("test", "valid"), default="test",
                        help="valid: measure the stored weights on the validation rows that training chooses by (with "
                             "the closing sentences of the IMDB validation reviews), and "
                             "leave metrics.json and the card (which report test) untouched")
    args = parser.parse_args(argv)

    kind = kind_of(read_json(args.folder / "config.json"))
    pipeline = load_folder(kind, args.folder, device=args.device)
    splits = load_splits()
    started = time.time()
    sources = args.sources.split(",")
    if kind == "sentiment" and args.split == "valid":
        rows = validation_rows(splits["valid"], sources)
    else:
        rows = [r for r in splits[args.split] if r.source in sources]
    if kind == "sentiment":
        results = sentiment_metrics(pipeline, rows, with_mean=args.split == "valid")
        if not args.no_baseline:
            results.update(bag_of_words_baseline(splits["train"], rows))
    else:
        results = nextword_metrics(pipeline, rows, args.split)
    metrics = {
        "command": "python -m seqdemo.experiments.evaluate " + " ".join(argv if argv is not None else sys.argv[1:]),
        "hardware": device_name(pipeline.device),
        f"{args.split} rows": len(rows),
        "seconds": round(time.time() - started),
        "results": results,
    }
    if args.split == "test":
        (args.folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        write_model_card(args.folder)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
