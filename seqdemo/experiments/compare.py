"""The chapter's claims about RNN, LSTM, BiLSTM, GRU and Conv1d, measured on one data split (tracker issue 12).

    nice -n 19 python -m seqdemo.experiments.compare                       # the full comparison: about 85 minutes, 2 CPU threads
    python -m seqdemo.experiments.compare --tiny --out /tmp/compare        # a smoke run on a few rows, seconds
    python -m seqdemo.experiments.compare --out runs/again --against checkpoints/compare/results.json   # a rerun, compared
    python -m seqdemo.experiments.compare --rederive                       # verdicts recomputed from the stored runs

The textbook chapter on LSTMs claims:
1. an LSTM "will drastically outperform a standard RNN on long movie reviews" (the cell state lets gradients
   reach the first sentence);
2. a bidirectional LSTM gives "massive accuracy boosts" over a one-directional one;
3. a GRU "trains much faster and often achieves the exact same accuracy": "always try a GRU first";
4. a Conv1d before the LSTM "extracts phrase patterns, shortening the sequence and making the LSTM's job much easier
   and faster";
5. stacked LSTMs overfit quickly without `dropout=0.2` between layers.

Every variant (VARIANTS) is a `SentimentClassifier` with about 100k trainable parameters, trained with one recipe:
the main tokenizer and a frozen copy of the main language model's embedding (checkpoints/nextword, read when the
command runs and recorded by hash), the fixed train/valid/test split of seqdemo.experiments.data, AdamW with warm-up and cosine
decay over the same wall-clock budget per run, and the decision read from the recurrence's final state (pooling
"last", as in the chapter), so that a review's opening can only count if the recurrence carries it to the end.
Each variant is trained with every seed (`--seeds`); a number is reported as the mean and the spread (max - min)
over seeds.

Measured per run: test accuracy on IMDB and Rotten Tomatoes, IMDB test accuracy by review length (thirds of the
test reviews' token counts), accuracy on training rows it was trained on (for claim 5's overfitting gap),
training tokens/s and the training seconds until validation accuracy first reached `--target-accuracy`,
inference milliseconds per review (one at a time, as the demo reads them), parameters.

`--out` (checkpoints/compare) receives results.json, rewritten after every finished run (a killed run keeps
what it finished, and a rerun with the same settings and embedding skips it), and, for each variant, the weights
of its first seed without the embedding (a few hundred kB): `load_variants` rebuilds them with the embedding of
the checkpoint they were trained on.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from seqdemo.core.models import SentimentClassifier
from seqdemo.core.text import head_and_tail, pad_batch
from seqdemo.core.tokenizer import Tokenizer
from seqdemo.experiments.data import Review, load_splits
from seqdemo.experiments.evaluate import accuracy_by_source, mean_over_sources
from seqdemo.experiments.train import (
    WarmupCosine,
    clip_and_step,
    length_batches,
    same_length,
    seed_everything,
)
from seqdemo.inference.sentiment import SentimentPipeline
from seqdemo.inference.variants import (
    DEFAULT_EMBEDDING_FROM,
    DEFAULT_OUT,
    RESULTS_FILE,
    TITLES,
    VARIANT_KIND,
    VARIANTS,
    build_variant,
    format_stat,
    load_embedding,
)

CLAIMS = {
    1: "An LSTM drastically outperforms a plain RNN on long movie reviews.",
    2: "A bidirectional LSTM gives massive accuracy boosts over a one-directional one.",
    3: "A GRU trains much faster and often reaches the same accuracy as an LSTM.",
    4: "A Conv1d before the (Bi)LSTM shortens the sequence and makes it easier and faster.",
    5: "Stacked LSTMs overfit quickly without dropout=0.2 between layers.",
}
LENGTH_BUCKETS = ("short", "medium", "long")


@dataclass
class CompareSettings:
    out: Path = DEFAULT_OUT
    embedding_from: Path = DEFAULT_EMBEDDING_FROM
    variants: tuple[str, ...] = tuple(VARIANTS)
    seeds: tuple[int, ...] = (0, 1)
    max_minutes: float = 85.0  # the whole command; each run gets an equal share (run_minutes)
    # Per run, outside its training budget: validation pauses and the test evaluation. Measured on the 2-core CPU:
    # 14-22 s of evaluation (a BiLSTM slowest); a validation reads 300 rows, about a second (estimated).
    eval_minutes: float = 0.7
    setup_minutes: float = 0.5  # loading and tokenizing the data once (measured: about 10 s)
    limit: int = 0  # rows per split and source (0: all); the smoke run's slice
    max_steps: int = 0  # training steps per run (0: only the time budget stops a run)
    batch_size: int = 32
    lr: float = 3e-3
    warmup: float = 0.05
    clip: float = 1.0
    train_tokens: int = 384  # head and tail of each training text
    max_tokens: int = 512  # head and tail the models read at test time
    valid_rows: int = 300  # validation rows checked during training (half per source)
    validate_every: float = 15.0  # training seconds (not steps: fast and slow variants are checked equally often)
    target_accuracy: float = 0.70  # mean validation accuracy over sources that "time to accuracy" waits for
    train_check_rows: int = 600  # training rows re-read after training (claim 5's train-valid gap)
    timing_rows: int = 40  # IMDB test reviews timed one by one
    threads: int = 2
    against: Path | None = None  # an earlier run's results.json that main() sets this run's numbers beside
    rederive: bool = False  # only recompute --out's verdicts and derived tables from its stored runs

    @property
    def run_minutes(self) -> float:
        """Training minutes of each run: the budget left after setup and evaluations, shared equally."""
        runs = len(self.variants) * len(self.seeds)
        return max(0.05, (self.max_minutes - self.setup_minutes) / runs - self.eval_minutes)

    def recipe(self) -> dict:
        """What must match for an earlier run's numbers to be reused."""
        skip = {"out", "variants", "seeds", "max_minutes", "eval_minutes", "setup_minutes", "threads", "against", "rederive"}
        values = {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}
        return json.loads(json.dumps({**values, "run_minutes": round(self.run_minutes, 2)}, default=str))


# --------------------------------------------------------------------------------------------- shared embedding


def trainable_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

def save_variant(model: SentimentClassifier, folder: Path, config: dict) -> None:
    """config.json and float16 model.safetensors without the embedding (it lives in the main checkpoint)."""
    import safetensors.torch

    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().half().contiguous() for k, v in model.state_dict().items()
               if not k.startswith("embedding.")}
    safetensors.torch.save_file(weights, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"kind": VARIANT_KIND, **config}, indent=2) + "\n")


# ---------------------------------------------------------------------------------------------------- one run


@dataclass
class Data:
    tokenizer: Tokenizer
    train: list[tuple[list[int], int]]  # (head-and-tail ids, label)
    train_check: list[Review]  # training rows re-read after training
    valid: list[Review]
    test: list[Review]
    test_buckets: list[str | None]  # per test row: short/medium/long (IMDB), None (Rotten Tomatoes)
    bucket_edges: list[int]  # token counts that separate the buckets
    timing: list[str]


def limit_rows(rows: list[Review], per_source: int, rng: random.Random) -> list[Review]:
    """At most `per_source` rows of each source, drawn at random (both labels keep their share on average)."""
    if not per_source:
        return rows
    kept = []
    for source in sorted({r.source for r in rows}):
        of_source = [r for r in rows if r.source == source]
        kept += rng.sample(of_source, min(per_source, len(of_source)))
    return kept


def prepare_data(settings: CompareSettings, splits: dict[str, list[Review]], tokenizer: Tokenizer) -> Data:
    rng = random.Random(0)  # the same rows for every run and every rerun
    train = limit_rows(splits["train"], settings.limit, rng)
    valid = limit_rows(splits["valid"], settings.valid_rows // 2, rng)
    test = limit_rows(splits["test"], settings.limit, rng)
    encoded = [(head_and_tail(tokenizer.encode(r.text), settings.train_tokens), r.label)
               for r in tqdm(train, desc="tokenizing", dynamic_ncols=True)]
    test_lengths = [len(tokenizer.encode(r.text)) if r.source == "imdb" else None for r in test]
    imdb_lengths = sorted(n for n in test_lengths if n is not None)
    edges = [imdb_lengths[len(imdb_lengths) // 3], imdb_lengths[2 * len(imdb_lengths) // 3]] if imdb_lengths else [0, 0]
    buckets = [None if n is None else LENGTH_BUCKETS[(n >= edges[0]) + (n >= edges[1])] for n in test_lengths]

    imdb_test = [r.text for r in test if r.source == "imdb"]
    return Data(
        tokenizer=tokenizer, train=encoded, train_check=rng.sample(train, min(settings.train_check_rows, len(train))),
        valid=valid, test=test, test_buckets=buckets, bucket_edges=edges,
        timing=imdb_test[: settings.timing_rows] or [r.text for r in test[: settings.timing_rows]],
    )


def correct(pipeline: SentimentPipeline, reviews: list[Review]) -> list[bool]:
    predicted = pipeline.predict([r.text for r in reviews], batch_size=64)
    return [p["label"] == pipeline.labels[r.label] for p, r in zip(predicted, reviews)]


def mean_accuracy(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def per_source(answers: list[bool], reviews: list[Review]) -> dict[str, float]:
    return {source: mean_accuracy([a for a, r in zip(answers, reviews) if r.source == source])
            for source in sorted({r.source for r in reviews})}


def train_run(name: str, seed: int, settings: CompareSettings, data: Data, embedding: torch.nn.Embedding,
              device: torch.device) -> tuple[SentimentClassifier, dict]:
    """Trains one variant with one seed for run_minutes (or max_steps); returns the model and its training
    record. Validation pauses are not counted in the training time."""
    seed_everything(seed)
    model = build_variant(VARIANTS[name], embedding, data.tokenizer, settings.max_tokens).to(device)
    pipeline = SentimentPipeline(model, data.tokenizer, device, source=name)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=0.01)
    schedule = WarmupCosine(optimizer, settings.max_steps or 10**9, settings.run_minutes, settings.warmup)
    budget = settings.run_minutes * 60
    train_seconds, tokens, steps, curve, reached = 0.0, 0, 0, [], None
    next_validation = settings.validate_every

    def validate() -> float:
        model.eval()
        valid = accuracy_by_source(pipeline, data.valid)
        model.train()
        return round(mean_over_sources(valid), 4)

    bar = tqdm(total=round(budget), desc=f"{name} seed {seed}", unit="s", dynamic_ncols=True, leave=False)
    model.train()
    while True:
        for batch in length_batches(data.train, settings.batch_size, key=lambda e: len(e[0]), shuffle=True):
            started = time.perf_counter()
            ids, lengths = pad_batch(same_length([e[0] for e in batch]), data.tokenizer.pad_id)
            labels = torch.tensor([e[1] for e in batch], device=device)
            loss = F.cross_entropy(model(ids.to(device), lengths), labels)
            loss.backward()
            clip_and_step(optimizer, model, settings.clip)
            # The schedule's clock includes validation; the budget below does not, so it decays a little early.
            schedule.step()
            spent = time.perf_counter() - started
            train_seconds += spent
            tokens += int(lengths.sum())
            steps += 1
            bar.update(round(train_seconds) - bar.n)
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tokens / train_seconds:.0f}")
            done = train_seconds >= budget or (settings.max_steps and steps >= settings.max_steps)
            if train_seconds >= next_validation or done:
                next_validation += settings.validate_every
                accuracy = validate()
                curve.append([round(train_seconds, 1), accuracy])
                if reached is None and accuracy >= settings.target_accuracy:
                    reached = round(train_seconds, 1)
            if done:
                bar.close()
                return model.eval(), {
                    "steps": steps, "train_tokens": tokens, "train_seconds": round(train_seconds, 1),
                    "tokens_per_second": round(tokens / train_seconds), "seconds_to_target": reached,
                    "valid_curve": curve, "valid_accuracy": curve[-1][1],
                }


def evaluate_run(model: SentimentClassifier, data: Data, device: torch.device) -> dict:
    pipeline = SentimentPipeline(model, data.tokenizer, device, source="compare")
    answers = correct(pipeline, data.test)
    by_source = per_source(answers, data.test)
    by_length = {bucket: mean_accuracy([a for a, b in zip(answers, data.test_buckets) if b == bucket])
                 for bucket in LENGTH_BUCKETS}
    train_accuracy = mean_over_sources(accuracy_by_source(pipeline, data.train_check))
    with torch.no_grad():
        pipeline.predict(data.timing[0])  # warm-up
        started = time.perf_counter()
        for text in data.timing:
            pipeline.predict(text)
        inference_ms = (time.perf_counter() - started) * 1000 / len(data.timing)
    return {
        "test_accuracy": by_source, "imdb_accuracy_by_length": by_length,
        "train_accuracy": round(train_accuracy, 4),
        "inference_ms": round(inference_ms, 2),
    }


# ------------------------------------------------------------------------------------------ summary and verdicts


def mean_and_spread(values: list[float | None]) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": round(statistics.fmean(values), 4), "spread": round(max(values) - min(values), 4),
            "n": len(values)}


def summarize(runs: list[dict]) -> dict[str, dict]:
    """Per variant: every measurement as mean and spread (max - min) over its seeds."""
    summary = {}
    for name in VARIANTS:
        mine = [r for r in runs if r["variant"] == name]
        if not mine:
            continue
        sources = sorted({s for r in mine for s in r["test_accuracy"]})
        summary[name] = {
            "title": TITLES[name],
            "seeds": [r["seed"] for r in mine],
            "parameters": mine[0]["parameters"],
            "test_accuracy": {s: mean_and_spread([r["test_accuracy"].get(s) for r in mine]) for s in sources},
            "test_accuracy_mean_over_sources": mean_and_spread(
                [statistics.fmean(r["test_accuracy"].values()) for r in mine]),
            "imdb_accuracy_by_length": {b: mean_and_spread([r["imdb_accuracy_by_length"][b] for r in mine])
                                        for b in LENGTH_BUCKETS},
            "train_accuracy": mean_and_spread([r["train_accuracy"] for r in mine]),
            "valid_accuracy": mean_and_spread([r["valid_accuracy"] for r in mine]),
            "train_minus_valid_accuracy": mean_and_spread([r["train_accuracy"] - r["valid_accuracy"] for r in mine]),
            "tokens_per_second": mean_and_spread([r["tokens_per_second"] for r in mine]),
            "seconds_to_target": mean_and_spread([r["seconds_to_target"] for r in mine]),
            "runs_reaching_target": sum(r["seconds_to_target"] is not None for r in mine),
            "inference_ms": mean_and_spread([r["inference_ms"] for r in mine]),
        }
    return summary


def _get(summary: dict, name: str, *path: str) -> dict | None:
    value = summary.get(name)
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _difference(a: dict, b: dict, sampling: float = 0.0) -> tuple[float, float]:
    """a - b, and the noise it must beat: the two half-spreads added, never below one point (about the sampling
    error of a difference of two test accuracies on this split's 5,000 test rows) nor below `sampling`, the
    sampling error of numbers measured on fewer rows."""
    return a["mean"] - b["mean"], max(0.01, sampling, (a["spread"] + b["spread"]) / 2)


def sampling_error(accuracies: list[tuple[float, int]]) -> float:
    """The standard error of a sum or difference of accuracies, each measured on its own (accuracy, rows)."""
    return math.sqrt(sum(p * (1 - p) / rows for p, rows in accuracies))


def _gain_verdict(gain: float, noise: float, large: float) -> str:
    """A claimed accuracy gain: supported when it is `large` and beyond the seeds' noise, not supported when it
    stays within the noise, depends in between."""
    return "supported" if gain >= max(large, noise) else "not supported" if gain <= noise else "depends"


MUCH_FASTER = 1.2  # "trains much faster": at least 1.2 times the baseline's speed


def target_ratio(summary: dict, name: str, baseline: str) -> float | None:
    """How many times sooner `name` reached the target validation accuracy than `baseline` (baseline seconds over
    its seconds; 0 when only the baseline got there, infinite when only `name` did, None when neither did)."""
    mine, theirs = (_get(summary, n, "seconds_to_target") for n in (name, baseline))
    if mine and theirs:
        return theirs["mean"] / mine["mean"] if mine["mean"] else math.inf
    return None if not (mine or theirs) else math.inf if mine else 0.0


def speed_verdict(tokens_ratio: float, to_target_ratio: float | None) -> str:
    """"Much faster" judged by both speed numbers (training tokens/s, and time to the target accuracy, when
    measured): supported when every one is at least MUCH_FASTER, not supported when none is, depends when they
    disagree."""
    faster = [r >= MUCH_FASTER for r in (tokens_ratio, to_target_ratio) if r is not None]
    return "supported" if all(faster) else "not supported" if not any(faster) else "depends"


def speed_and_accuracy_verdict(on_speed: str, gap: float, noise: float, tokens_ratio: float) -> tuple[str, str]:
    """A claim that a variant is faster and as accurate: (verdict, reading). Both halves must hold; the reading
    names the half that fails and states the other, e.g. "not supported (on speed); accuracy +0.7 points"."""
    as_good = gap >= -noise
    accuracy = f"accuracy {gap * 100:+.1f} points"
    if as_good:
        return {"supported": ("supported", "supported"),
                "not supported": ("not supported", f"not supported (on speed); {accuracy}"),
                "depends": ("depends", f"depends (the two speed numbers disagree); {accuracy}")}[on_speed]
    return "not supported", {"supported": f"not supported (on accuracy: {gap * 100:+.1f} points); "
                                          f"{tokens_ratio:.2f}× the tokens/s",
                             "not supported": f"not supported (on speed and accuracy); {accuracy}",
                             "depends": f"not supported (on accuracy: {gap * 100:+.1f} points); the two speed "
                                        "numbers disagree"}[on_speed]


def claim_verdicts(summary: dict, bucket_edges: list[int], check_rows: dict[str, int]) -> list[dict]:
    """One verdict per claim, from the numbers: supported, not supported, depends, or not measured.
    `check_rows`: how many rows measured the train and valid accuracies of claim 5 ({"train": n, "valid": n})."""
    out = []

    def add(number: int, verdict: str, line: str, names: tuple[str, ...] = (), reading: str = "") -> None:
        seeds = min((len(summary[n]["seeds"]) for n in names if n in summary), default=0)
        if verdict != "not measured" and seeds < 2:
            line += "; one seed only, so no spread yet"
        # verdict: one of four words, for programs and reruns; reading: what the page shows, the verdict and why.
        out.append({"claim": number, "text": CLAIMS[number], "verdict": verdict, "reading": reading or verdict,
                    "line": line, "seeds": seeds})

    # 1 and 2 share a shape: a variant beats its baseline by `large` or more, beyond the seeds' noise.
    def better_by(number: int, name: str, baseline: str, large: float, what: str, labels: tuple[str, str],
                  *keys: str) -> None:
        new, old = (_get(summary, n, *keys) for n in (name, baseline))
        if not (new and old):
            add(number, "not measured", f"needs the {name} and {baseline} runs")
            return
        gain, noise = _difference(new, old)
        add(number, _gain_verdict(gain, noise, large), f"{what}: {labels[0]} {format_stat(new)} vs {labels[1]} "
                                                       f"{format_stat(old)} ({gain * 100:+.1f} points)", (name, baseline))

    # 1: "drastically" on long IMDB reviews: by 5 points or more.
    better_by(1, "lstm", "rnn", 0.05, f"long IMDB reviews (≥ {bucket_edges[1]} tokens)", ("LSTM", "RNN"),
              "imdb_accuracy_by_length", "long")
    # 2: "massive", in mean test accuracy over both sources: by 3 points or more.
    better_by(2, "bilstm", "lstm", 0.03, "test accuracy (mean of IMDB and RT)", ("BiLSTM", "LSTM"),
              "test_accuracy_mean_over_sources")

    # 3 and 4 share a shape: a variant against its baseline on speed (two numbers) and accuracy.
    def faster_and_as_good(number: int, name: str, baseline: str) -> None:
        acc, base_acc = (_get(summary, n, "test_accuracy_mean_over_sources") for n in (name, baseline))
        speed, base_speed = (_get(summary, n, "tokens_per_second") for n in (name, baseline))
        if not (acc and base_acc and speed and base_speed):
            add(number, "not measured", f"needs the {name} and {baseline} runs")
            return
        ratio = speed["mean"] / base_speed["mean"]
        gap, noise = _difference(acc, base_acc)
        to_target = [_get(summary, n, "seconds_to_target") for n in (name, baseline)]
        target = (f"; to the target validation accuracy {format_stat(to_target[0], 1, ' s')} "
                  f"vs {format_stat(to_target[1], 1, ' s')}" if all(to_target) else "")
        on_speed = speed_verdict(ratio, target_ratio(summary, name, baseline))
        verdict, reading = speed_and_accuracy_verdict(on_speed, gap, noise, ratio)
        add(number, verdict, f"{TITLES[name]} trains at {ratio:.2f}× the tokens/s of {TITLES[baseline]}{target}; "
                             f"test accuracy {format_stat(acc)} vs {format_stat(base_acc)} ({gap * 100:+.1f} points)",
            (name, baseline), reading)

    faster_and_as_good(3, "gru", "lstm")
    faster_and_as_good(4, "conv_bilstm", "bilstm")

    claim_five(summary, check_rows, add)
    return out


def claim_five(summary: dict, check_rows: dict[str, int], add: Callable) -> None:
    """Claim 5's verdict: dropout should shrink the overfitting gap (train minus valid accuracy) and help the test
    accuracy, each beyond its noise."""
    # 5: overfitting = training accuracy minus validation accuracy; dropout should shrink it and help test accuracy.
    gap_plain, gap_dropout = (_get(summary, n, "train_minus_valid_accuracy") for n in ("lstm2", "lstm2_dropout"))
    acc_plain, acc_dropout = (_get(summary, n, "test_accuracy_mean_over_sources") for n in ("lstm2", "lstm2_dropout"))
    if gap_plain and gap_dropout and acc_plain and acc_dropout:
        # The gaps come from a few hundred rows, where two seeds' spread understates the noise (a rerun moved one
        # variant's gap by 3.8 points, each run's spread under 0.3): the noise is at least the sampling error of the
        # difference of the two gaps, from its four accuracies and their row counts.
        sampling = sampling_error([(summary[n][f"{part}_accuracy"]["mean"], check_rows[part])
                                   for n in ("lstm2", "lstm2_dropout") for part in ("train", "valid")])
        overfit, noise = _difference(gap_plain, gap_dropout, sampling)
        helps, acc_noise = _difference(acc_dropout, acc_plain)
        if overfit > noise and helps > acc_noise:
            verdict = "supported"
        elif overfit <= noise and helps <= acc_noise:
            verdict = "not supported"
        else:
            verdict = "depends"
        add(5, verdict, f"train − valid accuracy: 2-layer LSTM {format_stat(gap_plain)} without dropout, "
                        f"{format_stat(gap_dropout)} with 0.2 (noise {noise * 100:.1f} points, from "
                        f"{check_rows['train']} train and {check_rows['valid']} valid rows); test accuracy "
                        f"{format_stat(acc_plain)} vs {format_stat(acc_dropout)}",
            ("lstm2", "lstm2_dropout"))
    else:
        add(5, "not measured", "needs the lstm2 and lstm2_dropout runs")


# ------------------------------------------------------------------------------------- equal amount of training

EQUAL_TRAINING_NOTE = ("training tokens ≈ training seconds × the run's measured tokens/s; validation accuracy "
                       "interpolated linearly between the run's validation checks")


def curve_in_tokens(run: dict) -> list[tuple[float, float]]:
    """A run's validation curve against training tokens, approximated as seconds × its measured tokens/s."""
    return [(seconds * run["tokens_per_second"], accuracy) for seconds, accuracy in run.get("valid_curve", [])]


def accuracy_after(curve: list[tuple[float, float]], tokens: float) -> float | None:
    """Validation accuracy after `tokens` training tokens, linear between the two checks around it; None before the
    first check or past the last (not measured there)."""
    for (t0, a0), (t1, a1) in zip(curve, curve[1:]):
        if t0 <= tokens <= t1:
            return a0 if t1 == t0 else a0 + (a1 - a0) * (tokens - t0) / (t1 - t0)
    return curve[0][1] if len(curve) == 1 and curve[0][0] == tokens else None


def equal_training(runs: list[dict]) -> dict | None:
    """Every variant at the same amount of training: the most training tokens every run reached (the slowest run's
    last check), and each variant's validation accuracy there (mean and spread over seeds). Every run trained for
    the same minutes, so the faster variants saw more data; this sets them side by side at equal data."""
    curves = {id(run): curve_in_tokens(run) for run in runs}
    if not runs or not all(curves.values()):
        return None
    tokens = min(curve[-1][0] for curve in curves.values())
    variants = {}
    for name in VARIANTS:
        accuracies = [accuracy_after(curves[id(r)], tokens) for r in runs if r["variant"] == name]
        if accuracies:
            variants[name] = mean_and_spread([None if a is None else round(a, 4) for a in accuracies])
    return {"tokens": round(tokens), "approximation": EQUAL_TRAINING_NOTE, "valid_accuracy": variants}


def rederive(path: Path) -> dict:
    """Recomputes a results.json's summary, claim verdicts and equal-training comparison from its stored runs (no
    training; every measured number is kept), and rewrites it."""
    results = json.loads(Path(path).read_text())
    header = {k: v for k, v in results.items() if k not in {"runs", "variants", "claims", "equal_training"}}
    edges = results["length_buckets"]["medium"]
    return write_results(Path(path), header, results["runs"], edges)


# ----------------------------------------------------------------------------------------------- reproduction

REPRODUCED = {"IMDB test": ("test_accuracy", "imdb"), "RT test": ("test_accuracy", "rotten_tomatoes"),
              "IMDB long reviews": ("imdb_accuracy_by_length", "long")}


def reproduction(earlier: dict, now: dict) -> list[str]:
    """A rerun's accuracies and verdicts beside an earlier run's, as markdown. An accuracy counts as reproduced when
    the two means differ by no more than the noise the verdicts allow (the half-spreads added, at least a point)."""
    lines = ["| variant | accuracy | earlier | now | difference | within the spreads |", "|---|---|---|---|---|---|"]
    within = total = 0
    for name in now["variants"]:
        for label, path in REPRODUCED.items():
            before, after = _get(earlier["variants"], name, *path), _get(now["variants"], name, *path)
            if before and after:
                gap, noise = _difference(after, before)
                reproduced = abs(round(gap, 4)) <= noise
                total, within = total + 1, within + reproduced
                lines.append(f"| {TITLES[name]} | {label} | {format_stat(before)} | {format_stat(after)} | "
                             f"{gap * 100:+.1f} | {'yes' if reproduced else 'no'} |")
    lines.append(f"\n{within} of {total} accuracies within the spreads.\n")
    for before, after in zip(earlier["claims"], now["claims"]):
        same = "same" if before["verdict"] == after["verdict"] else "changed"
        lines.append(f"- claim {after['claim']}: {before['verdict']} → {after['verdict']} ({same})")
    return lines


# ----------------------------------------------------------------------------------------------------- driver


def write_results(path: Path, header: dict, runs: list[dict], bucket_edges: list[int]) -> dict:
    summary = summarize(runs)
    check_rows = {"train": header["recipe"]["train_check_rows"], "valid": header["recipe"]["valid_rows"]}
    results = {**header, "runs": runs, "variants": summary, "claims": claim_verdicts(summary, bucket_edges, check_rows),
               "equal_training": equal_training(runs)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)  # never a half-written results file
    return results


def results_header(settings: CompareSettings, data: Data, embedding: torch.nn.Embedding, embedding_hash: str,
                   command: str) -> dict:
    """What results.json says about the whole comparison: its command, recipe, embedding, hardware and rows."""
    return {
        "command": command,
        "recipe": settings.recipe(),
        "embedding": {"from": str(settings.embedding_from), "sha256": embedding_hash,
                      "dim": embedding.embedding_dim, "vocab_size": embedding.num_embeddings},
        "hardware": f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "notes": "spread = max - min over seeds; a verdict line's ± is half the spread",
        "rows": {"train": len(data.train), "valid": len(data.valid), "test": len(data.test)},
        "length_buckets": {"short": [0, data.bucket_edges[0]], "medium": data.bucket_edges,
                           "long": [data.bucket_edges[1], None], "unit": "tokens of an IMDB test review"},
    }


def earlier_runs(path: Path, header: dict, settings: CompareSettings) -> tuple[list[dict], float]:
    """The finished runs an earlier comparison with the same recipe and embedding left in `path`, and its minutes.
    A resumed comparison is still one measurement: `header` takes the command that started it."""
    if not path.is_file():
        return [], 0.0
    earlier = json.loads(path.read_text())
    if earlier.get("recipe") != header["recipe"] or earlier.get("embedding") != header["embedding"]:
        return [], 0.0
    runs = [r for r in earlier["runs"] if r["variant"] in settings.variants and r["seed"] in settings.seeds]
    header["command"] = earlier["command"]
    tqdm.write(f"resuming: {len(runs)} runs already in {path}")
    return runs, earlier.get("minutes", 0.0)


def run_comparison(settings: CompareSettings, splits: dict[str, list[Review]] | None = None,
                   command: str = "python -m seqdemo.experiments.compare") -> dict:
    """Trains and measures every (variant, seed) not already in `settings.out`/results.json; returns the results."""
    started = time.time()
    torch.set_num_threads(settings.threads)
    device = torch.device("cpu")  # the budget and the timings are sized for the CPU
    tokenizer = Tokenizer.load(settings.embedding_from)
    embedding, embedding_hash = load_embedding(settings.embedding_from, tokenizer.pad_id)
    data = prepare_data(settings, splits or load_splits(), tokenizer)
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS_FILE
    header = results_header(settings, data, embedding, embedding_hash, command)
    runs, minutes_before = earlier_runs(path, header, settings)
    runs_before = len(runs)

    def with_minutes() -> dict:
        # A rerun over a finished comparison trains nothing and adds no minutes: it only re-derives the verdicts.
        spent = (time.time() - started) / 60 if len(runs) > runs_before else 0.0
        return {**header, "minutes": round(minutes_before + spent, 1)}

    write_results(path, with_minutes(), runs, data.bucket_edges)
    done = {(r["variant"], r["seed"]) for r in runs}
    # Every variant's first seed before any second one, so a run cut short still covers every claim.
    todo = [(n, s) for s in settings.seeds for n in settings.variants if (n, s) not in done]
    deadline = started + settings.max_minutes * 60
    for name, seed in tqdm(todo, desc="runs", dynamic_ncols=True):
        # Up to 3 minutes over the budget rather than drop a run for a slow evaluation.
        if time.time() + (settings.run_minutes + settings.eval_minutes) * 60 > deadline + 180:
            tqdm.write(f"stopping: {settings.max_minutes} minutes spent; rerun the same command to continue")
            break
        model, record = train_run(name, seed, settings, data, embedding, device)
        evaluated_at = time.time()
        record.update(evaluate_run(model, data, device))
        record = {"variant": name, "seed": seed, "parameters": trainable_parameters(model), **record,
                  "eval_seconds": round(time.time() - evaluated_at, 1)}
        if seed == settings.seeds[0]:
            save_variant(model, out / name, {
                "options": VARIANTS[name], "seed": seed, "max_tokens": settings.max_tokens,
                "embedding_from": str(settings.embedding_from), "embedding_sha256": embedding_hash,
            })
            record["weights"] = name
        runs.append(record)
        results = write_results(path, with_minutes(), runs, data.bucket_edges)
        tqdm.write(f"{name} seed {seed}: test {record['test_accuracy']}, {record['tokens_per_second']} tokens/s, "
                   f"target after {record['seconds_to_target']} s")
    results = write_results(path, with_minutes(), runs, data.bucket_edges)
    for claim in results["claims"]:
        tqdm.write(f"claim {claim['claim']}: {claim['verdict']}: {claim['line']}")
    return results


def parse_args(argv=None) -> CompareSettings:
    defaults = CompareSettings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=defaults.out, help="folder for results.json and the weights")
    parser.add_argument("--embedding-from", type=Path, default=defaults.embedding_from,
                        help="language-model checkpoint whose tokenizer and embedding every variant shares")
    parser.add_argument("--max-minutes", type=float, default=defaults.max_minutes,
                        help="the whole command's budget; each run trains for an equal share")
    parser.add_argument("--variants", default=",".join(defaults.variants), help=f"some of {','.join(VARIANTS)}")
    parser.add_argument("--seeds", type=int, default=len(defaults.seeds), help="seeds per variant")
    parser.add_argument("--limit", type=int, default=0, help="rows per split and source (0: all)")
    parser.add_argument("--max-steps", type=int, default=0, help="training steps per run (0: time budget only)")
    parser.add_argument("--tiny", action="store_true",
                        help="smoke run: 24 rows per split and source, 3 steps per run, short texts")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="CPU threads")
    parser.add_argument("--against", type=Path, default=None,
                        help="an earlier run's results.json: print which of its accuracies and verdicts this run "
                             "reproduces (finished runs in --out are kept, so on a complete run this only compares)")
    parser.add_argument("--rederive", action="store_true",
                        help="train nothing: recompute the summary, the claims' verdicts and the equal-training "
                             "comparison of --out's results.json from its stored runs, and rewrite it")
    args = parser.parse_args(argv)
    variants = tuple(v for v in args.variants.split(",") if v)
    unknown = set(variants) - VARIANTS.keys()
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; choose from {list(VARIANTS)}")
    settings = CompareSettings(out=args.out, embedding_from=args.embedding_from, max_minutes=args.max_minutes,
                               variants=variants, seeds=tuple(range(args.seeds)), limit=args.limit,
                               max_steps=args.max_steps, threads=args.threads, against=args.against,
                               rederive=args.rederive)
    if args.tiny:
        settings = dataclasses.replace(settings, limit=args.limit or 24, max_steps=args.max_steps or 3,
                                       valid_rows=16, train_check_rows=16, timing_rows=3,
                                       train_tokens=64, max_tokens=96, setup_minutes=0, eval_minutes=0)
    return settings


def main(argv=None) -> None:
    settings = parse_args(argv)
    if settings.rederive:
        for claim in rederive(settings.out / RESULTS_FILE)["claims"]:
            print(f"claim {claim['claim']}: {claim['reading']}: {claim['line']}")
        print(f"rewrote {settings.out / RESULTS_FILE} from its stored runs")
        return
    command = "python -m seqdemo.experiments.compare " + " ".join(argv if argv is not None else sys.argv[1:])
    # Read before the runs, so that a wrong path fails now rather than after them.
    earlier = json.loads(settings.against.read_text()) if settings.against else None
    results = run_comparison(settings, command=command.strip())
    print(f"wrote {settings.out / RESULTS_FILE}")
    if earlier:
        print("\n".join(reproduction(earlier, results)))


if __name__ == "__main__":
    main()
