"""oneDNN's LSTM kernel against PyTorch's native one on the CPU, task by task, side by side in one run.

The page's server turns oneDNN's off for nn.LSTM (seqdemo.inference.pipeline.native_lstm_kernels): this prints
what that buys and costs per task (median of the repeats, the two kernels taking turns, the order swapped every
repeat).

    python bench/bench_kernels.py --threads 1 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from texts import REVIEW  # bench/texts.py, beside this script

SENTENCE = "The plot was thin, but the acting saved it."


def tasks(clf, lm) -> dict:
    review = REVIEW * 3  # about 320 tokens
    return {
        "predict, review": lambda: clf.predict(review),
        "integrated gradients, review": lambda: clf.explain(review, method="integrated_gradients", steps=16),
        "trajectory, review": lambda: clf.reading_trajectory(review),
        "integrated gradients, sentence": lambda: clf.explain(SENTENCE, method="integrated_gradients", steps=16),
        "trajectory, sentence": lambda: clf.reading_trajectory(SENTENCE),
        "generate 40 tokens": lambda: lm.generate("The acting was", max_new_tokens=40, seed=1),
        "next words": lambda: lm.next_words("The acting was", k=5),
        "gate trace, classifier, 256 tokens": lambda: clf.gate_trace(review, max_tokens=256),
        "gate trace, language model, 256 tokens": lambda: lm.gate_trace(review, max_tokens=256),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the server's per handler: 1 on 2 cores)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from seqdemo import load

    clf, lm = load("sentiment", device="cpu"), load("nextword", device="cpu")
    named = tasks(clf, lm)
    times = {name: {True: [], False: []} for name in named}
    for repeat in range(args.repeats):
        for onednn in ((True, False) if repeat % 2 == 0 else (False, True)):
            torch.backends.mkldnn.enabled = onednn
            for name, task in named.items():
                clf.clear_cache()  # a first visit, not the cache's answer
                started = time.perf_counter()
                task()
                times[name][onednn].append(time.perf_counter() - started)
    print(f"{'task':<40} {'oneDNN (s)':>10} {'native (s)':>10} {'native / oneDNN':>16}")
    for name, by_kernel in times.items():
        onednn, native = (statistics.median(by_kernel[k]) for k in (True, False))
        print(f"{name:<40} {onednn:>10.3f} {native:>10.3f} {native / onednn:>16.2f}")


if __name__ == "__main__":
    main()
