"""ZeroGPU: where the `spaces` package can be imported (a Hugging Face Space), every page function that runs a
model goes through `spaces.GPU` and moves the models to CUDA inside it; without the package nothing changes.
A stand-in `spaces` module records what it wraps and when its GPU is "held"."""

from __future__ import annotations

import functools
import inspect
import sys
import types

import pytest
import torch

import app
from seqdemo.core.device import on_zero_gpu

MODEL_ENDPOINTS = {"classify", "trajectory", "next_words", "generate", "surprisal", "inspect", "find_units",
                   "export_trace"}


class StandInSpaces(types.ModuleType):
    """`spaces.GPU` as ZeroGPU uses it, plain or as @spaces.GPU(duration=...): the GPU is held while a decorated
    function (or a decorated generator, to its end) runs."""

    def __init__(self):
        super().__init__("spaces")
        self.wrapped: list[str] = []
        self.holding = False

    def GPU(self, fn=None, duration=None):  # noqa: N802 - the real package's name
        if fn is None:
            return functools.partial(self.GPU, duration=duration)
        self.wrapped.append(fn.__name__)
        spaces = self
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def held_stream(*args, **kwargs):
                spaces.holding = True
                try:
                    yield from fn(*args, **kwargs)
                finally:
                    spaces.holding = False

            return held_stream

        @functools.wraps(fn)
        def held(*args, **kwargs):
            spaces.holding = True
            try:
                return fn(*args, **kwargs)
            finally:
                spaces.holding = False

        return held


@pytest.fixture
def moves(monkeypatch, pipelines):
    """CUDA reported present, and each pipeline's .to() recorded (whether the GPU was held, where to) instead of
    run: the test machine may have no GPU."""
    record: list[tuple[str, bool, str]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)

    def recorded_move(pipeline, device):
        spaces = sys.modules.get("spaces")  # the stand-in, when the test installed one
        record.append((pipeline.kind, bool(spaces and spaces.holding), str(device)))
        return pipeline

    for pipeline in pipelines:
        monkeypatch.setattr(pipeline, "to", functools.partial(recorded_move, pipeline))
    return record


def endpoint(demo, api_name: str):
    [fn] = [f.fn for f in demo.fns.values() if f.api_name == api_name]
    return fn


def test_every_model_endpoint_runs_inside_spaces_gpu(monkeypatch, pipelines, moves):
    spaces = StandInSpaces()
    monkeypatch.setitem(sys.modules, "spaces", spaces)
    moves.clear()
    demo = app.build_demo(*pipelines)

    text = "not good at all"
    calls = {
        "classify": (text, "evidence"), "trajectory": (text,), "next_words": ("The acting was", 3),
        "surprisal": (text,), "inspect": (text, "sentiment", 0, "forward", "f", "index", None),
        "find_units": (text, "sentiment", 0, "forward", "good", "memory"), "export_trace": (text, "sentiment", "npz"),
    }
    for api_name, args in calls.items():
        moves.clear()
        endpoint(demo, api_name)(*args)
        assert moves == [("sentiment", True, "cuda"), ("nextword", True, "cuda")], api_name
        assert not spaces.holding

    moves.clear()
    stream = endpoint(demo, "generate")("The acting was", 5, 0.8, 50, 0.95, 0)
    assert inspect.isgenerator(stream)  # still streamed, and the GPU is held while it streams
    first, message = next(stream)
    assert spaces.holding and first.startswith("The acting was") and message == ""
    *_, (last, _) = [(first, message), *stream]
    assert not spaces.holding and last == pipelines[1].generate("The acting was", max_new_tokens=5, seed=0,
                                                                whole_words=True)
    assert moves == [("sentiment", True, "cuda"), ("nextword", True, "cuda")]
    assert {f.api_name for f in demo.fns.values() if f.fn and f.fn.__name__ in spaces.wrapped} >= MODEL_ENDPOINTS


def test_without_spaces_nothing_is_wrapped_or_moved(monkeypatch, pipelines, moves):
    monkeypatch.setitem(sys.modules, "spaces", None)  # `import spaces` raises ImportError
    demo = app.build_demo(*pipelines)
    label, *_ = endpoint(demo, "classify")("not good at all", "evidence")
    assert set(label) == set(pipelines[0].labels)
    assert moves == []


def test_a_space_without_a_gpu_keeps_the_cpu(monkeypatch, pipelines):
    """`spaces` is importable on CPU Spaces too: there the wrapped handler must not reach for CUDA."""
    spaces = StandInSpaces()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    sentiment, nextword = pipelines
    wrapped = on_zero_gpu(sentiment.predict, pipelines, spaces.GPU)
    assert wrapped("I loved it") == sentiment.predict("I loved it")
    assert spaces.wrapped == ["predict"]
    assert sentiment.device.type == "cpu" and next(sentiment.model.parameters()).device.type == "cpu"
