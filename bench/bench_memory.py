"""Measures the RSS a server keeps after hostile batches (huge texts, 5 MB bodies), and what gives it back.

Each mode runs in a fresh process (a malloc setting only holds from the process's start): the shipped pipelines
(or tiny ones with --tiny) are loaded and warmed up, then batches of hostile calls run on a few handler threads, as
the server's model threads would: a JSON body of --body-mb MB parsed, its text checked and clipped as the page
does (seqdemo.web.limits.MAX_CHARS), classified, generated from and traced; and texts of --words words. A sampler
thread records the peak. Printed, never asserted:

    nice -n 15 python bench/bench_memory.py --words 20000 --body-mb 1 --batches 1      # small first
    nice -n 15 python bench/bench_memory.py                                              # 100k words, 5 MB bodies

Modes: plain (today's server), trim (seqdemo.web.memory.trim after each batch), arenas+trim (limit_arenas at
start, then trim), unclipped (plain, the text tokenized whole: what the tokenizer alone costs on a huge text).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODES = ("plain", "trim", "arenas+trim", "unclipped")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PeakSampler:
    """The largest RSS seen, sampled every few milliseconds on a thread of its own."""

    def __init__(self) -> None:
        self.peak, self._stop = rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, rss_mb())


def load_pipelines(tiny: bool):
    if not tiny:
        from seqdemo.inference import hub

        return hub.load("sentiment", device="cpu"), hub.load("nextword", device="cpu")
    import torch

    from seqdemo.core.models import NextWordLSTM, SentimentClassifier
    from seqdemo.core.tokenizer import Tokenizer
    from seqdemo.inference.generation import NextWordPipeline
    from seqdemo.inference.sentiment import SentimentPipeline

    tok = Tokenizer.load(ROOT / "checkpoints" / "sentiment" / "tokenizer.model")
    cpu = torch.device("cpu")
    return (SentimentPipeline(SentimentClassifier(vocab_size=tok.vocab_size, embed_dim=32, hidden_size=32).eval(),
                              tok, device=cpu, source="tiny"),
            NextWordPipeline(NextWordLSTM(vocab_size=tok.vocab_size, embed_dim=32, hidden_size=32).eval(),
                             tok, device=cpu, source="tiny"))


def hostile_call(sentiment, nextword, body: bytes | None, text: str | None, clip: bool) -> None:
    """One request as the server handles it: the body parsed, the text checked and clipped, three model calls."""
    from seqdemo.core import gates
    from seqdemo.core import validate as valid
    from seqdemo.web.limits import MAX_CHARS

    if body is not None:
        text = json.loads(body)["data"][0]
    text = valid.text(text)
    if clip:
        text, _ = valid.clip(text, "head_tail", MAX_CHARS)
    sentiment.predict(text)
    nextword.generate(text[-2000:], max_new_tokens=8)
    gates.trace_text(nextword.model, nextword.tokenizer, text, max_tokens=256)


def run_mode(args) -> dict:
    import torch

    from seqdemo.web import memory

    torch.set_num_threads(1)
    if args.mode == "arenas+trim":
        memory.limit_arenas()
    sentiment, nextword = load_pipelines(args.tiny)
    words = ("great plot, not bad at all; the acting was dull " * (args.words // 10 + 1)).split()[:args.words]
    huge = " ".join(words)
    body = json.dumps({"data": [("a terrible, boring film " * 200_000)[: args.body_mb * 2**20], "x"]}).encode()
    pool = ThreadPoolExecutor(max_workers=args.threads, thread_name_prefix="handler")
    list(pool.map(lambda _: hostile_call(sentiment, nextword, None, "A fine warm-up.", True), range(args.threads)))
    start = rss_mb()
    rows = []
    for batch in range(args.batches):
        before, sampler = rss_mb(), PeakSampler()
        calls = [(None, huge)] * args.calls + [(body, None)] * args.calls
        list(pool.map(lambda c: hostile_call(sentiment, nextword, c[0], c[1], args.mode != "unclipped"), calls))
        peak = sampler.stop()
        if args.mode in ("trim", "arenas+trim"):
            memory.trim()
        rows.append({"batch": batch + 1, "before": before, "peak": peak, "after": rss_mb()})
    return {"mode": args.mode, "start": start, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=100_000, help="words in each huge text")
    parser.add_argument("--body-mb", type=int, default=5, help="size of each raw JSON body")
    parser.add_argument("--calls", type=int, default=4, help="calls of each kind per batch")
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="handler threads (the server's model threads)")
    parser.add_argument("--tiny", action="store_true", help="tiny untrained models instead of the shipped ones")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # set in the child process that runs one mode
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args)))
        return
    print(f"{'mode':<12} {'batch':>5} {'start':>8} {'before':>8} {'peak':>8} {'after':>8} {'after-start':>11}  (MB)")
    passed = [a for a in sys.argv[1:] if not a.startswith("--modes")]
    for mode in args.modes.split(","):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        out = subprocess.run([sys.executable, __file__, *passed, "--mode", mode], env=env, text=True,
                             capture_output=True, cwd=ROOT)
        if out.returncode:
            print(f"{mode}: failed\n{out.stderr[-2000:]}")
            continue
        result = json.loads(out.stdout.strip().splitlines()[-1])
        for row in result["rows"]:
            print(f"{mode:<12} {row['batch']:>5} {result['start']:>8.0f} {row['before']:>8.0f} {row['peak']:>8.0f} "
                  f"{row['after']:>8.0f} {row['after'] - result['start']:>+11.0f}", flush=True)
    print(f"target: after-start within +100 MB ({args.words} words, {args.body_mb} MB bodies, {args.calls}+{args.calls} "
          f"calls a batch on {args.threads} threads)")


if __name__ == "__main__":
    main()
