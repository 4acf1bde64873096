"""Gives the server's memory back to the system after big requests (glibc keeps freed memory otherwise).

A hostile request (a 5 MB body, a 100k-word text) makes the server allocate hundreds of MB for a moment: the
JSON body, its text, the clipped copy, the token ids. Python frees all of it, but glibc's malloc keeps the freed
pages in its arenas (one per thread that allocates, up to 8 per core) for the next allocation, so the process's
RSS stays at its peak. Two remedies, both no-ops off glibc:

- `limit_arenas(n)` (mallopt M_ARENA_MAX, the runtime form of MALLOC_ARENA_MAX): fewer arenas, so the handler
  threads reuse the same freed memory instead of each keeping its own;
- `trim()` (malloc_trim(0)): returns the free pages of every arena to the system. It takes a few milliseconds, so
  it runs after big requests (`after_request`) and on an idle timer (`start_trimmer`), not after every request.

The app calls `limit_arenas()` once at start, `start_trimmer()` once at launch, and may call `after_request(n)`
with the size of a request's text.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import threading
import time

logger = logging.getLogger("seqdemo")

M_ARENA_MAX = -8  # mallopt's parameter number (glibc malloc.h)
ARENAS = 2  # arenas kept: the model threads take turns on the CPU anyway
BIG_REQUEST = 1_000_000  # characters: a request this large is trimmed after at once
TRIM_EVERY = 30.0  # seconds between two idle-timer trims


@functools.cache
def _libc():
    """glibc, or None (musl, macOS, Windows): the functions here then do nothing."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        return libc
    except (OSError, AttributeError):
        return None


def limit_arenas(arenas: int = ARENAS) -> bool:
    """At most `arenas` malloc arenas from now on (threads already running keep theirs). True when applied."""
    libc = _libc()
    return bool(libc and libc.mallopt(M_ARENA_MAX, arenas))


_last_trim = 0.0
_trim_lock = threading.Lock()


def trim() -> bool:
    """Returns every arena's free memory to the system. True when some was returned."""
    global _last_trim
    libc = _libc()
    if libc is None:
        return False
    with _trim_lock:  # one trim at a time: a second one would find nothing left to return
        released = bool(libc.malloc_trim(0))
        _last_trim = time.monotonic()
    return released


def after_request(size: int, threshold: int = BIG_REQUEST) -> bool:
    """Trims when a request of `size` characters (or bytes) was big; small ones wait for the idle timer."""
    return trim() if size >= threshold else False


def start_trimmer(every: float = TRIM_EVERY) -> threading.Thread:
    """A daemon thread that trims every `every` seconds unless a trim ran meanwhile (RSS falls back within
    `every` seconds of any burst, big requests or many small ones)."""
    def run() -> None:
        while True:
            time.sleep(every)
            if time.monotonic() - _last_trim >= every:
                try:
                    trim()
                except Exception:  # never let the timer die: it is the only one
                    logger.exception("malloc_trim failed")

    thread = threading.Thread(target=run, name="seqdemo-malloc-trim", daemon=True)
    thread.start()
    return thread
