"""Sentiment with the bidirectional LSTM: predictions, token attributions and a reading trajectory.

Attributions are integrated gradients (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks")
on the token embeddings, from an all-zero baseline to the text: each token's share of the log-odds
log P(positive) - log P(negative), and the shares add up to the log-odds difference between the text and the
baseline (the completeness axiom), so the colours on screen are a real decomposition of the decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqdemo.models import SentimentClassifier
from seqdemo.text import head_and_tail, pad_batch, require_text
from seqdemo.tokenizer import Tokenizer


@dataclass
class Explanation:
    prediction: dict  # as predict() returns it
    tokens: list[str]  # the tokens the model read, as display strings
    attributions: list[float]  # per token: its share of the positive-vs-negative log-odds
    baseline_log_odds: float  # the log-odds of the all-zero input; attributions sum to (text - baseline)
    trajectory: list[tuple[int, float]]  # (tokens read so far, P(positive) of that prefix)


class SentimentPipeline:
    """Text in, label out. Texts longer than `max_tokens` keep their first and last `max_tokens / 2` tokens."""

    def __init__(self, model: SentimentClassifier, tokenizer: Tokenizer, device: torch.device, source: str):
        self.model, self.tokenizer, self.device, self.source = model, tokenizer, device, source
        self.labels = list(model.labels)
        self.max_tokens = model.max_tokens

    def encode(self, text: str) -> tuple[list[int], bool]:
        ids = self.tokenizer.encode(require_text(text))
        if not ids:  # e.g. only characters the normaliser drops
            raise ValueError("The text has nothing the model can read.")
        kept = head_and_tail(ids, self.max_tokens)
        return kept, len(kept) < len(ids)

    @torch.no_grad()
    def probabilities(self, sequences: list[list[int]]) -> torch.Tensor:
        ids, lengths = pad_batch(sequences, self.tokenizer.pad_id)
        return self.model(ids.to(self.device), lengths).float().softmax(-1).cpu()

    def predict(self, texts: str | list[str], batch_size: int = 32) -> list[dict]:
        """[{"label", "score", "probabilities": {label: p}, "tokens": n, "truncated": bool}] per text."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        encoded = [self.encode(text) for text in texts]
        results: list[dict] = []
        for start in range(0, len(encoded), batch_size):
            batch = encoded[start : start + batch_size]
            for (ids, truncated), probs in zip(batch, self.probabilities([ids for ids, _ in batch])):
                best = int(probs.argmax())
                results.append({
                    "label": self.labels[best],
                    "score": float(probs[best]),
                    "probabilities": dict(zip(self.labels, probs.tolist())),
                    "tokens": len(ids),
                    "truncated": truncated,
                })
        return results

    def explain(self, text: str, steps: int = 16, trajectory_points: int = 64) -> Explanation:
        ids, truncated = self.encode(text)
        attributions, baseline = self.integrated_gradients(ids, steps)
        return Explanation(
            prediction=self.predict(text)[0],
            tokens=self.tokenizer.pieces(ids),
            attributions=attributions,
            baseline_log_odds=baseline,
            trajectory=self.trajectory(ids, trajectory_points),
        )

    def log_odds(self, embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """log P(positive) - log P(negative) from token embeddings: the function integrated gradients explains."""
        log_probs = self.model.classify_embeddings(embedded, lengths).float().log_softmax(-1)
        return log_probs[:, -1] - log_probs[:, 0]

    def integrated_gradients(self, ids: list[int], steps: int) -> tuple[list[float], float]:
        """Per-token attributions (Riemann midpoint sum over `steps` points, all in one batch)."""
        with torch.no_grad():
            embedded = self.model.embedding(torch.tensor([ids], device=self.device))
        alphas = (torch.arange(steps, device=self.device, dtype=embedded.dtype) + 0.5) / steps
        path = (alphas.view(-1, 1, 1) * embedded).requires_grad_(True)
        lengths = torch.full((steps,), len(ids))
        with torch.enable_grad():
            # Gradients for the path alone: the weights' .grad stay untouched, so concurrent requests can't mix.
            (gradient,) = torch.autograd.grad(self.log_odds(path, lengths).sum(), path)
        per_token = (gradient.mean(0) * embedded[0]).sum(-1)
        with torch.no_grad():
            baseline = self.log_odds(torch.zeros_like(embedded), lengths[:1])
        return per_token.tolist(), float(baseline)

    def trajectory(self, ids: list[int], points: int) -> list[tuple[int, float]]:
        """P(positive) of each prefix, as if the text stopped there: how the verdict forms while reading.
        Long texts are sampled at `points` evenly spaced prefix lengths."""
        n = len(ids)
        cuts = sorted({round(n * (k + 1) / points) for k in range(points)} if n > points else range(1, n + 1))
        cuts = [c for c in cuts if c > 0]
        probs = torch.cat([self.probabilities([ids[:c] for c in cuts[i : i + 64]]) for i in range(0, len(cuts), 64)])
        return list(zip(cuts, probs[:, -1].tolist()))
