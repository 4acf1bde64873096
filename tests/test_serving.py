"""The page under a crowd: every model handler in one queue with one limit, a queue long enough to wait in, and a
clean stop on SIGTERM. (How a crowd actually fares is measured by bench/bench_load.py, not asserted here.)"""

from __future__ import annotations

import os
import signal

import gradio as gr
import pytest
import torch

import app
from seqdemo.web import serving, settings
from seqdemo.web.endpoints import endpoint

MODEL_ENDPOINTS = {"classify", "trajectory", "next_words", "generate", "surprisal", "inspect", "find_units",
                   "export_trace", "compare_results", "compare_text"}


def test_every_model_handler_shares_one_queue_and_limit(monkeypatch, pipelines):
    monkeypatch.setenv("SEQDEMO_CONCURRENCY", "3")
    demo = app.build_demo(*pipelines)
    model_fns = [f for f in demo.fns.values() if f.name in {"classify", "trajectory", "next_words", "generate",
                                                              "surprisal", "inspect_gates", "find_units", "export",
                                                              "results", "read_text"}]
    assert {f.api_name for f in model_fns} >= MODEL_ENDPOINTS  # the page-only events are in it too
    assert {(f.concurrency_id, f.concurrency_limit, f.preprocess) for f in model_fns} == {
        (serving.MODEL_QUEUE, 3, False)}
    # The model selector's control update runs no model: it waits in a queue of its own.
    [controls] = [f for f in demo.fns.values() if f.name == "controls"]
    assert controls.concurrency_id != serving.MODEL_QUEUE
    assert demo._queue.max_size == settings.QUEUE_SIZE >= 50 * 20


def test_model_handlers_run_on_a_few_threads_of_their_own():
    # gradio calls handlers from up to 40 worker threads; the CPU kernels keep memory per thread, so the models run
    # on the same few threads whoever calls, streams included, and errors reach the caller as raised.
    import threading
    from concurrent.futures import ThreadPoolExecutor

    seen = set()

    def work(i):
        seen.add(threading.current_thread().name)
        if i < 0:
            raise ValueError("negative")
        return i

    def stream(n):
        for i in range(n):
            seen.add(threading.current_thread().name)
            yield i

    pool = serving.model_threads(4)
    handler, streamer = endpoint(work, 1, 1, pool=pool), endpoint(stream, 1, 1, pool=pool)
    with ThreadPoolExecutor(40) as callers:
        assert list(callers.map(handler, range(300))) == [(i, "") for i in range(300)]
        assert list(callers.map(lambda n: list(streamer(n)), [3] * 50)) == [[(0, ""), (1, ""), (2, "")]] * 50
    assert all(name.startswith("seqdemo-model") for name in seen)
    assert 1 <= len(seen) <= 4
    with pytest.raises(gr.Error, match="went wrong"):  # a ValueError is no InputError: ours, logged
        handler(-1)


def test_the_limit_follows_the_hardware(monkeypatch):
    monkeypatch.delenv("SEQDEMO_CONCURRENCY", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert settings.Settings.from_env({}).model_concurrency == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert settings.Settings.from_env({}).model_concurrency == 4
    assert settings.Settings.from_env({"SEQDEMO_CONCURRENCY": "2"}).model_concurrency == 2


def test_sigterm_stops_like_ctrl_c():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        serving.stop_on_sigterm()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
