"""Unit atlas: scores every unit of a shipped LSTM against nameable properties of held-out text; writes atlas.json.

    python -m seqdemo.experiments.atlas                          # both shipped models, 2,000 validation sentences
    python -m seqdemo.experiments.atlas --kinds sentiment --max-sentences 500

LSTMVis leaves a person to hunt through units by hand; Karpathy, Johnson & Fei-Fei (2015) found quote and
line-length cells by inspection, and Radford, Jozefowicz & Sutskever (2017) a single "sentiment neuron" in a
language model of reviews. Here every unit (its hidden value h and its cell value c, in every layer and direction)
is scored against properties a reader can check on the text:
- per token: inside a negation's scope (after "not", "n't" or "never", up to the next punctuation), a sentence's
  last token, inside quotes, inside parentheses (AUC: 0.5 is chance, 1 or 0 a perfect separation); the position
  in the sentence and the tokens left to its end (Spearman correlation);
- per text: its sentiment, by the cross-validated accuracy of a one-unit linear probe (a threshold on one value).
Every score has a control: the same units scored against the labels circularly shifted along the token stream
(which keeps how labels run in stretches but breaks their link to the text), or, per text, shuffled. The text is
the validation split of seqdemo.experiments.data, which neither model trained on, never the test split.

The same pass measures how much memory the forget gates keep (the page's conveyor-belt story against the model):
per layer and direction, the mean forget gate per token, and the share of units that keep more than half their
cell from one word to the next (the product of the forget gate over a word's pieces).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata

from seqdemo.core import gates
from seqdemo.core.text import sentences
from seqdemo.experiments.data import Review, load_splits

ATLAS_FILE = "atlas.json"
SPLIT = "valid"
TOP_UNITS = 5
VALUES = ("h", "c")
IMDB_WINDOW = 3  # an IMDB text is its review's last sentences, so sentence boundaries fall inside the text
MAX_TOKENS = 160

NEGATOR = re.compile(rb"(?<![A-Za-z])(?:not|never)(?![A-Za-z])|n(?:'|\xe2\x80\x99)t(?![A-Za-z])", re.IGNORECASE)
SCOPE_END = re.compile(rb"[.,;:!?]")
SENTENCE_BREAK = re.compile(rb"(?<=[.!?])\s+")  # where seqdemo.core.text.sentences cuts
QUOTES = {b'"': None, "\u201c".encode(): True, "\u201d".encode(): False}  # None: a straight quote opens or closes

# What a unit must reach to "track" a property: the page names only units that clear the bar.
BARS = {"AUC": 0.85, "Spearman": 0.7, "probe accuracy": 0.75}
PROPERTIES = {
    "negation_scope": ("AUC", 'inside a negation\'s scope: after "not", "n\'t" or "never", up to the next punctuation'),
    "sentence_end": ("AUC", "the last token of a sentence"),
    "inside_quotes": ("AUC", "inside double quotes"),
    "inside_parentheses": ("AUC", "inside parentheses"),
    "position_in_sentence": ("Spearman", "how many tokens of its sentence came before"),
    "tokens_to_sentence_end": ("Spearman", "how many tokens of its sentence are still to come"),
    "sentiment": ("probe accuracy", "the text's sentiment (its label), from one unit's value over the text"),
}
TEXT_FEATURES = ("final", "mean", "max")  # a unit's value over a text: after reading it all, its mean, its maximum


# ------------------------------------------------------------------------------------------------ held-out text


def held_out_texts(valid: list[Review], max_sentences: int) -> list[Review]:
    """Rotten Tomatoes validation sentences, then the last IMDB_WINDOW sentences of validation IMDB reviews (labels
    alternating, each text labelled with its review), until `max_sentences` sentences in all."""
    def alternating(source: str) -> list[Review]:
        by_label = [[r for r in valid if r.source == source and r.label == label] for label in (0, 1)]
        return [r for pair in zip(*by_label) for r in pair]

    texts, count = [], 0
    for review in alternating("rotten_tomatoes") + alternating("imdb"):
        if review.source == "imdb":
            review = Review(" ".join(sentences(review.text)[-IMDB_WINDOW:]), review.label, review.source)
        count += len(sentences(review.text))
        if count > max_sentences:
            break
        texts.append(review)
    return texts


# ------------------------------------------------------------------------------------------- per-token properties


def token_bytes(tokenizer, ids: list[int]) -> tuple[bytes, list[tuple[int, int]]]:
    """The UTF-8 text the ids spell and each id's byte span in it (the word-start mark read as a space)."""
    text, spans = b"", []
    for token_id in ids:
        byte = tokenizer.byte_value(token_id)
        piece = bytes([byte]) if byte is not None else tokenizer.display(token_id).encode()
        spans.append((len(text), len(text) + len(piece)))
        text += piece
    return text, spans


def _scope_mask(text: bytes) -> np.ndarray:
    mask = np.zeros(len(text), bool)
    for negator in NEGATOR.finditer(text):
        stop = SCOPE_END.search(text, negator.end())
        mask[negator.end() : stop.start() if stop else len(text)] = True
    return mask


def _between_mask(text: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(inside quotes, inside parentheses) per byte: strictly between a pair, the marks themselves outside."""
    quoted, bracketed = np.zeros(len(text), bool), np.zeros(len(text), bool)
    in_quote, depth, i = False, 0, 0
    while i < len(text):
        mark = next((q for q in QUOTES if text.startswith(q, i)), None)
        if mark is not None:
            in_quote = (not in_quote) if QUOTES[mark] is None else QUOTES[mark]
            i += len(mark)
            continue
        depth = depth + 1 if text[i] == ord("(") else max(depth - (text[i] == ord(")")), 0)
        quoted[i], bracketed[i] = in_quote, depth > 0 and text[i] not in b"()"
        i += 1
    if in_quote:  # a quote never closed marks nothing
        last = max(text.rfind(q) for q in QUOTES)
        quoted[last:] = False
    return quoted, bracketed


def token_properties(text: bytes, spans: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """Each per-token property of PROPERTIES for the tokens at `spans` of `text`. A token has a byte property when
    any of its non-space bytes has it; it belongs to the sentence its first non-space byte is in."""
    nonspace = np.frombuffer(text, np.uint8) != ord(" ")
    quoted, bracketed = _between_mask(text)
    masks = {"negation_scope": _scope_mask(text), "inside_quotes": quoted, "inside_parentheses": bracketed}
    sentence_of_byte = np.zeros(len(text) + 1, np.int64)
    for cut in SENTENCE_BREAK.finditer(text):
        sentence_of_byte[cut.end() :] += 1
    result = {name: np.array([(mask[b:e] & nonspace[b:e]).any() for b, e in spans]) for name, mask in masks.items()}
    first = [b + int(np.argmax(nonspace[b:e])) if nonspace[b:e].any() else b for b, e in spans]
    sentence = sentence_of_byte[first]
    starts = np.r_[0, np.flatnonzero(np.diff(sentence)) + 1]
    lengths = np.diff(np.r_[starts, len(spans)])
    position = np.arange(len(spans)) - np.repeat(starts, lengths)
    result["position_in_sentence"] = position
    result["tokens_to_sentence_end"] = np.repeat(lengths, lengths) - 1 - position
    result["sentence_end"] = result["tokens_to_sentence_end"] == 0
    return result


# ------------------------------------------------------------------------------------------------------ tracing


@dataclass
class ForgetStats:
    """Running sums of one layer and direction's forget gate, per unit."""

    f_sum: np.ndarray
    below_everywhere: np.ndarray  # the unit's forget gate stayed below 0.5 at every token so far
    kept_sum: np.ndarray  # memory kept across a word: the product of f over its pieces, summed over words
    tokens: int = 0
    words: int = 0
    texts: int = 0
    below_in_text: float = 0.0  # share of units below 0.5 at every token of a text, summed over texts
    below_at_token: float = 0.0  # share of units below 0.5 at a token, summed over tokens

    def add(self, f: np.ndarray, word_starts: np.ndarray) -> None:
        self.f_sum += f.sum(0)
        below = (f < 0.5).all(0)
        self.below_everywhere &= below
        self.below_in_text += below.mean()
        self.below_at_token += (f < 0.5).mean(1).sum()
        self.kept_sum += np.multiply.reduceat(f.astype(np.float64), word_starts, axis=0).sum(0)
        self.tokens, self.words, self.texts = self.tokens + len(f), self.words + len(word_starts), self.texts + 1


@dataclass
class Activations:
    """Every traced unit's values over the held-out texts, and what the texts say at each token."""

    tokens: dict = field(default_factory=dict)  # (layer, direction, value) -> list of (time, units) arrays
    texts: dict = field(default_factory=dict)  # (layer, direction, value, feature) -> list of (units,) arrays
    properties: dict = field(default_factory=dict)  # property -> list of (time,) arrays
    labels: list = field(default_factory=list)
    forget: dict = field(default_factory=dict)  # (layer, direction) -> ForgetStats


def word_starts(tokenizer, ids: list[int]) -> np.ndarray:
    """Where each word's pieces begin (the first piece always begins one)."""
    starts = [i for i, token_id in enumerate(ids) if i == 0 or tokenizer.starts_word(token_id)]
    return np.array(starts, np.int64)


def add_text(acts: Activations, layers: gates.Trace, tokenizer, ids: list[int], label: int) -> None:
    """Adds one traced text; `layers` holds (time, units) tensors over exactly `ids` (no start token)."""
    text, spans = token_bytes(tokenizer, ids)
    for name, values in token_properties(text, spans).items():
        acts.properties.setdefault(name, []).append(values)
    acts.labels.append(label)
    starts = word_starts(tokenizer, ids)
    for (layer, direction), values in layers.items():
        for value in VALUES:
            tensor = values[value].float().numpy()
            acts.tokens.setdefault((layer, direction, value), []).append(tensor)
            final = tensor[0] if direction == 1 else tensor[-1]  # what the direction holds after reading it all
            for feature, vector in zip(TEXT_FEATURES, (final, tensor.mean(0), tensor.max(0))):
                acts.texts.setdefault((layer, direction, value, feature), []).append(vector)
        f = values["f"].float().numpy()
        units = f.shape[1]
        stats = acts.forget.setdefault((layer, direction), ForgetStats(
            np.zeros(units), np.ones(units, bool), np.zeros(units)))
        stats.add(f, starts)


def trace_texts(model, tokenizer, texts: list[Review], start_id: int | None = None, batch: int = 64) -> Activations:
    """Traces `model` (gates.trace_model, checked against nn.LSTM) on each text from the zero state, after
    `start_id` when the model reads one first (its own values are left out), at most MAX_TOKENS tokens. Texts of
    the same length are traced together: no padding, so each row is exactly its text read alone."""
    encoded = [(tokenizer.encode(r.text)[:MAX_TOKENS], r.label) for r in texts]
    by_length: dict[int, list] = {}
    for ids, label in encoded:
        if ids:
            by_length.setdefault(len(ids), []).append((ids, label))
    acts = Activations()
    skip = int(start_id is not None)
    for group in by_length.values():
        for first in range(0, len(group), batch):
            rows = group[first : first + batch]
            traced = gates.trace_model(model, torch.tensor([[start_id] * skip + ids for ids, _ in rows]))
            for row, (ids, label) in enumerate(rows):
                layers = {key: {name: tensor[row, skip:].cpu() for name, tensor in values.items()}
                          for key, values in traced.items()}
                add_text(acts, layers, tokenizer, ids, label)
    return acts


# ------------------------------------------------------------------------------------------------------ measures


def auc_from_ranks(ranks: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per column, the area under the ROC curve of the ranked values for boolean `labels` (Mann-Whitney U / n+ n-):
    the chance that a token with the property outranks one without it, ties counting half."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return np.full(ranks.shape[1], np.nan)
    return (ranks[labels].sum(0) - positives * (positives + 1) / 2) / (positives * negatives)


def spearman_from_ranks(ranks: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per column, Spearman's correlation between the ranked values and `target`."""
    target_ranks = rankdata(target)
    centred = ranks - ranks.mean(0)
    t = target_ranks - target_ranks.mean()
    scale = np.sqrt((centred**2).sum(0) * (t**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, centred.T @ t / scale, 0.0)


def _fit_stump(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the threshold and orientation (True: positive above it) that classify `y` best on `x`."""
    order = np.argsort(x, axis=0, kind="stable")
    xs, ys = np.take_along_axis(x, order, 0), y[order].astype(np.float64)
    zero = np.zeros((1, x.shape[1]))
    negatives_below = np.vstack([zero, np.cumsum(1 - ys, 0)])  # cut k: the first k sorted values read negative
    positives_above = ys.sum(0) - np.vstack([zero, np.cumsum(ys, 0)])
    up = (negatives_below + positives_above) / len(y)
    best_up, best_down = up.argmax(0), up.argmin(0)
    upward = up.max(0) >= 1 - up.min(0)
    cut = np.where(upward, best_up, best_down)
    padded = np.vstack([xs[:1] - 1, xs, xs[-1:] + 1])  # a cut at either end puts every value on one side
    columns = np.arange(x.shape[1])
    threshold = (padded[cut, columns] + padded[cut + 1, columns]) / 2
    return threshold, upward


def probe_accuracy(features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Per column, the cross-validated accuracy of a linear probe on that one value (with one input, a linear
    classifier is a threshold and a side): fitted on four fifths of the texts, scored on the fifth left out."""
    fold = np.random.default_rng(seed).permutation(len(labels)) % folds
    correct = np.zeros(features.shape[1])
    for k in range(folds):
        train, test = fold != k, fold == k
        threshold, upward = _fit_stump(features[train], labels[train])
        predicted = (features[test] > threshold) == upward
        correct += (predicted == labels[test, None].astype(bool)).sum(0)
    return correct / len(labels)


# ------------------------------------------------------------------------------------------------------ scoring


@dataclass
class Scores:
    """One property's scores for the units of one (layer, direction, value[, feature])."""

    key: tuple
    score: np.ndarray  # AUC, Spearman's rho or probe accuracy, per unit
    control: np.ndarray  # the same measure against shifted or shuffled labels
    auc: np.ndarray | None = None  # per-text properties: the AUC beside the probe accuracy


def shifted(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """The labels rolled along the token stream by a quarter to three quarters of its length: each stretch of
    labels keeps its length, but now lies over other text."""
    n = len(labels)
    return np.roll(labels, int(np.random.default_rng(seed).integers(n // 4, max(3 * n // 4, n // 4 + 1))))


def score_tokens(acts: Activations) -> dict[str, list[Scores]]:
    """Every per-token property against every unit's h and c, with its shifted control."""
    properties = {name: np.concatenate(parts) for name, parts in acts.properties.items()}
    results: dict[str, list[Scores]] = {name: [] for name in properties}
    for key, parts in acts.tokens.items():
        ranks = rankdata(np.concatenate(parts), axis=0)  # once per key: every measure below reads ranks
        for name, target in properties.items():
            measure = auc_from_ranks if PROPERTIES[name][0] == "AUC" else spearman_from_ranks
            results[name].append(Scores(key, measure(ranks, target), measure(ranks, shifted(target))))
    return results


def score_texts(acts: Activations) -> list[Scores]:
    """Each unit's value over a text (TEXT_FEATURES) as a one-unit sentiment probe, against shuffled labels."""
    labels = np.array(acts.labels, bool)
    shuffled = np.random.default_rng(0).permutation(labels)
    results = []
    for key, parts in acts.texts.items():
        features = np.stack(parts)
        auc = auc_from_ranks(rankdata(features, axis=0), labels)
        results.append(Scores(key, probe_accuracy(features, labels), probe_accuracy(features, shuffled), auc))
    return results


def strength(measure: str, score: np.ndarray) -> np.ndarray:
    """How far from chance: |AUC - 0.5| and |rho| for how well, accuracy as it is."""
    if measure == "AUC":
        return np.abs(score - 0.5)
    return np.abs(score) if measure == "Spearman" else score


def oriented(measure: str, score: float, sign: int) -> float:
    """AUC read the unit's way round (a unit lower inside the scope has AUC 0.1: 0.9 lower inside)."""
    return score if measure != "AUC" or sign > 0 else 1 - score


def clears(measure: str, value: float) -> bool:
    return value >= BARS[measure]


def unit_entry(scores: Scores, unit: int, measure: str, n: int, n_positive: int | None) -> dict:
    layer, direction, value = scores.key[:3]
    raw = float(scores.score[unit])
    if measure == "probe accuracy":  # the side comes from the AUC: "+" when positive texts read higher
        sign = 1 if scores.auc[unit] >= 0.5 else -1
    else:
        sign = 1 if raw >= (0.5 if measure == "AUC" else 0) else -1
    entry = {
        "layer": layer, "direction": gates.DIRECTIONS[direction], "unit": int(unit), "value": value,
        "measure": measure, "score": round(oriented(measure, raw, sign), 4), "sign": "+" if sign > 0 else "-",
        "control": round(oriented(measure, float(scores.control[unit]), sign), 4), "n": n,
    }
    if measure == "Spearman":
        entry["score"], entry["control"] = round(raw, 4), round(float(scores.control[unit]), 4)
    if n_positive is not None:
        entry["n_positive"] = n_positive
    if scores.auc is not None:
        entry["feature"] = scores.key[3]
        entry["auc"] = round(float(max(scores.auc[unit], 1 - scores.auc[unit])), 4)
    return entry


def property_summary(name: str, candidates: list[Scores], n: int, n_positive: int | None) -> dict:
    """The TOP_UNITS best units for one property, whether any clears the bar, and the best under the control
    (the score the best of this many units reaches by chance)."""
    measure, description = PROPERTIES[name]
    summary = {"property": name, "description": description, "measure": measure, "n": n}
    if n_positive is not None:
        summary["n_positive"] = n_positive
    if all(np.isnan(s.score).all() for s in candidates):  # every token has it, or none
        return {**summary, "units_clearing_bar": 0, "best_units": [],
                "finding": "the held-out text gives no tokens with and without this property to compare"}
    flat = [(float(strength(measure, s.score)[u]), i, u) for i, s in enumerate(candidates)
            for u in np.argsort(-np.nan_to_num(strength(measure, s.score), nan=-1))[:TOP_UNITS]]
    best = [unit_entry(candidates[i], u, measure, n, n_positive) for _, i, u in sorted(flat, reverse=True)[:TOP_UNITS]]
    control = max(float(np.nanmax(strength(measure, s.control))) for s in candidates)
    control = 0.5 + control if measure == "AUC" else control
    # A unit clears the bar when it reaches BARS and beats every unit under the control: with few stretches of a
    # property (parentheses are rare), chance alone can give some unit a high AUC.
    floor = max(BARS[measure], control)
    passing = sum(int(np.sum(strength(measure, s.score) + (0.5 if measure == "AUC" else 0) > floor))
                  for s in candidates) if control < 1 else 0
    bar = f"{measure} >= {BARS[measure]}" + (f" (or <= {1 - BARS[measure]:.2f}: lower inside)" if measure == "AUC" else
                                             " in absolute value" if measure == "Spearman" else "")
    bar += ", and above best_control"
    summary.update(bar=bar, units_clearing_bar=passing, best_units=best, best_control=round(control, 4))
    if measure == "probe accuracy":  # what always guessing the commoner label scores
        summary["chance"] = round(max(n_positive, n - n_positive) / n, 4)
    if not passing:
        value = abs(best[0]["score"]) if best else float("nan")
        summary["finding"] = (f"no unit clears the bar: the best {measure} is {value:.2f} (bar {BARS[measure]}, "
                              f"best under the control {control:.2f})")
    return summary


def forget_summary(stats: dict) -> list[dict]:
    """Per layer and direction, how much memory the forget gates keep: the page's conveyor belt, measured."""
    rows = []
    for (layer, direction), s in sorted(stats.items()):
        mean_f = s.f_sum / s.tokens
        kept = s.kept_sum / s.words
        share = float((kept > 0.5).mean())
        rows.append({
            "layer": layer, "direction": gates.DIRECTIONS[direction], "units": len(mean_f),
            "mean_forget_per_token": round(float(mean_f.mean()), 4),
            "share_units_mean_forget_above_half": round(float((mean_f > 0.5).mean()), 4),
            "mean_memory_kept_per_word": round(float(kept.mean()), 4),
            "share_units_keep_over_half_per_word": round(share, 4),
            "share_units_below_half_at_every_token": round(float(s.below_everywhere.mean()), 4),
            "share_units_below_half_at_every_token_of_a_text": round(s.below_in_text / s.texts, 4),
            "mean_share_units_below_half_at_a_token": round(float(s.below_at_token / s.tokens), 4),
            "tokens": s.tokens, "words": s.words, "texts": s.texts,
            "sentence": f"In layer {layer + 1} ({gates.DIRECTIONS[direction]}), {share:.0%} of units keep more than "
                        f"half their memory from one word to the next.",
        })
    return rows


def atlas(acts: Activations) -> dict:
    """The scores and the forget-gate measurement of traced texts, as atlas.json holds them (less the header)."""
    n_tokens = sum(len(p) for p in acts.properties["sentence_end"])
    properties = []
    for name, candidates in score_tokens(acts).items():
        positives = int(np.concatenate(acts.properties[name]).sum()) if PROPERTIES[name][0] == "AUC" else None
        properties.append(property_summary(name, candidates, n_tokens, positives))
    properties.append(property_summary("sentiment", score_texts(acts), len(acts.labels), int(sum(acts.labels))))
    return {"properties": properties, "forget_gate": forget_summary(acts.forget)}


# ------------------------------------------------------------------------------------------------------ command


def check_trace(model, ids: list[int]) -> None:
    """Refuses to score a trace whose last layer differs from the module's own output (both directions)."""
    with torch.no_grad():
        output, _ = model.rnn(model.rnn_input(torch.tensor([ids])))
    traced = gates.trace_model(model, ids)
    last = model.rnn.num_layers - 1
    hidden = model.rnn.hidden_size
    for direction in range(2 if model.rnn.bidirectional else 1):
        expected = output[0, :, direction * hidden : (direction + 1) * hidden]
        torch.testing.assert_close(traced[(last, direction)]["h"][0], expected, atol=1e-4, rtol=0)


def run(kind: str, folder: Path, max_sentences: int, command: str) -> dict:
    from seqdemo.inference.hub import load_folder

    pipeline = load_folder(kind, folder, device="cpu")
    texts = held_out_texts(load_splits()[SPLIT], max_sentences)
    start = time.perf_counter()
    check_trace(pipeline.model, [*([pipeline.start_id] if pipeline.start_id is not None else []),
                                 *pipeline.tokenizer.encode(texts[0].text)])
    acts = trace_texts(pipeline.model, pipeline.tokenizer, texts, pipeline.start_id)
    traced = time.perf_counter() - start
    result = atlas(acts)
    rnn = pipeline.model.rnn
    header = {
        "model": {"kind": kind, "layers": rnn.num_layers, "directions": 2 if rnn.bidirectional else 1,
                  "units": rnn.hidden_size, "values": list(VALUES)},
        "text": {"split": SPLIT, "texts": len(texts), "sentences": sum(len(sentences(t.text)) for t in texts),
                 "tokens": result["properties"][0]["n"],
                 "sources": {s: sum(t.source == s for t in texts) for s in sorted({t.source for t in texts})},
                 "how": f"Rotten Tomatoes validation sentences, then the last {IMDB_WINDOW} sentences of "
                        f"validation IMDB reviews (labelled by their review), each text traced alone from the zero "
                        f"state, at most {MAX_TOKENS} tokens" + (", after the begin-of-text token" if
                                                                pipeline.start_id is not None else "")},
        "controls": "per-token properties: the same unit against the labels rolled along the token stream; "
                    "sentiment: against shuffled labels. best_control: the best unit under the control.",
        "command": command,
        "seconds": {"trace": round(traced, 1), "total": round(time.perf_counter() - start, 1)},
    }
    return {**header, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="sentiment,nextword", help="comma-separated checkpoints to score")
    parser.add_argument("--checkpoints", type=Path, default=Path("checkpoints"), help="folder holding them")
    parser.add_argument("--max-sentences", type=int, default=2000, help="held-out sentences to read (fewer: faster)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = "python -m seqdemo.experiments.atlas " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items())
    for kind in args.kinds.split(","):
        result = run(kind, args.checkpoints / kind, args.max_sentences, command)
        path = args.checkpoints / kind / ATLAS_FILE
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"{path}: {result['seconds']['total']} s")
        for entry in result["properties"]:
            top = entry["best_units"][0]
            print(f"  {entry['property']}: {top['measure']} {top['score']} (control {entry['best_control']}), "
                  f"{entry['units_clearing_bar']} clear the bar; L{top['layer']} {top['direction']} "
                  f"#{top['unit']} {top['value']}")
        for row in result["forget_gate"]:
            print(f"  {row['sentence']} mean f {row['mean_forget_per_token']}")


if __name__ == "__main__":
    main()
