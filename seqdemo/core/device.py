"""Where the models run: `SEQDEMO_DEVICE` when set, else the GPU when there is one, else the CPU.

On a ZeroGPU Space the GPU exists only inside functions decorated with `spaces.GPU` (the `spaces` package, present
on Spaces): `on_zero_gpu` wraps a function so, and moves the models to the GPU inside it.
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Callable, Iterable

import torch


def pick_device(name: str | torch.device | None = None) -> torch.device:
    name = name or os.environ.get("SEQDEMO_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    """A name a person recognises: the GPU's model, or 'CPU'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type.upper()




def zero_gpu_decorator() -> Callable | None:
    """`spaces.GPU` where the `spaces` package can be imported (a Hugging Face Space), else None."""
    try:
        import spaces
    except ImportError:
        return None
    return spaces.GPU


def on_zero_gpu(fn: Callable, pipelines: Iterable, gpu_decorator: Callable | None) -> Callable:
    """`fn` wrapped in `gpu_decorator` (spaces.GPU), moving the pipelines to CUDA inside the call when CUDA is
    there: on ZeroGPU it is there only inside such a call, and on a CPU Space that has `spaces` installed it never
    is, so the models stay on the CPU. Without a decorator, `fn` itself. Generator functions stay generators (a
    streamed answer runs on the GPU to its end)."""
    if gpu_decorator is None:
        return fn
    pipelines = tuple(pipelines)

    def to_cuda() -> None:
        if torch.cuda.is_available():
            for pipeline in pipelines:
                pipeline.to("cuda")

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def run_stream(*args, **kwargs):
            to_cuda()
            yield from fn(*args, **kwargs)

        return gpu_decorator(run_stream)

    @functools.wraps(fn)
    def run(*args, **kwargs):
        to_cuda()
        return fn(*args, **kwargs)

    return gpu_decorator(run)
