"""The Sentiment tab's honesty lines: a text mostly outside what the classifier learned from, and a wrong answer on
one of the page's own examples, each said beside the verdict while the real numbers stay."""

from __future__ import annotations

import re

import pytest
import torch

from seqdemo.core.models import SentimentClassifier
from seqdemo.core.text import letter_counts, word_count
from seqdemo.inference.sentiment import SentimentPipeline
from seqdemo.web import presentation as show
from seqdemo.web.page_parts import EXAMPLES, INTENDED, intended_label
from seqdemo.web.sentiment_tab import SentimentHandlers

ENGLISH = "The plot was thin but the acting saved it, and I would watch it again."


def test_letters_and_words_are_counted_by_script():
    # Counted by hand: n a ï v e are Latin (5), 电 影 are not (2); the digits and the emoji are no letters.
    assert letter_counts("naïve 电影 10/10 🙂") == (7, 5)
    assert word_count("I don't like 10/10 电影") == 5  # I, don, t, like, 电影
    assert word_count("🙂🎬👍 !!! 10/10") == 0


@pytest.mark.parametrize("text, says", [
    ("这部电影很好看。映画は良かった", "outside the Latin alphabet"),
    ("הסרט היה טוב מאוד", "outside the Latin alphabet"),
    ("🙂🎬👍", "no words"),
    ("10/10 !!!", "no words"),
    ("Bad.", "one or two words"),
    ("Awful film", "one or two words"),
    ("I loved it 🙂🎬👍🎉😍", "bytes of characters"),
])
def test_texts_mostly_outside_the_training_data_get_a_reason(tiny_tokenizer, text, says):
    ids = tiny_tokenizer.encode(text)
    assert says in show.domain_reason(text, ids, tiny_tokenizer)


@pytest.mark.parametrize("text", [ENGLISH, "I loved it", "not good at all", "A café scene, naïve but warm."])
def test_english_reviews_get_no_such_line(tiny_tokenizer, text):
    assert show.domain_reason(text, tiny_tokenizer.encode(text), tiny_tokenizer) == ""


def test_the_unknown_share_counts_byte_pieces_of_what_was_read(tiny_tokenizer):
    """Byte pieces are counted from the ids, not guessed from the text: the count the line gives is the tokenizer's."""
    text = "I loved it 🙂🎬👍🎉😍"
    ids = tiny_tokenizer.encode(text)
    byte_pieces = sum(1 for piece in tiny_tokenizer.sp.id_to_piece(ids) if re.fullmatch(r"<0x[0-9A-F]{2}>", piece))
    assert f"{byte_pieces} of the {len(ids)} pieces" in show.domain_reason(text, ids, tiny_tokenizer)


def biased(tiny_sentiment, tokenizer, towards: int) -> SentimentPipeline:
    """The tiny classifier with its bias pushed so hard towards label `towards` that every text gets it."""
    clone = SentimentClassifier(vocab_size=tiny_sentiment.embedding.num_embeddings, embed_dim=16,
                                hidden_size=12).eval()
    clone.load_state_dict(tiny_sentiment.state_dict())
    with torch.no_grad():
        clone.classifier.bias.copy_(torch.tensor([10.0, -10.0] if towards == 0 else [-10.0, 10.0]))
    return SentimentPipeline(clone, tokenizer, device=torch.device("cpu"), source="biased test model")


def plain(html_text: str) -> str:
    return re.sub(r"<[^>]+>", "", html_text)


def test_every_example_has_a_reading_and_any_case_or_punctuation_finds_it():
    assert all(example in INTENDED for example in EXAMPLES)
    assert intended_label("  Not good at all! ") == "negative"
    assert intended_label("i LOVED it.") == "positive"
    assert intended_label("I loved it a lot") is None


@pytest.mark.parametrize("text", [*EXAMPLES, "not bad at all"])
def test_a_wrong_answer_on_an_example_is_said_with_the_word_that_pushed_hardest(tiny_sentiment, tiny_tokenizer,
                                                                                 text):
    """Through the page's handler: a classifier made to answer the opposite of a person's reading gets the line,
    naming the word whose push (from the explanation itself) went furthest towards its answer; one made to agree
    gets no line. The verdict and its probabilities are the model's own either way."""
    person = INTENDED[text]
    for verdict in (0, 1):
        pipe = biased(tiny_sentiment, tiny_tokenizer, verdict)
        probabilities, _, _, summary, _ = SentimentHandlers(pipe).classify(text, "evidence")
        said = pipe.labels[verdict]
        assert max(probabilities, key=probabilities.get) == said
        if said == person:
            assert "wrong" not in plain(summary)
            continue
        line = plain(summary)
        assert f"The model gets this example wrong. A person reads it as {person}; the model says {said}" in line
        explanation = pipe.explain(text, method="evidence")
        sign = 1 if verdict == 1 else -1
        words = [w for w in show.word_spans(tiny_tokenizer, explanation.ids, explanation.attributions)
                 if w.text.strip() and sign * w.value > 0]
        if words:  # the word named is the one the explanation pushes furthest towards the wrong answer
            top = max(words, key=lambda w: sign * w.value)
            assert f"“{top.text.strip()}” ({top.value:+.2f}" in line
        assert "trajectory" in line


def test_a_text_that_is_no_example_gets_no_wrong_answer_line(tiny_sentiment, tiny_tokenizer):
    for verdict in (0, 1):
        summary = SentimentHandlers(biased(tiny_sentiment, tiny_tokenizer, verdict)).classify(ENGLISH)[3]
        assert "wrong" not in plain(summary)


def test_the_page_qualifies_an_out_of_domain_verdict_and_still_shows_it(pipelines):
    handlers = SentimentHandlers(pipelines[0])
    probabilities, _, _, summary, _ = handlers.classify("这部电影很好看", "evidence")
    assert probabilities == pytest.approx(pipelines[0].predict("这部电影很好看")[0]["probabilities"])
    assert "Mostly outside what it learned" in summary and "IMDB" in summary and "Rotten Tomatoes" in summary
    assert "Mostly outside" not in handlers.classify(ENGLISH, "evidence")[3]
