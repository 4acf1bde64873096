"""How the page is served to a crowd (gradio-specific; app.py calls it).

- One queue for every handler that runs a model, with one concurrency limit for all of them: on the CPU each
  request already uses every core, so more requests at once only share the same cores (gradio gives each event
  listener a queue and a limit of its own unless they share a `concurrency_id`).
- A queue long enough that a crowd waits, seeing its place in the line, instead of being refused.
- The model handlers run on a few threads of their own, as many as the limit: the CPU kernels keep memory per
  thread (scratch space, malloc arenas), so 40 worker threads taking turns grew the server by ~290 MB a round of
  `bench/bench_load.py`, where the same threads every time stay flat.
- The model handlers take the raw JSON values and check them themselves (seqdemo.core.validate): gradio's own
  preprocessing refuses "5" for a slider with a message naming a Python type, and lets NaN through.
- Errors that happen before a handler runs (an API call with too few values) are shown, not replaced by null.
- SIGTERM (how Spaces and containers stop a server) ends the server like Ctrl+C, so atexit cleanup runs.
"""

from __future__ import annotations

import functools
import inspect
import os
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import torch

MODEL_QUEUE = "seqdemo-models"  # the concurrency_id the model handlers share
QUEUE_SIZE = 2000  # events waiting at once, over every queue: 50 users x 20 requests fit with room to spare
_MODEL_HANDLER = "_seqdemo_model_handler"


def concurrency_limit() -> int:
    """Model requests served at once: SEQDEMO_CONCURRENCY, else 1 on a GPU (one model copy, kernels already
    parallel), else the CPU cores this process may use (the interpreter's share of each request overlaps)."""
    configured = os.environ.get("SEQDEMO_CONCURRENCY", "").strip()
    if configured:
        return max(1, int(configured))
    if torch.cuda.is_available():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, 8))


def queue_size() -> int:
    return max(1, int(os.environ.get("SEQDEMO_QUEUE_SIZE", "").strip() or QUEUE_SIZE))


@functools.cache
def model_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=concurrency_limit(), thread_name_prefix="seqdemo-model")


def model_handler(fn: Callable) -> Callable:
    """`fn` (an event handler) run on the model threads, each step of it for a generator, and marked as one that
    runs a model and validates its own raw inputs."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def handler(*args, **kwargs):
            steps, done = fn(*args, **kwargs), object()  # calling a generator function runs none of it yet
            while (value := model_threads().submit(next, steps, done).result()) is not done:
                yield value

    else:

        @functools.wraps(fn)
        def handler(*args, **kwargs):
            return model_threads().submit(fn, *args, **kwargs).result()

    setattr(handler, _MODEL_HANDLER, True)
    return handler


def configure_queue(demo, limit: int | None = None) -> None:
    """The model handlers of `demo` (marked by model_handler) share MODEL_QUEUE and its limit, and get their inputs
    unprocessed; then the queue is set up. Call once the page is built, before launch."""
    limit = limit or concurrency_limit()
    for block_fn in demo.fns.values():
        if getattr(block_fn.fn, _MODEL_HANDLER, False):
            block_fn.concurrency_id = MODEL_QUEUE
            block_fn.concurrency_limit = limit
            block_fn.preprocess = False
    demo.queue(default_concurrency_limit=limit, max_size=queue_size())


def export_folder() -> Path:
    """A fresh folder for this server's trace downloads inside gradio's cache (GRADIO_TEMP_DIR): gradio serves a
    file from its cache where it lies, and copies any other file in first."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()) / "seqdemo-exports" / uuid.uuid4().hex


def launch_options() -> dict:
    """What launch() needs for the above: show_error, so gradio's own errors reach API callers as text."""
    return {"show_error": True}


def stop_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl+C does: gradio closes the server and the
    interpreter exits normally, running atexit (the trace downloads are deleted)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
