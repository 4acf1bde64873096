"""Sentiment with the bidirectional LSTM: predictions, token attributions and a reading trajectory.

Two ways to say what each token did to the decision, both in log-odds log P(positive) - log P(negative):

- "evidence" (the default, one forward pass): the classifier is linear in the pooled features, and max pooling
  takes each feature from one token's BiLSTM state, so the log-odds split exactly into one share per token
  (the features that peaked there) plus the classifier's bias. Exact and as fast as a prediction, but it says
  where the decision was read, not what would happen without the token: a token's state has read its
  neighbours too (the forward direction everything before it, the backward one everything after).
- "integrated_gradients" (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks"): gradients
  on the token embeddings integrated from an all-zero input to the text. The shares add up to log-odds(text) -
  log-odds(all-zero input) in the limit (completeness); a Riemann sum of `steps` points approximates it, and
  max pooling's kinks make long texts need many steps, so it costs `steps` backward passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from seqdemo.core.gates import rank_units_by_contribution
from seqdemo.core.models import SentimentClassifier
from seqdemo.core.text import head_and_tail, head_length, pad_batch, require_text
from seqdemo.core.tokenizer import Tokenizer
from seqdemo.inference.pipeline import Pipeline

METHODS = ("evidence", "integrated_gradients")


@dataclass
class Explanation:
    prediction: dict  # as predict() returns it
    ids: list[int]  # the token ids the model read (a long text's head and tail)
    tokens: list[str]  # the same tokens, as display strings
    method: str  # one of METHODS
    attributions: list[float]  # per token: its share of the log-odds log P(positive) - log P(negative)
    log_odds: float  # of the text
    offset: float  # the part no token holds: the classifier's bias (evidence) or the all-zero input's log-odds (IG)
    middle_skipped_at: int | None = None  # a long text: ids[:n] are its start, ids[n:] its end; None: read whole


@dataclass
class UnitContributions:
    """How much each unit of one direction of the last layer pushed the classifier towards its decision."""

    decision: str  # the label the classifier chose
    contributions: torch.Tensor  # (hidden,): pooled value x (weight of the decision - the others'), in logits
    order: list[int]  # the units, strongest push towards the decision first


class SentimentPipeline(Pipeline):
    """Text in, label out. Texts longer than `max_tokens` keep their first and last `max_tokens / 2` tokens."""

    kind = "sentiment"
    model: SentimentClassifier

    def __init__(
        self,
        model: SentimentClassifier,
        tokenizer: Tokenizer,
        device: torch.device,
        source: str,
        folder: Path | None = None,
    ):
        super().__init__(model, tokenizer, device, source, folder)
        self.labels = list(model.labels)

    def encode(self, text: str) -> tuple[list[int], bool]:
        ids = self.tokenizer.encode(require_text(text))
        if not ids:  # e.g. only characters the normaliser drops
            raise ValueError("The text has nothing the model can read.")
        kept = head_and_tail(ids, self.max_tokens)
        return kept, len(kept) < len(ids)

    def middle_skipped_at(self, truncated: bool) -> int | None:
        """Where a truncated text's kept start ends and its kept end begins (in the ids `encode` returns)."""
        return head_length(self.max_tokens) if truncated else None

    @torch.no_grad()
    def probabilities(self, sequences: list[list[int]]) -> torch.Tensor:
        ids, lengths = pad_batch(sequences, self.tokenizer.pad_id)
        return self.model(ids.to(self.device), lengths).float().softmax(-1).cpu()

    def _prediction(self, probabilities: torch.Tensor, ids: list[int], truncated: bool) -> dict:
        best = int(probabilities.argmax())
        return {
            "label": self.labels[best],
            "score": float(probabilities[best]),
            "probabilities": dict(zip(self.labels, probabilities.tolist())),
            "tokens": len(ids),
            "truncated": truncated,
        }

    def predict(self, texts: str | list[str], batch_size: int = 32) -> list[dict]:
        """[{"label", "score", "probabilities": {label: p}, "tokens": n, "truncated": bool}] per text."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        encoded = [self.encode(text) for text in texts]
        # Texts of similar length share a batch (less padding to compute); the results keep the input order.
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
        results: list[dict] = [{}] * len(encoded)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            for i, probs in zip(batch, self.probabilities([encoded[i][0] for i in batch])):
                results[i] = self._prediction(probs, *encoded[i])
        return results

    def explain(self, text: str, method: str = "evidence", steps: int = 16) -> Explanation:
        """The prediction with one attribution per token (see the module's docstring for the two methods)."""
        ids, truncated = self.encode(text)
        if method == "evidence":
            attributions, offset, logits = self.evidence(ids)
        elif method == "integrated_gradients":
            attributions, offset = self.integrated_gradients(ids, steps)
            with torch.no_grad():
                logits = self.model(torch.tensor([ids], device=self.device), torch.tensor([len(ids)]))[0].float()
        else:
            raise ValueError(f"method must be one of {METHODS}, not {method!r}")
        return Explanation(
            prediction=self._prediction(logits.softmax(-1).cpu(), ids, truncated),
            ids=ids,
            tokens=self.tokenizer.pieces(ids),
            method=method,
            attributions=attributions,
            log_odds=float(logits[-1] - logits[0]),
            offset=offset,
            middle_skipped_at=self.middle_skipped_at(truncated),
        )

    @torch.no_grad()
    def evidence(self, ids: list[int]) -> tuple[list[float], float, torch.Tensor]:
        """Each token's exact share of the log-odds through the pooling, the bias's share, and the logits.

        logits = W @ pooled + b, and pooled[u] = sum over tokens t of taken[t, u] * out[t, u], where `taken`
        is one-hot at the token where unit u peaked (max pooling), 1/T everywhere (mean) or the ends (last). So
        log-odds = (b[-1] - b[0]) + sum over t of sum over u of (W[-1, u] - W[0, u]) * taken[t, u] * out[t, u].
        """
        model = self.model
        lengths = torch.tensor([len(ids)])
        out, pooled = model.read(model.rnn_input(torch.tensor([ids], device=self.device), lengths), lengths)
        out, pooled = out[0].float(), pooled[0].float()
        weight, bias = model.classifier.weight.float(), model.classifier.bias.float()
        taken = torch.zeros_like(out)
        if model.pooling == "max":
            taken.scatter_(0, out.argmax(0, keepdim=True), 1.0)
        elif model.pooling == "mean":
            taken.fill_(1.0 / len(ids))
        else:  # "last": the forward direction ends at the last token, the backward one at the first
            hidden = model.rnn.hidden_size
            taken[-1, :hidden] = 1.0
            taken[0, hidden:] = 1.0
        shares = (taken * out) @ (weight[-1] - weight[0])
        logits = weight @ pooled + bias
        return shares.tolist(), float(bias[-1] - bias[0]), logits.cpu()

    def log_odds(self, embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """log P(positive) - log P(negative) from token embeddings: the function integrated gradients explains."""
        log_probs = self.model.classify_embeddings(embedded, lengths).float().log_softmax(-1)
        return log_probs[:, -1] - log_probs[:, 0]

    def integrated_gradients(self, ids: list[int], steps: int) -> tuple[list[float], float]:
        """Per-token attributions (Riemann midpoint sum over `steps` points, all in one batch) and the
        all-zero input's log-odds."""
        with torch.no_grad():
            embedded = self.model.embedding(torch.tensor([ids], device=self.device))
        alphas = (torch.arange(steps, device=self.device, dtype=embedded.dtype) + 0.5) / steps
        path = (alphas.view(-1, 1, 1) * embedded).requires_grad_(True)
        lengths = torch.full((steps,), len(ids))
        # cuDNN's LSTM has no backward pass in eval mode ("cudnn RNN backward can only be called in training mode",
        # seen on an H200): the native kernel gives the same gradients.
        with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
            # Gradients for the path alone: the weights' .grad stay untouched, so concurrent requests can't mix.
            (gradient,) = torch.autograd.grad(self.log_odds(path, lengths).sum(), path)
        per_token = (gradient.mean(0) * embedded[0]).sum(-1)
        with torch.no_grad():
            baseline = self.log_odds(torch.zeros_like(embedded), lengths[:1])
        return per_token.tolist(), float(baseline)

    @torch.no_grad()
    def unit_contributions(self, ids: list[int], direction: int = 0) -> UnitContributions:
        """Each unit of the last layer's `direction` (0 forward, 1 backward), ranked by its push towards the
        decision on `ids`: its pooled value times its classifier weight (gates.rank_units_by_contribution)."""
        model = self.model
        lengths = torch.tensor([len(ids)])
        _, pooled = model.read(model.rnn_input(torch.tensor([ids], device=self.device), lengths), lengths)
        pooled = pooled[0].float().cpu()
        weight = model.classifier.weight.float().cpu()
        decision = int((weight @ pooled + model.classifier.bias.float().cpu()).argmax())
        _, contributions = rank_units_by_contribution(pooled, weight, decision)
        hidden = model.rnn.hidden_size
        mine = contributions[direction * hidden : (direction + 1) * hidden]
        order = torch.argsort(mine, descending=True, stable=True).tolist()
        return UnitContributions(decision=self.labels[decision], contributions=mine, order=order)

    def trajectory(self, text: str, points: int = 64) -> list[tuple[int, float]]:
        """P(positive) of each prefix of the text the model reads, as if it stopped there: how the verdict forms
        while reading. Long texts are sampled at `points` evenly spaced prefix lengths."""
        ids, _ = self.encode(text)
        n = len(ids)
        cuts = sorted({round(n * (k + 1) / points) for k in range(points)} if n > points else range(1, n + 1))
        cuts = [c for c in cuts if c > 0]
        probs = torch.cat([self.probabilities([ids[:c] for c in cuts[i : i + 64]]) for i in range(0, len(cuts), 64)])
        return list(zip(cuts, probs[:, -1].tolist()))
