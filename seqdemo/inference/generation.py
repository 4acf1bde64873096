"""The language model at work: next-word probabilities, sampling, and scoring text.

Every entry point reads the prompt once and then carries the LSTM's (h, c) state forward, one token per step:
the state *is* the model's memory of the prefix, so nothing is re-read. Sampling follows the usual recipe:
temperature, then top-k, then nucleus (top-p; Holtzman et al. 2020, "The Curious Case of Neural Text
Degeneration"), drawn from a seeded generator so that the same seed gives the same text.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from seqdemo.core import validate as valid
from seqdemo.core.models import NextWordLSTM
from seqdemo.core.text import pad_batch, require_text
from seqdemo.core.tokenizer import Tokenizer
from seqdemo.inference.pipeline import Pipeline

PUNCTUATION = set(string.punctuation)
WORD_TAIL = 20  # whole_words: at most this many pieces past max_new_tokens to finish the last word


def perplexity_and_bits_per_char(nll_nats: float, tokens: int, characters: int) -> tuple[float, float]:
    """Per-token perplexity and bits per character from a text's total negative log-likelihood (in nats)."""
    return math.exp(nll_nats / tokens), nll_nats / math.log(2) / max(characters, 1)


@dataclass
class SurprisalSummary:
    """A scored text, token by token and in all."""

    ids: list[int]  # the tokens scored: the text's first max_tokens - 1
    rows: list[dict]  # per token, as NextWordPipeline.surprisal returns them
    text_tokens: int  # how many tokens the whole text has
    perplexity: float  # per token, over the scored tokens
    bits_per_char: float  # over the characters those tokens spell

    @property
    def truncated(self) -> bool:
        return len(self.ids) < self.text_tokens

    @property
    def total_bits(self) -> float:
        return sum(row["bits"] for row in self.rows)


class NextWordPipeline(Pipeline):
    """Prompts longer than `max_tokens` keep their last `max_tokens` tokens (the part that predicts the next word);
    scored texts keep their first `max_tokens`."""

    kind = "nextword"
    model: NextWordLSTM

    def __init__(
        self, model: NextWordLSTM, tokenizer: Tokenizer, device: torch.device, source: str, folder: Path | None = None
    ):
        super().__init__(model, tokenizer, device, source, folder)
        # Masks span the model's vocabulary, which may hold more rows than the tokenizer has pieces.
        vocab = model.embedding.num_embeddings
        pieces = tokenizer.vocab_size
        # Pieces that may begin the next word: a word-start piece, or punctuation standing on its own.
        self.word_starts = torch.tensor([
            i < pieces and (tokenizer.starts_word(i) and len(tokenizer.display(i).strip()) > 0
                            or tokenizer.display(i) in PUNCTUATION)
            for i in range(vocab)
        ])
        self.never_sampled = torch.arange(vocab) >= pieces  # rows no piece decodes to
        self.never_sampled[[tokenizer.pad_id, tokenizer.unk_id, tokenizer.bos_id]] = True

    @property
    def start_id(self) -> int:
        """The language model reads a begin-of-text token before any text, as in training and generation."""
        return self.tokenizer.bos_id

    # -------------------------------------------------------------------------------------------- reading

    def prompt_ids(self, text: str) -> tuple[list[int], bool]:
        ids = self.tokenizer.encode(require_text(text))
        truncated = len(ids) > self.max_tokens - 1
        return [self.tokenizer.bos_id, *ids[-(self.max_tokens - 1) :]], truncated

    @torch.inference_mode()
    def read(self, ids: list[int]) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Log-probabilities of the next token after `ids`, and the state that continues from there."""
        logits, state = self.model(torch.tensor([ids], device=self.device))
        return logits[0, -1].float().log_softmax(-1), state

    @torch.inference_mode()
    def step(self, token_ids: torch.Tensor, state) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One token per row in, next-token log-probabilities per row out."""
        logits, state = self.model(token_ids.view(-1, 1).to(self.device), state)
        return logits[:, -1].float().log_softmax(-1), state

    # --------------------------------------------------------------------------------------- next words

    def next_words(self, text: str, k: int = 5, candidates: int = 64, max_pieces: int = 4) -> list[tuple[str, float]]:
        """The k likeliest next whole words, with probabilities, most likely first.

        A word can be several pieces ("over" + "rated"): each of the `candidates` likeliest word-starting pieces
        is extended by its likeliest continuation while that continuation is not the start of another word, and
        the word's probability is the product of its pieces'. The words are distinct events, so the
        probabilities sum to at most 1.
        """
        ids, _ = self.prompt_ids(text)
        log_probs, state = self.read(ids)
        log_probs = log_probs.cpu().masked_fill(~self.word_starts, -math.inf)
        top = log_probs.topk(min(candidates, int(self.word_starts.sum())))
        words = [[int(i)] for i in top.indices]
        scores = top.values.clone()
        open_words = torch.ones(len(words), dtype=torch.bool)
        state = tuple(s.repeat(1, len(words), 1) for s in state)
        last = top.indices
        for _ in range(max_pieces - 1):
            next_log_probs, state = self.step(last, state)
            best = next_log_probs.cpu().max(-1)
            continues = open_words & ~self.word_starts[best.indices] & (best.indices != self.tokenizer.eos_id)
            if not continues.any():
                break
            for row in continues.nonzero().flatten().tolist():
                words[row].append(int(best.indices[row]))
            scores = torch.where(continues, scores + best.values, scores)
            open_words = continues
            last = best.indices
        merged: dict[str, float] = {}
        for pieces, score in zip(words, scores.tolist()):
            word = self.tokenizer.decode(pieces).strip()
            merged[word] = merged.get(word, 0.0) + math.exp(score)
        return sorted(merged.items(), key=lambda item: -item[1])[:k]

    # ------------------------------------------------------------------------------------------ sampling

    def stream(
        self,
        prompt: str,
        max_new_tokens: int = 30,
        temperature: float = 0.8,
        top_k: int = 50,
        top_p: float = 0.95,
        seed: int | None = 0,
        whole_words: bool = False,
    ) -> Iterator[str]:
        """Yields the prompt followed by the continuation so far, after every new token. `whole_words`: after
        max_new_tokens, go on (at most WORD_TAIL pieces) until the next piece would start a new word, so the text
        does not stop mid-word."""
        settings = sampling_settings(max_new_tokens, temperature, top_k, top_p)
        max_new_tokens, temperature, top_k, top_p = (settings.max_new_tokens, settings.temperature, settings.top_k,
                                                     settings.top_p)
        prompt = require_text(prompt)
        ids, _ = self.prompt_ids(prompt)
        seed = valid.seed(seed)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        prompt_text = self.tokenizer.decode(ids)
        new: list[int] = []
        log_probs, state = self.read(ids)
        for step in range(max_new_tokens + WORD_TAIL * whole_words):
            token = self.sample(log_probs.cpu(), temperature, top_k, top_p, generator)
            if token == self.tokenizer.eos_id or step >= max_new_tokens and self.word_starts[token]:
                break
            new.append(token)
            # Decoding the whole sequence (not piece by piece) keeps multi-byte characters and spacing right.
            yield prompt + self.tokenizer.decode(ids + new)[len(prompt_text) :]
            log_probs, state = self.step(torch.tensor([token]), state)
            log_probs = log_probs[0]

    def generate(self, prompt: str, **sampling) -> str:
        """The prompt and its continuation, as one string (see `stream` for the settings)."""
        text = prompt
        for text in self.stream(prompt, **sampling):
            pass
        return text

    def sample(self, log_probs: torch.Tensor, temperature: float, top_k: int, top_p: float, generator) -> int:
        """One token drawn from softmax(log_probs / temperature), after top-k then nucleus (top-p) filtering.
        A temperature below GREEDY_BELOW is greedy: float32 cannot divide by it (see sampling_settings)."""
        log_probs = log_probs.masked_fill(self.never_sampled, -math.inf)
        if temperature < GREEDY_BELOW:
            return int(log_probs.argmax())
        # softmax(x / T) = softmax((x - max) / T): shifted first, the likeliest token's logit stays 0 however
        # small T is, so nothing overflows to -inf everywhere (which would make every probability nan).
        probs = ((log_probs - log_probs.max()) / temperature).softmax(-1)
        if top_k:
            kth = probs.topk(min(top_k, probs.numel())).values[-1]
            probs = probs.masked_fill(probs < kth, 0.0)
        if top_p < 1.0:
            sorted_probs, order = probs.sort(descending=True)
            # Keep the smallest set whose mass reaches top_p: drop a token once the mass before it is enough.
            drop = sorted_probs.cumsum(0) - sorted_probs >= top_p * sorted_probs.sum()
            drop[0] = False  # the likeliest token always stays, even when top_p * mass underflows to 0
            probs = probs.scatter(0, order[drop], 0.0)
        return int(torch.multinomial(probs, 1, generator=generator))

    # ------------------------------------------------------------------------------------------- scoring

    @torch.inference_mode()
    def score_ids(self, texts: list[str], batch_size: int = 16, chunk: int = 256) -> list[tuple[list[int], torch.Tensor, bool]]:
        """Per text: the token ids scored (at most the first max_tokens - 1), each one's log-probability, and
        whether the text was cut. Texts are batched by length and read in chunks, the state carried across."""
        encoded = [self.tokenizer.encode(require_text(t)) for t in texts]
        kept = [ids[: self.max_tokens - 1] for ids in encoded]
        results: list = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(kept[i]))  # similar lengths batch well
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            ids, _ = pad_batch([[self.tokenizer.bos_id, *kept[r]] for r in rows], self.tokenizer.pad_id)
            ids = ids.to(self.device)
            picked, state = [], None
            for t in range(0, ids.shape[1] - 1, chunk):
                logits, state = self.model(ids[:, t : t + chunk], state)
                targets = ids[:, t + 1 : t + 1 + chunk]
                log_probs = logits[:, : targets.shape[1]].float().log_softmax(-1)
                picked.append(log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).cpu())
            picked = torch.cat(picked, dim=1)
            for row, r in enumerate(rows):
                results[r] = (kept[r], picked[row, : len(kept[r])], len(kept[r]) < len(encoded[r]))
        return results

    def score(self, text: str) -> dict:
        """Per-token perplexity and bits per character of `text` (of its first max_tokens - 1 tokens if longer)."""
        ids, log_probs, truncated = self.score_ids([text])[0]
        perplexity, bits_per_char = perplexity_and_bits_per_char(
            -float(log_probs.sum()), len(ids), self._scored_characters(text, ids, truncated)
        )
        return {"perplexity": perplexity, "bits_per_char": bits_per_char, "tokens": len(ids), "truncated": truncated}

    def _scored_characters(self, text: str, ids: list[int], truncated: bool) -> int:
        """The characters the scored ids spell: the whole text, or the part a truncated text kept."""
        return len(self.tokenizer.decode(ids)) if truncated else len(text)

    def perplexity(self, text: str) -> float:
        return self.score(text)["perplexity"]

    def bits_per_char(self, text: str) -> float:
        return self.score(text)["bits_per_char"]

    def surprisal(self, text: str, alternatives: int = 3) -> list[dict]:
        """For each token: its surprisal in bits (-log2 p), its probability, and the likelier alternatives."""
        return self.surprisal_summary(text, alternatives).rows

    def surprisal_summary(self, text: str, alternatives: int = 3) -> SurprisalSummary:
        """`surprisal` with the totals: the tokens scored, per-token perplexity and bits per character."""
        all_ids = self.tokenizer.encode(require_text(text))
        ids = all_ids[: self.max_tokens - 1]
        with torch.inference_mode():
            logits, _ = self.model(torch.tensor([[self.tokenizer.bos_id, *ids]], device=self.device))
            log_probs = logits[0, :-1].float().log_softmax(-1).cpu()
        top = log_probs.topk(alternatives, dim=-1)
        rows = []
        for t, token in enumerate(ids):
            rows.append({
                "token": self.tokenizer.display(token),
                "bits": -float(log_probs[t, token]) / math.log(2),
                "probability": math.exp(float(log_probs[t, token])),
                "alternatives": [
                    (self.tokenizer.display(int(i)), math.exp(float(v))) for v, i in zip(top.values[t], top.indices[t])
                ],
            })
        nll_nats = math.log(2) * sum(row["bits"] for row in rows)
        perplexity, bits_per_char = perplexity_and_bits_per_char(
            nll_nats, len(ids), self._scored_characters(text, ids, len(ids) < len(all_ids))
        )
        return SurprisalSummary(ids=ids, rows=rows, text_tokens=len(all_ids), perplexity=perplexity,
                                bits_per_char=bits_per_char)


MAX_NEW_TOKENS = 1000
# Below float32's smallest normal number a temperature cannot divide a logit (x / T is inf or nan): such a
# temperature is greedy, which is what it tends to anyway.
GREEDY_BELOW = torch.finfo(torch.float32).tiny


@dataclass(frozen=True)
class SamplingSettings:
    """Checked sampling settings, and a note for the reader when one was read differently from how it was typed."""

    max_new_tokens: int
    temperature: float
    top_k: int
    top_p: float
    note: str = ""


def check_sampling(max_new_tokens, temperature, top_k, top_p) -> tuple[int, float, int, float]:
    """The settings as (int, float, int, float), or a ValueError naming the one that is wrong (a number given as
    a string is fine: seqdemo.core.validate)."""
    return (valid.integer(max_new_tokens, "max_new_tokens", 1, MAX_NEW_TOKENS),
            valid.number(temperature, "temperature (0 = greedy)", 0, 5),
            valid.integer(top_k, "top_k (0 = off)", 0),
            valid.number(top_p, "top_p", 0, 1, above=True))


def sampling_settings(max_new_tokens=30, temperature=0.8, top_k=50, top_p=0.95) -> SamplingSettings:
    """check_sampling, with a temperature too small for float32 (below GREEDY_BELOW, e.g. 1e-320) made greedy
    and said so in `note`. A tiny top_p needs nothing: the likeliest token is always kept (sample)."""
    max_new_tokens, temperature, top_k, top_p = check_sampling(max_new_tokens, temperature, top_k, top_p)
    note = ""
    if 0 < temperature < GREEDY_BELOW:
        note = f"A temperature of {temperature:g} is too small to compute with: greedy decoding (temperature 0) was used."
        temperature = 0.0
    return SamplingSettings(max_new_tokens, temperature, top_k, top_p, note)
