"""SIGTERM stops a process within seconds whatever its Hub download is doing (stalled mid-body, or dripping a byte
every few seconds so no read timeout ever fires), before and after the deadline's fallback to the local checkpoint.

Each case runs a small Python process that stops on SIGTERM the way the app does (seqdemo.web.serving.stop_on_sigterm:
SIGTERM raises KeyboardInterrupt, the interpreter then exits normally, joining every non-daemon thread), loads the
sentiment model through seqdemo.inference.hub from a stand-in Hub (tests/hub_server.py) and idles like a server.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from hub_server import FakeHub  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXIT_WITHIN = 5.0  # seconds from SIGTERM to exit: what a Space restart needs (issue 41)

CHILD = r"""
import signal, sys, time
signal.signal(signal.SIGTERM, signal.default_int_handler)  # as seqdemo.web.serving.stop_on_sigterm
from seqdemo.inference import hub
print("loading", flush=True)
pipe = hub.load("sentiment", "owner/slow", device="cpu", checkpoints=sys.argv[1])
print("loaded", pipe.source, flush=True)
try:
    while True:  # a server's main thread, idle (gradio's block_thread)
        time.sleep(0.1)
except KeyboardInterrupt:
    print("stopping", flush=True)
"""


class Child:
    """The child process and its stdout lines, read on a thread so a wait for a line has a bound."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], cwd=ROOT, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float = 120) -> str:
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting {prefix!r} within {timeout} s; output: {self.seen}")


def child_env(tmp_path: Path, url: str, deadline: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "SEQDEMO_"))}
    env.update(
        PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", HF_ENDPOINT=url, HF_HOME=str(tmp_path / "hf"),
        HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HUB_DOWNLOAD_TIMEOUT="600",  # no read timeout ends these stalls: only the deadline and SIGTERM do
        SEQDEMO_HUB_DEADLINE=str(deadline),
    )
    return env


def wait_for_request(hub: FakeHub, suffix: str, child: Child, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and child.proc.poll() is None:
        if any(path.endswith(suffix) for method, path in list(hub.requests) if method == "GET"):
            return
        time.sleep(0.05)
    raise AssertionError(f"the child never asked for {suffix}; output: {child.seen}")


def exits_after_sigterm(child: Child) -> int:
    child.proc.send_signal(signal.SIGTERM)
    try:
        return child.proc.wait(timeout=EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        child.proc.kill()
        child.proc.wait()
        raise AssertionError(f"still running {EXIT_WITHIN} s after SIGTERM; output: {child.seen}") from None


@pytest.mark.parametrize("fault", ["stall_mid_body", "drip"])
@pytest.mark.parametrize("state", ["waiting", "fallen_back"])
def test_sigterm_exits_within_seconds_whatever_the_download_does(tmp_path, tiny_checkpoints, fault, state):
    local = tiny_checkpoints["sentiment"].parent
    with FakeHub() as hub:
        hub.add_repo("owner/slow", tiny_checkpoints["sentiment"])
        if fault == "drip":
            hub.drip("owner/slow", "model.safetensors", every=0.5)
        else:
            hub.stall_mid_body("owner/slow", "model.safetensors", nbytes=64)
        deadline = 600 if state == "waiting" else 1.0
        child = Child([str(local)], child_env(tmp_path, hub.url, deadline))
        try:
            child.wait_for("loading")
            if state == "waiting":  # SIGTERM while the load still waits on the weights
                wait_for_request(hub, "/model.safetensors", child)
            else:  # SIGTERM once the deadline gave way to the local checkpoint, the download still hanging
                line = child.wait_for("loaded")
                assert "local checkpoints/sentiment (the Hub did not deliver owner/slow" in line
                assert child.proc.poll() is None

            exits_after_sigterm(child)
        finally:
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait()


# -- what a stream is told while the server stops ------------------------------------------------------------------


def test_a_closed_pool_tells_the_visitor_the_server_is_restarting():
    import gradio as gr
    from concurrent.futures import ThreadPoolExecutor

    from seqdemo.web import shutdown

    pool = ThreadPoolExecutor(max_workers=1)
    assert shutdown.submit(pool, sum, [1, 2, 3]).result() == 6  # a pool that takes work: unchanged
    pool.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures") as raw:
        pool.submit(sum, [1])  # what a stream used to be told
    assert shutdown.is_shutting_down(raw.value)

    with pytest.raises(gr.Error) as told:
        shutdown.submit(pool, sum, [1])
    assert told.value.message == "The server is restarting. Try again in a minute."
    assert not shutdown.is_shutting_down(RuntimeError("probability tensor contains either inf, nan"))
