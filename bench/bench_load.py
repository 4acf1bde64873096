"""A crowd on the page: U users, each sending R requests one after another through gradio_client, all at once.

The mix follows the page's use: /classify 50%, /next_words 20%, /generate (40 tokens) 15%, /inspect 15%. The texts
repeat, as the page's examples do; `--unique` makes every /classify text new, so the server's kept results
(seqdemo.inference.sentiment) cannot answer any. The
server is `python app.py` on 127.0.0.1 (loopback only, a free port), with the checkpoints in checkpoints/. The
run is bounded in count (U x R per round) and in time (--time-limit: users start no request after it).

Printed: refusals ("Queue is full"), errors, requests not completed, p50/p95 per endpoint against the same
endpoint's single-user latency measured first in the same run, and the server's RSS before the crowd, its peak
and after each round; a second round shows whether memory levels off (target: it grows by < 50 MB).

With `--against REF` the same crowd also runs on REF checked out into a temporary worktree, on a second server
(the two never serve at once: rounds alternate, this tree's first), and a last table prints each version's median
wait and the ratio. `--concurrency N` sets SEQDEMO_CONCURRENCY (requests served at once) on both servers: with 2
cores, 1 gives each request 2 torch threads, 2 gives each 1.

    python bench/bench_load.py                        # 50 users x 20 requests, two rounds
    python bench/bench_load.py --users 10 --requests 5 --rounds 2
    python bench/bench_load.py --against 1bb8d7e --rounds 1 --concurrency 2
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

from worktree import checked_out  # bench/worktree.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
MIX = [("/classify", 50), ("/next_words", 20), ("/generate", 15), ("/inspect", 15)]
REVIEWS = [
    "The plot was thin but the acting saved it.",
    "Not good at all! The worst film of the year, and far too long.",
    "A wonderful, moving story with brilliant performances from the whole cast.",
    "I went in expecting very little, and for the first half hour the film gave me exactly that: a thin plot and "
    "stiff dialogue. Then the two leads found a rhythm, and I would happily watch it again.",
]
PROMPTS = ["The acting was", "I would not recommend this movie to", "The best thing about this film is"]


# gradio_client's default 5 s timeout on joining the queue turns a crowd's slow answers into client-side errors
# (293 of a 300-call burst in issue 41, with nothing lost on the server). A crowd of 50 on 2 cores waits tens of
# seconds in the queue by design, so the client must wait as long as a round's slowest answer: 120 s (issue 41's
# runs answered all 300 calls with 60-120 s). The time limit per round still bounds the whole run.
CLIENT_TIMEOUT = 120.0


def client_for(url: str, timeout: float):
    """A gradio_client Client that waits `timeout` seconds on each HTTP step (joining the queue included)."""
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, analytics_enabled=False,
                  httpx_kwargs={"timeout": timeout})


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="simultaneous users (default 50)")
    parser.add_argument("--requests", type=int, default=20, help="requests per user and round (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="crowd rounds, one after the other (default 2)")
    parser.add_argument("--single", type=int, default=5, help="single-user calls per endpoint first (default 5)")
    parser.add_argument("--time-limit", type=float, default=900, help="seconds a round may take (default 900)")
    parser.add_argument("--startup-timeout", type=float, default=180, help="seconds to wait for the server")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--against", help="a git ref to crowd side by side (e.g. 1bb8d7e)")
    parser.add_argument("--unique", action="store_true",
                        help="give every /classify a text never asked before (the page's examples repeat; this does not)")
    parser.add_argument("--concurrency", type=int, help="SEQDEMO_CONCURRENCY for the servers (default: theirs)")
    parser.add_argument("--client-timeout", type=float, default=CLIENT_TIMEOUT,
                        help=f"seconds gradio_client waits on each HTTP step (default {CLIENT_TIMEOUT:g}; its own is 5)")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of the server process (Linux /proc), in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class PeakRSS:
    """Samples the server's RSS every 0.2 s while a round runs."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, rss_mb(self.pid))

    def __enter__(self) -> "PeakRSS":
        self.peak = rss_mb(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def start_server(port: int, timeout: float, tree: Path = ROOT, concurrency: int | None = None) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    for name in ("SEQDEMO_SENTIMENT_REPO", "SEQDEMO_NEXTWORD_REPO"):
        env.pop(name, None)  # the local checkpoints: no Hub in a load test
    if concurrency:
        env["SEQDEMO_CONCURRENCY"] = str(concurrency)
    log = tempfile.TemporaryFile("w+")  # a file, not a pipe: a full pipe would stall the server mid-run
    server = subprocess.Popen([sys.executable, "app.py"], cwd=tree, env=env, stdout=log, stderr=log, text=True)
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if server.poll() is not None:
            log.seek(0)
            raise SystemExit(f"app.py exited with {server.returncode}:\n{log.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"app.py did not answer within {timeout:.0f} s")


def request_args(endpoint: str, rng: random.Random, unique: bool = False) -> tuple:
    if endpoint == "/classify":
        text = rng.choice(REVIEWS)
        if unique:  # a text no one asked before: the server's kept results cannot answer it
            text += f" Seen on day {rng.randrange(10**9)}."
        return text, "integrated_gradients"  # the page's default
    if endpoint == "/next_words":
        return rng.choice(PROMPTS), 5
    if endpoint == "/generate":
        return rng.choice(PROMPTS), 40, 0.8, 50, 0.95, rng.randrange(1000)
    return rng.choice(REVIEWS), rng.choice(["sentiment", "nextword"]), 0, "forward", "f", "variance", None


def one_call(client, endpoint: str, args: tuple) -> tuple[str, float, str]:
    """(outcome, seconds, message): outcome is ok, refused (the queue was full) or error."""
    started = time.perf_counter()
    try:
        client.predict(*args, api_name=endpoint)
        return "ok", time.perf_counter() - started, ""
    except Exception as error:  # noqa: BLE001 - every failure is counted and reported, none stops the run
        message = f"{type(error).__name__}: {error}"
        outcome = "refused" if "queue is full" in message.lower() else "error"
        return outcome, time.perf_counter() - started, message


def single_user(client, rng: random.Random, calls: int) -> dict[str, float]:
    """Median latency of each endpoint with nobody else on the server (after one untimed call each)."""
    medians = {}
    for endpoint, _ in MIX:
        one_call(client, endpoint, request_args(endpoint, rng))
        times = [one_call(client, endpoint, request_args(endpoint, rng))[1] for _ in range(calls)]
        medians[endpoint] = statistics.median(times)
    return medians


def crowd(url: str, users: int, requests: int, time_limit: float, seed: int,
          client_timeout: float = CLIENT_TIMEOUT, unique: bool = False) -> list[tuple[str, str, float, str]]:
    """Every user's calls: (endpoint, outcome, seconds, message); a user starts no call once time_limit passed."""
    endpoints, weights = zip(*MIX)
    results: list[tuple[str, str, float, str]] = []
    lock = threading.Lock()
    clients = [client_for(url, client_timeout) for _ in range(users)]
    go = threading.Barrier(users)
    deadline = time.monotonic() + time_limit

    def user(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        go.wait()
        for _ in range(requests):
            if time.monotonic() > deadline:
                return
            endpoint = rng.choices(endpoints, weights)[0]
            outcome, seconds, message = one_call(clients[index], endpoint, request_args(endpoint, rng, unique))
            with lock:
                results.append((endpoint, outcome, seconds, message))

    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, results, expected: int, seconds: float, single: dict[str, float]) -> None:
    outcomes = Counter(outcome for _, outcome, _, _ in results)
    print(f"\n{name}: {len(results)} of {expected} requests made in {seconds:.0f} s; "
          f"ok {outcomes['ok']}, refused {outcomes['refused']}, errors {outcomes['error']}, "
          f"not completed {expected - len(results)}")
    for message, count in Counter(m for _, o, _, m in results if o != "ok").most_common(3):
        print(f"  {count} x {message[:160]}")
    by_endpoint = defaultdict(list)
    for endpoint, outcome, latency, _ in results:
        if outcome == "ok":
            by_endpoint[endpoint].append(latency)
    print(f"  {'endpoint':<12} {'n':>5} {'alone p50':>10} {'crowd p50':>10} {'crowd p95':>10}")
    for endpoint, _ in MIX:
        latencies = by_endpoint.get(endpoint, [])
        if latencies:
            print(f"  {endpoint:<12} {len(latencies):>5} {single[endpoint]:>9.2f}s "
                  f"{percentile(latencies, 0.5):>9.2f}s {percentile(latencies, 0.95):>9.2f}s")


def ok_latencies(results) -> list[float]:
    return [seconds for _, outcome, seconds, _ in results if outcome == "ok"]


def summary(crowds: dict[str, list]) -> None:
    """Each version's median wait over all its rounds, and now's against then's."""
    print(f"\n{'version':<10} {'ok':>6} {'refused':>8} {'errors':>7} {'median wait':>12} {'p95':>8}")
    medians = {}
    for version, results in crowds.items():
        outcomes = Counter(outcome for _, outcome, _, _ in results)
        latencies = ok_latencies(results) or [float("nan")]
        medians[version] = statistics.median(latencies)
        print(f"{version:<10} {outcomes['ok']:>6} {outcomes['refused']:>8} {outcomes['error']:>7} "
              f"{medians[version]:>11.2f}s {percentile(latencies, 0.95):>7.2f}s")
    if len(medians) == 2:
        now, then = medians.values()
        print(f"median wait now / then: {now / then:.2f} (target: at most 0.5)")


def main() -> None:
    args = parse_args()
    with checked_out(args.against) as reference:
        trees = {"now": ROOT, **({args.against: reference} if reference else {})}
        servers = {}
        try:
            for version, tree in trees.items():
                port = free_port()
                servers[version] = (start_server(port, args.startup_timeout, tree, args.concurrency),
                                    f"http://127.0.0.1:{port}/")
            run_crowds(args, servers)
        finally:
            for server, _ in servers.values():
                stop(server)


def run_crowds(args, servers: dict) -> None:
    """Single-user latencies first, then the rounds, versions taking turns within each round."""
    single = {version: single_user(client_for(url, args.client_timeout), random.Random(args.seed), args.single)
              for version, (_, url) in servers.items()}
    print(f"{os.cpu_count()} CPUs; {args.users} users x {args.requests} requests x {args.rounds} rounds; "
          f"SEQDEMO_CONCURRENCY {args.concurrency or 'default'}")
    crowds = {version: [] for version in servers}
    rss = {version: [] for version in servers}
    for number in range(1, args.rounds + 1):
        for version, (server, url) in servers.items():
            with PeakRSS(server.pid) as peak:
                started = time.monotonic()
                results = crowd(url, args.users, args.requests, args.time_limit, args.seed + number,
                                args.client_timeout, args.unique)
                seconds = time.monotonic() - started
            crowds[version] += results
            rss[version].append(rss_mb(server.pid))
            report(f"{version}, round {number}", results, args.users * args.requests, seconds, single[version])
            print(f"  RSS: peak {peak.peak:.0f} MB, after {rss[version][-1]:.0f} MB")
    for version, after in rss.items():
        if len(after) > 1:
            print(f"{version}: RSS growth from round 1 to round {len(after)}: {after[-1] - after[0]:+.0f} MB")
    summary(crowds)


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


if __name__ == "__main__":
    main()
