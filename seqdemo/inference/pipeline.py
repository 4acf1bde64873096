"""What the two pipelines share: a model, its tokenizer, where it runs, where its weights came from, and a gate
trace of any text. `SentimentPipeline` (seqdemo.inference.sentiment) and `NextWordPipeline` (seqdemo.inference.generation) build on it,
so code that only shows or moves a model (the app's inspector, ZeroGPU) takes either one."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import ClassVar

import torch

from seqdemo.core import gates
from seqdemo.core.tokenizer import Tokenizer


class Pipeline:
    kind: ClassVar[str]  # "sentiment" or "nextword": the name seqdemo.load takes

    def __init__(
        self, model: torch.nn.Module, tokenizer: Tokenizer, device: torch.device, source: str,
        folder: Path | None = None,
    ):
        self.model, self.tokenizer, self.device, self.source = model, tokenizer, device, source
        self.folder = folder  # the checkpoint folder on disk (model card, metrics.json), when loaded from one
        self.max_tokens: int = model.max_tokens

    @property
    def start_id(self) -> int | None:
        """A token the model reads before any text (the language model's begin-of-text), or None."""
        return None

    def to(self, device: torch.device | str) -> "Pipeline":
        """Moves the model to `device` (a no-op when it is there already); returns the pipeline."""
        device = torch.device(device)
        if device != self.device:
            self.model.to(device)
            self.device = device
        return self

    def gate_trace(self, text: str, max_tokens: int = 256) -> gates.TextTrace:
        """Every gate, cell and hidden value of the recurrent layers over the text's first `max_tokens` tokens
        (the start token, when the model reads one, counted among them). See seqdemo.core.gates.trace_text."""
        return gates.trace_text(self.model, self.tokenizer, text, max_tokens=max_tokens, start_id=self.start_id)


def available_cores() -> int:
    """The CPU cores this process may use: its affinity mask, capped by a cgroup CPU quota (a container or a
    Space often gets fewer cores than os.cpu_count() reports)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota: the affinity mask is the limit
    return max(1, cores)


def choose_threads(concurrency: int, cores: int | None = None) -> int:
    """torch intra-op threads per handler so that handlers running at once x threads <= cores (at least 1).

    Oversubscribed OpenMP threads spin against each other: one 304-token prediction went from 109 ms to 3.5 s
    while another 2-thread torch process shared the same 2 cores (issue 40)."""
    return max(1, (cores or available_cores()) // max(1, int(concurrency)))


def configure_threads(concurrency: int, cores: int | None = None) -> int:
    """Sets torch's intra-op threads from choose_threads (process-wide) and returns the number set."""
    threads = choose_threads(concurrency, cores)
    torch.set_num_threads(threads)
    return threads


def native_lstm_kernels() -> None:
    """Runs nn.LSTM on the CPU with PyTorch's own kernel instead of oneDNN's (process-wide; CUDA is unaffected).
    Measured side by side on a 2-core AVX2 CPU, one thread (bench/bench_kernels.py): sampling 40 tokens takes 0.44x
    the time, integrated gradients 0.80-0.87x, a trajectory 0.76-0.96x; one forward pass over a 320-token review
    takes 1.45x and a gate trace 1.25x (both still well under the page's 1 s). The page's default answers and a
    crowd's mix gain on the whole; the results agree within 3e-7. app.main() sets it for the serving process."""
    torch.backends.mkldnn.enabled = False
