"""Whether int8 dynamic quantization (torch.ao.quantization.quantize_dynamic on the LSTM and Linear layers) may
serve the classifier: agreement with the float model, accuracy of both, the largest change of P(positive), and
the time of each, on the test split (or a fixed sample of it).

The issue's bar: keep int8 only if it agrees with float on >= 99.5% of the test split and moves accuracy by at
most 0.1 point; the page's own bar is stricter: no probability a visitor sees may move by more than 1e-4.
Progress is printed every 100 rows, so a stopped run still says something.

    nice -n 15 python bench/bench_quantize.py --rows 1000 --threads 1
    nice -n 15 python bench/bench_quantize.py --rows 0          # the whole test split
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000, help="fixed random sample of the test split (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the CPU is shared)")
    parser.add_argument("--batch-size", type=int, default=32)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    from seqdemo import load
    from seqdemo.experiments.data import load_splits

    rows = load_splits()["test"]
    if args.rows:
        rows = random.Random(args.seed).sample(rows, min(args.rows, len(rows)))
    pipe = load("sentiment")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(pipe.model), {torch.nn.LSTM, torch.nn.Linear},
                                                      dtype=torch.qint8)
    print(f"{len(rows)} test rows ({'all' if not args.rows else f'a fixed sample, seed {args.seed}'}), "
          f"{args.threads} thread(s)", flush=True)
    seconds = {"float": 0.0, "int8": 0.0}
    positive: dict[str, list[float]] = {"float": [], "int8": []}
    for start in range(0, len(rows), args.batch_size):
        texts = [row.text for row in rows[start : start + args.batch_size]]
        for name, model in (("float", pipe.model), ("int8", int8)):
            pipe.model = model
            pipe.clear_cache()
            began = time.perf_counter()
            positive[name] += [r["probabilities"]["positive"] for r in pipe.predict(texts)]
            seconds[name] += time.perf_counter() - began
        if len(positive["float"]) % 100 < args.batch_size or start + args.batch_size >= len(rows):
            report(rows[: len(positive["float"])], positive, seconds)


def report(rows, positive: dict[str, list[float]], seconds: dict[str, float]) -> None:
    labels = [row.label for row in rows]
    verdicts = {name: [p >= 0.5 for p in values] for name, values in positive.items()}
    agree = sum(a == b for a, b in zip(verdicts["float"], verdicts["int8"])) / len(rows)
    accuracy = {name: sum(v == bool(y) for v, y in zip(values, labels)) / len(rows) for name, values in verdicts.items()}
    moved = max(abs(a - b) for a, b in zip(positive["float"], positive["int8"]))
    print(f"{len(rows):5d} rows: agreement {100 * agree:.2f}% (bar 99.5%), accuracy float {100 * accuracy['float']:.2f}"
          f" int8 {100 * accuracy['int8']:.2f} (moved {100 * (accuracy['int8'] - accuracy['float']):+.2f} points, "
          f"bar 0.1), largest change of P(positive) {moved:.4f} (page bar 1e-4), time float {seconds['float']:.1f} s "
          f"int8 {seconds['int8']:.1f} s ({seconds['float'] / max(seconds['int8'], 1e-9):.2f}x)", flush=True)


if __name__ == "__main__":
    main()
