"""Issue 40's speed targets, today's code against another git ref side by side in one run, printed with ratios.

Each version runs in its own worker process (the working tree, and a ref checked out into a temporary
`git worktree` under /tmp) that loads the real checkpoints once. The two workers take turns, repeat by repeat and
task by task, so a change of load on the machine (a training run, other tests) hits both alike; the medians
and their ratio come from the same run. Caches are cleared before every task: a task measures a first visit.

Tasks (the page's default answer is the prediction, integrated gradients at 16 steps, and the trajectory):
- sentence: the default answer for an 11-token sentence (target 150 ms);
- review: the default answer for a ~300-token review (target 1.0 s), with predict, IG and trajectory alone;
- paste: the default answer for a 20,000-character paste (target 2 s; the model reads its head and tail);
- inspector: the gate trace of 256 tokens, both models (target 1.0 s, click to heatmap data).

    python bench/bench_app.py --against 1bb8d7e                 # today's tree against the ref
    nice -n 15 python bench/bench_app.py --against 1bb8d7e --threads 1 --repeats 1
    python bench/bench_app.py --ig-batch-sizes 1,2,4,8,16       # which IG internal batch size is fastest here
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from texts import REVIEW  # bench/texts.py, beside this script
from worktree import checked_out

ROOT = Path(__file__).resolve().parent.parent
IG_STEPS = 16  # the page's default
SENTENCE = "The plot was thin, but the acting saved it."
TARGETS = {"sentence": 0.150, "review": 1.0, "paste": 2.0, "inspector sentiment": 1.0, "inspector nextword": 1.0}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default=None, help="a git ref to time side by side (e.g. 1bb8d7e)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each task (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: torch's)")
    parser.add_argument("--ig-batch-sizes", default=None, help="comma-separated: time IG at each internal batch size")
    parser.add_argument("--only", default="", help="time only the tasks whose name contains this text")
    parser.add_argument("--ig-text", default="review", choices=["sentence", "review", "paste"],
                        help="the text of the --ig-batch-sizes sweep (default review)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


# -- the worker: runs in either version of the code, so it uses only what both offer --------------------------------


def worker(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    try:
        from seqdemo.inference.hub import load_folder
    except ImportError:  # before the package was split into layers
        from seqdemo.hub import load_folder
    try:  # what the page's server sets up (seqdemo.web.page), in the versions that do
        from seqdemo.inference.pipeline import native_lstm_kernels

        native_lstm_kernels()
    except ImportError:
        pass
    sentiment = load_folder("sentiment", ROOT / "checkpoints" / "sentiment", device="cpu")
    nextword = load_folder("nextword", ROOT / "checkpoints" / "nextword", device="cpu")
    review = text_of(sentiment.tokenizer, 300)
    texts = {"sentence": SENTENCE, "review": review, "paste": (REVIEW * 60)[:20_000]}
    print(json.dumps({"ready": True, "tokens": {k: len(sentiment.tokenizer.encode(t)) for k, t in texts.items()}}),
          flush=True)
    for line in sys.stdin:
        task = json.loads(line)
        for pipe in (sentiment, nextword):
            getattr(pipe, "clear_cache", lambda: None)()
        started = time.perf_counter()
        run_task(task, sentiment, nextword, texts)
        print(json.dumps({"seconds": time.perf_counter() - started}), flush=True)


def default_answer(pipe, text: str) -> None:
    """What the Sentiment tab computes for a text: the explanation (with the prediction) and the trajectory."""
    pipe.explain(text, method="integrated_gradients", steps=IG_STEPS)
    if hasattr(pipe, "reading_trajectory"):
        pipe.reading_trajectory(text)
    else:
        pipe.trajectory(text)


def run_task(task: dict, sentiment, nextword, texts: dict) -> None:
    name, text = task["name"], texts.get(task.get("text", ""), "")
    if name == "default":
        default_answer(sentiment, text)
    elif name == "predict":
        sentiment.predict(text)
    elif name == "ig":
        if task.get("batch") and hasattr(sentiment, "ig_batch_size"):
            sentiment.ig_batch_size = task["batch"]
        sentiment.explain(text, method="integrated_gradients", steps=IG_STEPS)
    elif name == "trajectory":
        getattr(sentiment, "reading_trajectory", sentiment.trajectory)(text)
    elif name == "inspector":
        pipe = sentiment if task["model"] == "sentiment" else nextword
        pipe.gate_trace(texts[task.get("text", "paste")], max_tokens=256)


def text_of(tokenizer, tokens: int) -> str:
    """A review that the tokenizer cuts into `tokens` tokens (or as close as it gets)."""
    text = tokenizer.decode(tokenizer.encode(REVIEW * (1 + tokens // 20))[:tokens])
    while len(tokenizer.encode(text)) > tokens:
        text = text[:-1]
    return text


# -- the driver ----------------------------------------------------------------------------------------------------


class Worker:
    def __init__(self, tree: Path, threads: int | None):
        env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS=str(threads or os.cpu_count()))
        command = [sys.executable, str(Path(__file__).resolve()), "--worker"] + (
            ["--threads", str(threads)] if threads else [])
        # cwd=/tmp: `import seqdemo` must find the tree on PYTHONPATH, not the current directory.
        self.process = subprocess.Popen(command, cwd=tempfile.gettempdir(), env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.tokens = json.loads(self.process.stdout.readline())["tokens"]

    def time(self, task: dict) -> float:
        self.process.stdin.write(json.dumps(task) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())["seconds"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def tasks(ig_batch_sizes: list[int], only: str = "", ig_text: str = "review") -> dict[str, dict]:
    named = {
        "sentence: default answer": {"name": "default", "text": "sentence"},
        "review: default answer": {"name": "default", "text": "review"},
        "  review: predict alone": {"name": "predict", "text": "review"},
        f"  review: integrated gradients ({IG_STEPS} steps)": {"name": "ig", "text": "review"},
        "  review: trajectory": {"name": "trajectory", "text": "review"},
        "paste (20,000 characters): default answer": {"name": "default", "text": "paste"},
        "inspector sentiment: gate trace, 256 tokens": {"name": "inspector", "model": "sentiment"},
        "inspector nextword: gate trace, 256 tokens": {"name": "inspector", "model": "nextword"},
    }
    for size in ig_batch_sizes:
        named[f"  {ig_text}: IG, internal batch {size}"] = {"name": "ig", "text": ig_text, "batch": size}
    return {label: task for label, task in named.items() if only in label}


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` removes the worktree
    if args.worker:
        worker(args.threads)
        return
    sizes = [int(s) for s in args.ig_batch_sizes.split(",")] if args.ig_batch_sizes else []
    with checked_out(args.against) as reference:
        measure(args, sizes, reference)


def measure(args, sizes: list[int], reference: Path | None) -> None:
    workers = {"now": Worker(ROOT, args.threads)}
    if reference is not None:
        workers["then"] = Worker(reference, args.threads)
    print(f"threads per worker: {args.threads or 'torch default'}; cores: {os.cpu_count()}; load average: "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; tokens read: {workers['now'].tokens}")
    for process in workers.values():
        # Untimed: the first call of each kernel pays one-off costs (oneDNN set-up, allocator growth).
        process.time({"name": "default", "text": "sentence"})
        process.time({"name": "inspector", "model": "sentiment", "text": "sentence"})
    times: dict[str, dict[str, list[float]]] = {}
    for _ in range(args.repeats):
        for label, task in tasks(sizes, args.only, args.ig_text).items():
            for version, process in workers.items():  # in turn: the same load for both
                if version == "then" and "batch" in task:
                    continue  # the old code has no internal batch size to set
                times.setdefault(label, {}).setdefault(version, []).append(process.time(task))
            print(f"  {label}: " + ", ".join(f"{v} {t[-1]:.2f} s" for v, t in times[label].items()), flush=True)
    for process in workers.values():
        process.close()
    report(times, args.against)


def report(times: dict, against: str | None) -> None:
    then = f"{against} (s)" if against else ""
    print(f"\n{'task':48} {'target':>8} {'now (s)':>9} {then:>14} {'then/now':>9}  verdict")
    for label, by_version in times.items():
        now = statistics.median(by_version["now"])
        target = next((value for key, value in TARGETS.items() if label.startswith(key + ":")
                       or label.startswith(key + " (")), None)
        old = statistics.median(by_version["then"]) if "then" in by_version else None
        verdict = "" if target is None else ("met" if now <= target else f"OVER by {now / target:.1f}x")
        print(f"{label:48} {'' if target is None else f'{target:g} s':>8} {now:9.3f} "
              f"{'' if old is None else f'{old:.3f}':>14} {'' if old is None else f'{old / now:.2f}x':>9}  {verdict}")


if __name__ == "__main__":
    main()
