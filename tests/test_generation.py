"""NextWordPipeline on a small untrained model: probabilities, sampling and scoring are consistent."""

import copy
import math

import pytest
import torch

from seqdemo.inference.generation import WORD_TAIL, NextWordPipeline, sampling_settings


@pytest.fixture(scope="module")
def lm(tiny_nextword, tiny_tokenizer):
    return NextWordPipeline(tiny_nextword, tiny_tokenizer, torch.device("cpu"), source="test")


@pytest.fixture(scope="module")
def lm64(tiny_nextword, tiny_tokenizer):
    """The same untrained model in float64. Its next-token distributions are nearly flat, so the float32 noise
    between a batched step and a fresh read could swap two near-tied argmaxes; in float64 (rounded to float32
    afterwards) both ways agree."""
    return NextWordPipeline(copy.deepcopy(tiny_nextword).double(), tiny_tokenizer, torch.device("cpu"), source="test")


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
    # Update k is the text after k tokens: what a k-token generation with the same seed gives (sampling draws
    # once per token, so the first k draws are the same).
    assert steps == [lm.generate("The acting was", max_new_tokens=k, seed=3) for k in range(1, len(steps) + 1)]



def test_the_library_reads_seeds_as_the_page_does(lm, monkeypatch):
    """-1 asks for a fresh random seed (never 2**64 - 1), other negative seeds are refused, large ones wrap."""
    from seqdemo.core.validate import SEED_RANGE, InputError

    seeded, real = [], torch.Generator

    class Recording:  # torch's Generator, with the seeds it is given written down
        def __init__(self, *args, **kwargs):
            self.generator = real(*args, **kwargs)

        def manual_seed(self, seed):
            seeded.append(seed)
            return self.generator.manual_seed(seed)

    monkeypatch.setattr(torch, "Generator", Recording)
    lm.generate("The acting was", max_new_tokens=2, seed=SEED_RANGE + 3)
    lm.generate("The acting was", max_new_tokens=2, seed=-1)
    assert seeded == [3]  # the large seed wrapped to 3; -1 seeded no generator of its own
    with pytest.raises(InputError, match="at least 0"):
        lm.generate("The acting was", max_new_tokens=6, seed=-2)

@pytest.mark.parametrize("seed", range(6))
def test_whole_words_finish_the_last_word_and_stop_before_the_next(lm, monkeypatch, seed):
    """With whole_words the pieces drawn past max_new_tokens continue the last word, and the draw that would
    start a new word (or end the text) is where it stops: the text ends on a word boundary."""
    drawn: list[int] = []
    sample = lm.sample
    monkeypatch.setattr(lm, "sample", lambda *args: drawn.append(sample(*args)) or drawn[-1])
    text = lm.generate("The acting was", max_new_tokens=3, temperature=1.5, top_k=0, top_p=1.0, seed=seed,
                       whole_words=True)
    kept, stop = drawn[:-1], drawn[-1]
    if len(drawn) <= 3 or len(drawn) == 3 + WORD_TAIL:  # ended by the model, or ran out of tail
        kept, stop = drawn, None
    assert not any(lm.word_starts[t] for t in kept[3:])
    assert stop is None or lm.word_starts[stop] or stop == lm.tokenizer.eos_id
    ids, _ = lm.prompt_ids("The acting was")
    assert text == "The acting was" + lm.tokenizer.decode(ids + kept)[len(lm.tokenizer.decode(ids)):]


def greedy_tokens(lm, prompt: str, n: int) -> list[int]:
    """The argmax continuation, each token found by reading the whole sequence again (no carried state)."""
    ids, _ = lm.prompt_ids(prompt)
    new: list[int] = []
    for _ in range(n):
        log_probs, _ = lm.read(ids + new)
        new.append(int(log_probs.masked_fill(lm.never_sampled, -math.inf).argmax()))
    return new


def test_the_stream_adds_one_token_per_update_in_reading_order(lm64):
    lm = lm64  # float64: the carried state and the fresh reads pick the same argmax (see lm64)
    prompt = "The plot was"
    new = greedy_tokens(lm, prompt, 8)
    assert lm.tokenizer.eos_id not in new and len(set(new)) > 1  # a continuation whose order shows
    ids, _ = lm.prompt_ids(prompt)
    prompt_text = lm.tokenizer.decode(ids)
    expected = [prompt + lm.tokenizer.decode(ids + new[:k])[len(prompt_text):] for k in range(1, 9)]
    assert list(lm.stream(prompt, max_new_tokens=8, temperature=0)) == expected


def draws(lm, log_probs, n: int = 300, **settings) -> set[int]:
    generator = torch.Generator().manual_seed(0)
    return {lm.sample(log_probs, generator=generator, **settings) for _ in range(n)}


def test_top_k_keeps_only_the_k_likeliest_tokens(lm):
    log_probs = torch.full((lm.never_sampled.numel(),), -math.inf)
    allowed = [i for i in range(len(log_probs)) if not lm.never_sampled[i]][:6]
    log_probs[allowed] = torch.tensor([0.30, 0.25, 0.20, 0.15, 0.06, 0.04]).log()
    assert draws(lm, log_probs, temperature=1.0, top_k=0, top_p=1.0) == set(allowed)  # unfiltered: all six
    assert draws(lm, log_probs, temperature=1.0, top_k=2, top_p=1.0) == set(allowed[:2])


def test_top_p_keeps_the_smallest_set_that_reaches_p(lm):
    log_probs = torch.full((lm.never_sampled.numel(),), -math.inf)
    allowed = [i for i in range(len(log_probs)) if not lm.never_sampled[i]][:4]
    log_probs[allowed] = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    assert draws(lm, log_probs, temperature=1.0, top_k=0, top_p=1.0) == set(allowed)
    assert draws(lm, log_probs, temperature=1.0, top_k=0, top_p=0.75) == set(allowed[:2])  # 0.5 < 0.75 <= 0.8
    assert draws(lm, log_probs, temperature=1.0, top_k=0, top_p=0.5) == set(allowed[:1])


def reference_next_words(lm, prompt: str, candidates: int, max_pieces: int) -> tuple[dict[str, float], dict]:
    """next_words computed the slow way: each candidate word built piece by piece by reading the whole prompt
    again (no carried state), its probability the product of its pieces', candidates that spell the same word
    added up. Returns ({word: probability}, {word: the most pieces a candidate spelling it had})."""
    ids, _ = lm.prompt_ids(prompt)
    log_probs, _ = lm.read(ids)
    # Only pieces that start a word are candidates (a tiny vocabulary may hold fewer than `candidates`).
    starts = log_probs.masked_fill(~lm.word_starts, -math.inf).topk(min(candidates, int(lm.word_starts.sum())))
    expected: dict[str, float] = {}
    pieces_of: dict[str, int] = {}
    for first_log_prob, first in zip(starts.values.tolist(), starts.indices.tolist()):
        pieces, total = [first], first_log_prob
        for _ in range(max_pieces - 1):
            following, _ = lm.read(ids + pieces)
            best = int(following.argmax())
            if lm.word_starts[best] or best == lm.tokenizer.eos_id:
                break
            pieces.append(best)
            total += float(following[best])
        word = lm.tokenizer.decode(pieces).strip()
        expected[word] = expected.get(word, 0.0) + math.exp(total)
        pieces_of[word] = max(pieces_of.get(word, 0), len(pieces))
    return expected, pieces_of


def test_a_multi_piece_word_gets_the_product_of_its_pieces(lm64):
    lm = lm64
    expected, pieces_of = reference_next_words(lm, "The movie", candidates=64, max_pieces=4)
    words = dict(lm.next_words("The movie", k=64, candidates=64, max_pieces=4))
    assert any(pieces_of[w] > 1 for w in words)  # the test is about multi-piece words: there must be some
    assert words.keys() == expected.keys()
    for word, probability in words.items():
        assert probability == pytest.approx(expected[word], rel=1e-4)


def test_candidates_that_spell_the_same_word_add_up(lm64, monkeypatch):
    """Two spellings of one word are one event: a stand-in decode that spells every candidate whose first piece
    has an even id as "even" (the rest "odd") must give "even" the sum of those candidates' probabilities."""
    lm = lm64
    monkeypatch.setattr(lm.tokenizer, "decode", lambda ids: " even" if list(ids)[0] % 2 == 0 else " odd")
    expected, _ = reference_next_words(lm, "The movie", candidates=16, max_pieces=3)
    words = dict(lm.next_words("The movie", k=2, candidates=16, max_pieces=3))
    assert words.keys() == {"even", "odd"}
    assert words == pytest.approx(expected, rel=1e-4)


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


def test_a_megabyte_is_truncated_and_answered(lm):
    # How fast: bench/ (no wall-clock assertions in tests).
    text = "the film " * 120_000  # ~1 MB
    score = lm.score(text)
    assert len(lm.next_words(text, k=3)) == 3
    assert lm.generate(text, max_new_tokens=3).startswith(text)
    assert score["truncated"] and score["tokens"] == lm.max_tokens - 1


def test_a_model_vocabulary_larger_than_the_tokenizer_is_never_sampled_beyond_it(tiny_tokenizer):
    from seqdemo.core.models import NextWordLSTM

    torch.manual_seed(0)
    model = NextWordLSTM(vocab_size=tiny_tokenizer.vocab_size + 50, embed_dim=8, hidden_size=8).eval()
    wide = NextWordPipeline(model, tiny_tokenizer, torch.device("cpu"), source="test")
    assert wide.never_sampled[tiny_tokenizer.vocab_size :].all()
    assert wide.generate("The plot", max_new_tokens=20, temperature=2.0, top_k=0, top_p=1.0, seed=1)
    assert wide.next_words("The plot", k=3)


# -- temperature, against a softmax computed by hand ----------------------------------------------------------------

# The chi-square statistic's 0.1% critical value for 5 degrees of freedom (six categories): the draws are seeded,
# so the test is deterministic; this only says how far from the reference a correct sampler may land.
CHI_SQUARE_5_DOF_P001 = 20.52


def six_token_log_probs(lm) -> tuple[torch.Tensor, list[int]]:
    log_probs = torch.full((lm.never_sampled.numel(),), -math.inf)
    allowed = [i for i in range(len(log_probs)) if not lm.never_sampled[i]][:6]
    log_probs[allowed] = torch.tensor([0.40, 0.25, 0.15, 0.10, 0.06, 0.04]).log()
    return log_probs, allowed


@pytest.mark.parametrize("temperature", [0.5, 3.0])
def test_draw_frequencies_follow_the_softmax_of_logits_over_temperature(lm, temperature):
    log_probs, allowed = six_token_log_probs(lm)
    expected = torch.softmax(log_probs[allowed] / temperature, -1)  # by hand, on the six finite logits
    n = 6000
    generator = torch.Generator().manual_seed(1)
    drawn = [lm.sample(log_probs, temperature, 0, 1.0, generator) for _ in range(n)]
    counts = torch.tensor([drawn.count(token) for token in allowed], dtype=torch.float64)
    assert counts.sum() == n  # nothing outside the six
    chi_square = float(((counts - n * expected) ** 2 / (n * expected)).sum())
    assert chi_square < CHI_SQUARE_5_DOF_P001
    assert float((counts / n - expected).abs().sum()) / 2 < 0.02  # total variation


@pytest.mark.parametrize("seed", range(4))
def test_a_very_low_temperature_samples_the_argmax(lm64, seed):
    """Through the whole sampling path (settings checked, prompt read, state carried), any seed."""
    prompt = "The plot was"
    greedy = greedy_tokens(lm64, prompt, 6)
    ids, _ = lm64.prompt_ids(prompt)
    expected = prompt + lm64.tokenizer.decode(ids + greedy)[len(lm64.tokenizer.decode(ids)):]
    assert lm64.generate(prompt, max_new_tokens=6, temperature=1e-4, top_k=0, top_p=1.0, seed=seed) == expected


# -- numbers so small they would underflow (issue 41, item 4) -------------------------------------------------------


@pytest.mark.parametrize("temperature", [1e-320, 5e-324, 1e-40, 1e-39])
def test_a_subnormal_temperature_is_greedy_and_says_so(lm64, temperature):
    prompt = "The plot was"
    greedy = lm64.generate(prompt, max_new_tokens=4, temperature=0)
    assert lm64.generate(prompt, max_new_tokens=4, temperature=temperature, top_k=0, top_p=1.0, seed=3) == greedy
    settings = sampling_settings(temperature=temperature, top_p=0.9)
    assert settings.temperature == 0 and "greedy" in settings.note


@pytest.mark.parametrize("top_p", [1e-320, 5e-324, 1e-100])
def test_a_tiny_top_p_keeps_only_the_likeliest_token(lm, top_p):
    log_probs, allowed = six_token_log_probs(lm)
    generator = torch.Generator().manual_seed(0)
    assert {lm.sample(log_probs, 1.0, 0, top_p, generator) for _ in range(200)} == {allowed[0]}
    assert lm.generate("The plot", max_new_tokens=3, temperature=1.0, top_k=0, top_p=top_p, seed=1)
