"""The shipped checkpoints in checkpoints/: they load without the Hub and behave like trained models."""

import math

import pytest

from seqdemo import load
from seqdemo.experiments.card import METRICS_FILE, read_json
from seqdemo.inference.hub import CHECKPOINTS


@pytest.fixture(scope="module")
def clf(monkeypatch_module):
    return load("sentiment", device="cpu")


@pytest.fixture(scope="module")
def lm(monkeypatch_module):
    return load("nextword", device="cpu")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SEQDEMO_SENTIMENT_REPO", raising=False)
        mp.delenv("SEQDEMO_NEXTWORD_REPO", raising=False)
        yield mp


def test_checkpoints_are_complete_and_small():
    total = 0
    for kind in ("sentiment", "nextword"):
        folder = CHECKPOINTS / kind
        for name in ("config.json", "model.safetensors", "tokenizer.model", "README.md", "training.json", METRICS_FILE):
            assert (folder / name).is_file(), f"{kind}/{name}"
        assert "## Test metrics" in (folder / "README.md").read_text()
        total += sum(f.stat().st_size for f in folder.iterdir())
    assert total <= 40 * 2**20  # the bound for all of checkpoints/


def test_the_model_cards_quote_the_measured_metrics():
    for kind in ("sentiment", "nextword"):
        metrics = read_json(CHECKPOINTS / kind / METRICS_FILE)
        card = (CHECKPOINTS / kind / "README.md").read_text()
        assert metrics["command"] in card
        for name, value in metrics["results"].items():
            assert f"| {name} | {value} |" in card


@pytest.mark.parametrize(
    "text, label",
    [
        ("I loved it", "positive"),
        ("A wonderful, moving film with brilliant performances.", "positive"),
        ("one of the best movies i have ever seen", "positive"),
        pytest.param(
            "The plot was thin but the acting saved it", "positive",
            # Strict: the day a retrained checkpoint reads this contrast right, this mark must go.
            marks=pytest.mark.xfail(strict=True, reason="the CPU-trained shipped classifier reads it as negative"),
        ),
        pytest.param(
            "not bad at all", "positive",
            marks=pytest.mark.xfail(strict=True, reason="the CPU-trained shipped classifier reads it as negative"),
        ),
        ("not good at all", "negative"),
        ("Terrible acting, a boring plot and a waste of two hours.", "negative"),
        ("this was the worst film of the year", "negative"),
    ],
)
def test_obvious_sentences_are_classified_right(clf, text, label):
    assert clf.source.startswith("local checkpoints/sentiment")
    assert clf.predict(text)[0]["label"] == label


# Negation and contrast probes, written by hand before the classifier was trained on the Sentiment Treebank, in
# forms its phrases and seqdemo.experiments.data's negation templates do not use: what a visitor types to test "not".
NEGATION_PROBES = [
    # negated negatives
    ("This was not a bad movie at all.", "positive"),
    ("Never a dull moment.", "positive"),
    ("I was not disappointed.", "positive"),
    ("Not once did I look at my watch.", "positive"),
    ("The film is not boring for a second.", "positive"),
    ("Honestly, the ending was not predictable.", "positive"),
    ("There is no weak performance in the whole cast.", "positive"),
    ("I didn't regret watching it.", "positive"),
    ("The jokes never fall flat.", "positive"),
    ("You won't be bored.", "positive"),
    # negated positives
    ("This movie was not good.", "negative"),
    ("I did not enjoy a single minute.", "negative"),
    ("The story is not interesting at all.", "negative"),
    ("Not funny, not clever, not worth it.", "negative"),
    ("I wouldn't call it a great film.", "negative"),
    ("The acting was never convincing.", "negative"),
    # contrasts: the clause after "but" or "yet" carries the verdict
    ("The first half drags, but the ending is wonderful.", "positive"),
    ("Great cast, but the script is a mess.", "negative"),
    ("It looks beautiful but it is painfully dull.", "negative"),
    ("The effects are cheap but the story kept me hooked.", "positive"),
    ("I expected to hate it, but I loved every minute.", "positive"),
    ("Some good ideas, but the film never comes together.", "negative"),
    ("The dialogue is clumsy, yet the performances carry it.", "positive"),
    ("The trailer was exciting, but the movie is a letdown.", "negative"),
]


@pytest.mark.xfail(strict=True, reason="the shipped classifier gets 14 of 24 (negated negatives fail as a class); the "
                   "treebank runs of docs/results.md reached 20 of 24 but validated lower, so none was shipped")
def test_negation_and_contrast_probes_are_mostly_right(clf):
    """The bar of the negation issue: at least 90% of the hand-written probes right (all are listed when it fails)."""
    texts = [text for text, _ in NEGATION_PROBES]
    predicted = [p["label"] for p in clf.predict(texts)]
    wrong = [(text, label) for (text, label), got in zip(NEGATION_PROBES, predicted) if got != label]
    assert len(wrong) <= 0.1 * len(NEGATION_PROBES), wrong


def test_next_words_of_an_ordinary_prompt_are_plausible(lm):
    words = lm.next_words("The acting was", k=5)
    assert all(word.isalpha() for word, _ in words[:3])
    plausible = {"a", "the", "not", "very", "so", "good", "great", "excellent", "terrible", "bad", "poor", "also",
                 "just", "really", "pretty", "quite", "superb", "awful", "ok", "fine", "horrible", "decent", "too"}
    assert plausible & {word.lower() for word, _ in words}
    assert sum(p for _, p in words) <= 1


def test_the_language_model_prefers_english_to_its_shuffle(lm):
    sentence = "The acting was good, but the story was far too long and the ending made no sense."
    shuffled = " ".join(sorted(sentence.split()))
    assert lm.bits_per_char(sentence) < lm.bits_per_char(shuffled) - 0.5
    assert math.isfinite(lm.perplexity(sentence))


@pytest.mark.parametrize(
    "text, word", [("I loved it", " loved"), ("This was a terrible movie", " terrible"), ("a boring film", " boring")]
)
def test_the_sentiment_word_pushes_hardest(clf, text, word):
    """Integrated gradients (the page's default) put the strongest push on the word that carries the sentiment, in
    its direction. ("evidence" says where the verdict was read: in the 2-layer model, a token or two later.)"""
    explanation = clf.explain(text, method="integrated_gradients")
    token, push = max(zip(explanation.tokens, explanation.attributions), key=lambda pair: abs(pair[1]))
    assert token == word
    assert (push > 0) == (explanation.prediction["label"] == "positive")
