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

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from seqdemo.core.gates import rank_units_by_contribution, run_direction
from seqdemo.core.models import SentimentClassifier
from seqdemo.core.text import head_and_tail, head_length, pad_batch, require_text
from seqdemo.core.tokenizer import Tokenizer
from seqdemo.inference.pipeline import Pipeline

METHODS = ("evidence", "integrated_gradients")
CACHE_SIZE = 32  # texts whose encoding and logits are kept: a few visitors' worth of the page's repeated asks
PREFIX_BATCH_SIZE = 16  # prefixes per batched pass of a trajectory (bench/README.md)
TRAJECTORY_POINTS = 64  # at most this many exact points on the reading trajectory: more than a chart can show


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _evenly_spaced(count: int, points: int) -> list[int]:
    """`points` indices evenly spread over range(count), the last always among them; all of them if fewer."""
    if count <= points:
        return list(range(count))
    return sorted({round(count * (k + 1) / points) - 1 for k in range(points)})


class LRU:
    """A small least-recently-used map, safe across the server's handler threads."""

    def __init__(self, size: int):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key, value):
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


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
class Trajectory:
    """How the verdict forms while reading: P(last label) after some of the words of the text the model read."""

    points: list[tuple[int, float]]  # (tokens read, P) at each computed word end, in reading order
    words: list  # Tokenizer.words of the ids read: every word, computed or not (Span: text, value, positions)
    word_indices: list[int]  # which words the points follow (indices into `words`)
    spaced: bool  # True when some words have no point of their own (a long text: at most `points` are computed)
    middle_skipped_at: int | None = None  # a long text: the tokens before this are its start, the rest its end


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
        # Small caches of plain Python values (no tensors, no texts: a 5 MB paste keys by its digest).
        self._encodings = LRU(CACHE_SIZE)
        self._logits = LRU(CACHE_SIZE)
        self._baselines = LRU(CACHE_SIZE)
        # The slow results too (seconds for a long review): every visitor's page opens on the same example, and
        # most click the same few, so a second visitor's answer should cost nothing.
        self._attributions = LRU(CACHE_SIZE)
        self._prefixes = LRU(CACHE_SIZE)
        # Integrated gradients' points per batched pass; None: all of them in one pass, measured fastest on a
        # 2-core CPU for a sentence, a 300-token review and a 512-token paste alike (bench/README.md).
        self.ig_batch_size: int | None = None
        self.prefix_batch_size = PREFIX_BATCH_SIZE

    def clear_cache(self) -> None:
        """Forgets every kept result: call it after changing the model's weights in place."""
        for cache in (self._encodings, self._logits, self._baselines, self._attributions, self._prefixes):
            cache.clear()

    def encode(self, text: str) -> tuple[list[int], bool]:
        """The ids the model reads (a long text's head and tail) and whether the middle was skipped. The page asks
        for several results of one text: the last few encodings are kept (keyed by a digest, never the text)."""
        key = _digest(require_text(text))
        cached = self._encodings.get(key)
        if cached is None:
            ids = self.tokenizer.encode(text)
            if not ids:  # e.g. only characters the normaliser drops
                raise ValueError("The text has nothing the model can read.")
            kept = head_and_tail(ids, self.max_tokens)
            cached = self._encodings.put(key, (tuple(kept), len(kept) < len(ids)))
        return list(cached[0]), cached[1]

    def logits(self, ids: list[int]) -> torch.Tensor:
        """The classifier's logits (classes,) for one text's ids, float32 on the CPU: kept for the last few texts,
        so a prediction, an attribution and a trajectory of the same text read it once."""
        key = (tuple(ids),)
        cached = self._logits.get(key)
        if cached is None:
            with torch.inference_mode():
                ids_tensor = torch.tensor([ids], device=self.device)
                logits = self.model(ids_tensor, torch.tensor([len(ids)]))[0].float().cpu()
            cached = self._logits.put(key, logits.tolist())
        return torch.tensor(cached)

    def middle_skipped_at(self, truncated: bool) -> int | None:
        """Where a truncated text's kept start ends and its kept end begins (in the ids `encode` returns)."""
        return head_length(self.max_tokens) if truncated else None

    @torch.inference_mode()
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
            key = (tuple(ids), steps)
            cached = self._attributions.get(key) or self._attributions.put(key, self.integrated_gradients(ids, steps))
            attributions, offset = list(cached[0]), cached[1]  # a copy: a caller's edit must not reach the cache
            logits = self.logits(ids)
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

    @torch.inference_mode()
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

    def integrated_gradients(self, ids: list[int], steps: int, batch_size: int | None = None) -> tuple[list[float], float]:
        """Per-token attributions (Riemann midpoint sum over `steps` points) and the all-zero input's log-odds.

        The points go through the model `batch_size` at a time (default `ig_batch_size`, else all at once), as
        Captum's internal_batch_size does; the sum is the same for any."""
        batch_size = max(1, batch_size or self.ig_batch_size or steps)
        with torch.no_grad():  # not inference_mode: `embedded` feeds the gradient pass below
            embedded = self.model.embedding(torch.tensor([ids], device=self.device))
        alphas = (torch.arange(steps, device=self.device, dtype=embedded.dtype) + 0.5) / steps
        total = torch.zeros_like(embedded[0])
        for start in range(0, steps, batch_size):
            path = (alphas[start : start + batch_size].view(-1, 1, 1) * embedded).requires_grad_(True)
            lengths = torch.full((path.shape[0],), len(ids))
            # cuDNN's LSTM has no backward pass in eval mode ("cudnn RNN backward can only be called in training
            # mode", seen on an H200): the native kernel gives the same gradients.
            with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
                # Gradients for the path alone: the weights' .grad stay untouched, so concurrent requests can't mix.
                (gradient,) = torch.autograd.grad(self.log_odds(path, lengths).sum(), path)
            total += gradient.sum(0)
        per_token = (total / steps * embedded[0]).sum(-1)
        return per_token.tolist(), self.baseline_log_odds(len(ids))

    def baseline_log_odds(self, length: int) -> float:
        """The log-odds of an all-zero input of `length` tokens (IG's baseline): it depends on the length alone."""
        cached = self._baselines.get(length)
        if cached is None:
            with torch.inference_mode():
                zeros = torch.zeros(1, length, self.model.embedding.embedding_dim, device=self.device)
                cached = self._baselines.put(length, float(self.log_odds(zeros, torch.tensor([length]))))
        return cached

    @torch.inference_mode()
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
        while reading. Long texts are sampled at `points` evenly spaced prefix lengths (see reading_trajectory for
        the page's: at word ends)."""
        ids, _ = self.encode(text)
        n = len(ids)
        cuts = sorted({round(n * (k + 1) / points) for k in range(points)} if n > points else range(1, n + 1))
        cuts = [c for c in cuts if c > 0]
        return list(zip(cuts, self.prefix_probabilities(ids, cuts)))

    def reading_trajectory(self, text: str, points: int = TRAJECTORY_POINTS) -> Trajectory:
        """P(positive) after each word the model reads, computed exactly after at most `points` words evenly
        spaced through the text (always the last): a chart cannot show more, and each point costs a re-read of
        its prefix by the backward direction. `Trajectory.spaced` says when words were skipped."""
        ids, truncated = self.encode(text)
        words = self.tokenizer.words(ids, [0.0] * len(ids))
        ends = [max(word.positions) + 1 for word in words]
        chosen = _evenly_spaced(len(ends), max(1, points))
        cuts = [ends[w] for w in chosen]
        return Trajectory(points=list(zip(cuts, self.prefix_probabilities(ids, cuts))), words=words,
                          word_indices=chosen, spaced=len(chosen) < len(ends),
                          middle_skipped_at=self.middle_skipped_at(truncated))

    def prefix_probabilities(self, ids: list[int], cuts: list[int]) -> list[float]:
        """P(last label) after reading ids[:c], for each c in `cuts` (1 <= c <= len(ids)), each exact: one
        batched pass per group of similar lengths (_prefix_probabilities). The whole text's comes from the
        cache of logits, so a trajectory after a prediction does not read the text again."""
        if not cuts:
            return []
        if any(not 1 <= c <= len(ids) for c in cuts):
            raise ValueError(f"prefix lengths must lie in 1..{len(ids)}")
        result: dict[int, float] = {}
        if len(ids) in cuts:
            result[len(ids)] = float(self.logits(ids).softmax(-1)[-1])
        partial = sorted({c for c in cuts if c < len(ids)})
        key = (tuple(ids), tuple(partial))
        probs = self._prefixes.get(key) if partial else []
        if probs is None:
            with torch.inference_mode():
                probs = _prefix_probabilities(self.model, torch.tensor(ids, device=self.device), partial,
                                              self.prefix_batch_size)[:, -1].tolist()
            self._prefixes.put(key, probs)
        result.update(zip(partial, probs))
        return [result[c] for c in cuts]


# The trajectory's engine: many prefixes of one text through the recurrent layers, each exact.


def _prefix_probabilities(model: SentimentClassifier, ids: torch.Tensor, cuts: list[int], batch_size: int) -> torch.Tensor:
    """Class probabilities (len(cuts), classes) of ids[:c] for each c in `cuts` (sorted).

    Packed sequences would take the slow unfused kernel, so each direction of each layer runs as a plain
    right-padded batch in its own reading order: the backward direction reads each prefix reversed (c - 1
    down to 0), and the padding after it is read last, where it changes nothing. The first layer's forward
    direction reads the same tokens for every prefix: it runs once. A model this does not cover (a Conv1d
    front end, whose last windows see past a prefix's end) takes the padded, packed batch."""
    if model.conv is not None or getattr(model.rnn, "nonlinearity", "tanh") != "tanh":
        ids_list = ids.tolist()
        padded, lengths = pad_batch([ids_list[:c] for c in cuts], model.pad_id)
        return model(padded.to(ids.device), lengths).float().softmax(-1).cpu()
    x = model.rnn_input(ids.unsqueeze(0))
    first_forward = run_direction(model.rnn, 0, 0, x)
    groups = [cuts[i : i + batch_size] for i in range(0, len(cuts), batch_size)]
    return torch.cat([_prefix_group(model, x, first_forward, group) for group in groups]).float().softmax(-1).cpu()


def _prefix_group(model: SentimentClassifier, x: torch.Tensor, first_forward: torch.Tensor, cuts: list[int]):
    """Logits of one group of prefixes, padded to the longest of them (see _prefix_probabilities)."""
    rnn, device = model.rnn, x.device
    lengths = torch.tensor(cuts, device=device).unsqueeze(1)
    time = max(cuts)
    steps = torch.arange(time, device=device).unsqueeze(0)
    # Position t of a reversed prefix holds token c - 1 - t; past its end, any position in range will do.
    reverse = torch.where(steps < lengths, lengths - 1 - steps, steps)
    layer_input = x[:, :time].expand(len(cuts), -1, -1)
    for layer in range(rnn.num_layers):
        forward = first_forward[:, :time].expand(len(cuts), -1, -1) if layer == 0 else (
            run_direction(rnn, layer, 0, layer_input))
        outputs = [forward]
        if rnn.bidirectional:
            reversed_input = layer_input.gather(1, reverse.unsqueeze(-1).expand(-1, -1, layer_input.shape[-1]))
            backward = run_direction(rnn, layer, 1, reversed_input)
            outputs.append(backward.gather(1, reverse.unsqueeze(-1).expand(-1, -1, backward.shape[-1])))
        layer_input = torch.cat(outputs, -1)
    return model.classifier(model.dropout(_pool(model, layer_input, lengths.squeeze(1), steps < lengths)))


def _pool(model: SentimentClassifier, out: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The model's pooling over each prefix's own steps (SentimentClassifier.read)."""
    if model.pooling == "max":
        return out.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(dim=1).values
    if model.pooling == "mean":
        return (out * mask.unsqueeze(-1)).sum(1) / lengths.unsqueeze(-1)
    hidden = model.rnn.hidden_size  # "last": the forward direction ends at the prefix's end, the backward at 0
    last = out[torch.arange(len(lengths), device=out.device), lengths - 1, :hidden]
    return torch.cat([last, out[:, 0, hidden:]], -1) if model.rnn.bidirectional else last
