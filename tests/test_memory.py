"""seqdemo.web.memory gives freed memory back: RSS measured from /proc, around blocks freed by a handler thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from seqdemo.web import memory

pytestmark = pytest.mark.skipif(memory._libc() is None or not Path("/proc/self/status").exists(),
                                reason="glibc and /proc only")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def churn_on_a_thread(pins: list, blocks: int = 4000, size: int = 40_000) -> None:
    """What a hostile request leaves: many malloc'd blocks (beyond pymalloc's 512 bytes, below mmap's threshold)
    made and freed on a handler thread, with one block made last still alive (in `pins`), at the top of the
    thread's heap: glibc then cannot shrink the heap by itself, as with any live object a request leaves behind.
    bytearray(n) writes its zeros, so those pages are resident; bytes(n) may not be (calloc)."""
    def run() -> None:
        made = [bytes(size) if i % 2 else bytearray(size) for i in range(blocks)]
        del made[1::2]  # freed in between: holes glibc keeps
        pins.append(bytearray(size))  # alive at the top of the heap
        made.clear()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def test_trim_returns_what_a_handler_thread_freed():
    memory.trim()
    start = rss_mb()
    pins: list = []
    churn_on_a_thread(pins)
    kept = rss_mb()
    released = memory.trim()
    after = rss_mb()
    pins.clear()
    print(f"RSS {start:.0f} MB -> {kept:.0f} MB after the churn -> {after:.0f} MB after trim")
    assert kept - start > 20  # the churn did leave memory behind ...
    assert released and after < kept - 20  # ... and the trim gave it back


def test_only_big_requests_trim_at_once(monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "trim", lambda: calls.append(1) or True)
    assert memory.after_request(10) is False and calls == []
    assert memory.after_request(memory.BIG_REQUEST) is True and calls == [1]
