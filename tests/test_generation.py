"""NextWordPipeline on a small untrained model: probabilities, sampling and scoring are consistent."""

import math
import time

import pytest
import torch

from seqdemo.generation import NextWordPipeline


@pytest.fixture(scope="module")
def lm(tiny_nextword, tiny_tokenizer):
    return NextWordPipeline(tiny_nextword, tiny_tokenizer, torch.device("cpu"), source="test")


def test_next_words_are_whole_words_sorted_and_sum_at_most_one(lm):
    words = lm.next_words("The acting was", k=5)
    assert len(words) == 5
    probabilities = [p for _, p in words]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1 + 1e-6
    assert all(w and w == w.strip() for w, _ in words)
    assert len({w for w, _ in words}) == 5


def test_single_piece_words_have_exactly_the_model_probability(lm):
    """With one piece per word, each word's probability is the model's probability of the pieces that spell it."""
    ids, _ = lm.prompt_ids("The movie")
    log_probs, _ = lm.read(ids)
    starts = log_probs.masked_fill(~lm.word_starts, -math.inf)
    expected: dict[str, float] = {}
    for value, index in zip(*starts.topk(64)):
        word = lm.tokenizer.decode([int(index)]).strip()
        expected[word] = expected.get(word, 0.0) + math.exp(float(value))
    words = lm.next_words("The movie", k=10, candidates=64, max_pieces=1)
    for word, probability in words:
        assert probability == pytest.approx(expected[word], rel=1e-6)
    assert [w for w, _ in words] == sorted(expected, key=lambda w: -expected[w])[:10]


def test_same_seed_same_text_and_it_streams(lm):
    a = lm.generate("The acting was", max_new_tokens=12, seed=3)
    b = lm.generate("The acting was", max_new_tokens=12, seed=3)
    assert a == b and a.startswith("The acting was")
    steps = list(lm.stream("The acting was", max_new_tokens=12, seed=3))
    assert steps[-1] == a and 1 <= len(steps) <= 12
    assert all(later.startswith(earlier) or len(earlier) >= len(later) - 8 for earlier, later in zip(steps, steps[1:]))


def test_greedy_decoding_follows_the_argmax(lm):
    text = lm.generate("The plot", max_new_tokens=1, temperature=0)
    ids, _ = lm.prompt_ids("The plot")
    log_probs, _ = lm.read(ids)
    log_probs = log_probs.masked_fill(lm.never_sampled, -math.inf)
    assert text == "The plot" + lm.tokenizer.decode(ids[1:] + [int(log_probs.argmax())])[len(lm.tokenizer.decode(ids[1:])):]


@pytest.mark.parametrize(
    "settings", [{"temperature": -1}, {"top_p": 0}, {"top_k": -2}, {"max_new_tokens": 0}, {"max_new_tokens": 10_000}]
)
def test_bad_sampling_settings_are_refused(lm, settings):
    with pytest.raises(ValueError):
        lm.generate("The plot", **settings)


def test_perplexity_and_bits_per_char_agree(lm):
    text = "The plot was thin but the acting saved it."
    score = lm.score(text)
    nll_nats = math.log(score["perplexity"]) * score["tokens"]
    assert score["bits_per_char"] == pytest.approx(nll_nats / math.log(2) / len(text), rel=1e-6)
    assert lm.perplexity(text) == pytest.approx(score["perplexity"])
    assert lm.bits_per_char(text) == pytest.approx(score["bits_per_char"])
    # Surprisal is the same log-probabilities, token by token.
    bits = sum(row["bits"] for row in lm.surprisal(text))
    assert bits == pytest.approx(nll_nats / math.log(2), rel=1e-5)


def test_batched_scoring_equals_one_by_one(lm):
    texts = ["Short.", "A somewhat longer sentence about a film.", "Mid length text here."]
    batched = lm.score_ids(texts, batch_size=3, chunk=4)
    for text, (ids, log_probs, _) in zip(texts, batched):
        alone = lm.score_ids([text])[0][1]
        assert torch.allclose(log_probs, alone, atol=1e-5)


@pytest.mark.parametrize("call", ["next_words", "generate", "perplexity", "bits_per_char", "surprisal"])
@pytest.mark.parametrize("text", ["", "  \n "])
def test_empty_text_is_a_plain_value_error(lm, call, text):
    with pytest.raises(ValueError, match="empty"):
        getattr(lm, call)(text)


@pytest.mark.parametrize("text", ["😀🎬", "这部电影", "הסרט", "a\x00b\x1b", "<img src=x onerror=alert(1)>"])
def test_unusual_text_round_trips(lm, text):
    assert lm.generate(text, max_new_tokens=3).startswith(text)
    assert len(lm.surprisal(text)) == len(lm.tokenizer.encode(text))
    assert lm.next_words(text, k=3)


def test_a_megabyte_returns_within_seconds(lm):
    text = "the film " * 120_000  # ~1 MB
    started = time.perf_counter()
    score = lm.score(text)
    lm.next_words(text, k=3)
    lm.generate(text, max_new_tokens=3)
    assert time.perf_counter() - started < 15
    assert score["truncated"] and score["tokens"] == lm.max_tokens - 1


def test_a_model_vocabulary_larger_than_the_tokenizer_is_never_sampled_beyond_it(tiny_tokenizer):
    from seqdemo.models import NextWordLSTM

    torch.manual_seed(0)
    model = NextWordLSTM(vocab_size=tiny_tokenizer.vocab_size + 50, embed_dim=8, hidden_size=8).eval()
    wide = NextWordPipeline(model, tiny_tokenizer, torch.device("cpu"), source="test")
    assert wide.never_sampled[tiny_tokenizer.vocab_size :].all()
    assert wide.generate("The plot", max_new_tokens=20, temperature=2.0, top_k=0, top_p=1.0, seed=1)
    assert wide.next_words("The plot", k=3)
