"""How the page is served to a crowd: one model queue, its threads, its limits, the exports folder, SIGTERM.

- One queue for every handler that runs a model, with one concurrency limit for all of them: on the CPU each
  request already uses every core, so more requests at once only share the same cores (gradio gives each event
  listener a queue and a limit of its own unless they share a `concurrency_id`).
- A queue long enough that a crowd waits, seeing its place in the line, instead of being refused.
- The model handlers run on a few threads of their own, as many as the limit: the CPU kernels keep memory per
  thread (scratch space, malloc arenas), so 40 worker threads taking turns grew the server by ~290 MB a round of
  `bench/bench_load.py`, where the same threads every time stay flat. The limit and the queue's length come from
  seqdemo.web.settings.Settings.
- No call skips the queue: the direct REST routes are closed (api_open=False).
- The model handlers take the raw JSON values and check them themselves (seqdemo.core.validate): gradio's own
  preprocessing refuses "5" for a slider with a message naming a Python type, and lets NaN through.
- Errors that happen before a handler runs (an API call with too few values) are shown, not replaced by null.
- SIGTERM (how Spaces and containers stop a server) ends the server like Ctrl+C, so atexit cleanup runs.
"""

from __future__ import annotations

import functools
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from seqdemo.web.endpoints import MODEL_HANDLER

MODEL_QUEUE = "seqdemo-models"  # the concurrency_id the model handlers share


@functools.cache
def model_threads(workers: int) -> ThreadPoolExecutor:
    """The threads every model call runs on (seqdemo.web.endpoints.endpoint), as many as the concurrency limit."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seqdemo-model")


def configure_queue(demo, limit: int, max_size: int) -> None:
    """The model handlers of `demo` (marked by seqdemo.web.endpoints.endpoint) share MODEL_QUEUE and its limit,
    and get their inputs unprocessed; then the queue is set up, with the REST routes closed so that no call skips
    it (api_open=False: POST /gradio_api/run/<name> is refused, /gradio_api/call/<name> queues). Call once the
    page is built, before launch."""
    for block_fn in demo.fns.values():
        if getattr(block_fn.fn, MODEL_HANDLER, False):
            block_fn.concurrency_id = MODEL_QUEUE
            block_fn.concurrency_limit = limit
            block_fn.preprocess = False
    demo.queue(default_concurrency_limit=limit, max_size=max_size, api_open=False)


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
