"""How much a full gate trace (seqdemo.core.gates.trace) costs next to a plain forward of the same module.

For each configuration the two are timed side by side in one run, alternating repeat by repeat so that a load
change on the machine hits both, and the medians are compared. The target: trace / forward <= 2 on a CPU and
<= 3 on a GPU, at the shipped models' shapes with a 256-token text. The error column is the largest gap between
the trace and the module's own outputs (last layer's h, and every layer's final h and c).

    python bench/bench_gates.py                 # CPU, and CUDA when there is one
    python bench/bench_gates.py --tokens 512 --repeats 21 --device cpu
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

# seqdemo is not an installed package: put the repository on the path, so the script runs from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from seqdemo.core.gates import trace  # noqa: E402

# (name, cell, input size, hidden size, layers, bidirectional): the two shipped shapes and a GRU.
CONFIGS = [
    ("classifier BiLSTM, 1 layer", nn.LSTM, 256, 256, 1, True),
    ("classifier BiLSTM, 2 layers", nn.LSTM, 256, 256, 2, True),
    ("next-word LSTM, 3 layers", nn.LSTM, 512, 512, 3, False),
    ("classifier BiGRU, 1 layer", nn.GRU, 256, 256, 1, True),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=256, help="length of the input sequence (default 256)")
    parser.add_argument("--batch", type=int, default=1, help="batch size (default 1, as the demo traces one text)")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats of each, alternating (default 15)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs of each first (default 3)")
    parser.add_argument(
        "--device",
        choices=("all", "cpu", "cuda"),
        default="all",
        help="where to run: 'all' is the CPU and, when there is one, the GPU (default all)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for weights and inputs (default 0)")
    return parser.parse_args()


def timed(function, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    function()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def max_error(rnn: nn.LSTM | nn.GRU, x: torch.Tensor, traced: dict) -> float:
    """The largest gap between the trace and the module's output sequence and final states."""
    with torch.no_grad():
        output, state = rnn(x)
    final_h, final_c = state if isinstance(state, tuple) else (state, None)
    hidden, directions = rnn.hidden_size, 2 if rnn.bidirectional else 1
    gaps = []
    for (layer, direction), values in traced.items():
        last = -1 if direction == 0 else 0  # the backward direction ends on the first token
        gaps.append((values["h"][:, last] - final_h[layer * directions + direction]).abs().max())
        if final_c is not None:
            gaps.append((values["c"][:, last] - final_c[layer * directions + direction]).abs().max())
        if layer == rnn.num_layers - 1:
            gaps.append((values["h"] - output[..., direction * hidden : (direction + 1) * hidden]).abs().max())
    return max(gap.item() for gap in gaps)


def bench(config, device: torch.device, args: argparse.Namespace) -> str:
    name, cell, input_size, hidden, layers, bidirectional = config
    rnn = cell(input_size, hidden, layers, bidirectional=bidirectional, batch_first=True).to(device).eval()
    x = torch.randn(args.batch, args.tokens, input_size, device=device)

    def forward():
        with torch.no_grad():
            rnn(x)

    for _ in range(args.warmup):
        forward()
        trace(rnn, x)
    forward_times, trace_times = [], []
    for _ in range(args.repeats):
        forward_times.append(timed(forward, device))
        trace_times.append(timed(lambda: trace(rnn, x), device))
    forward_ms = statistics.median(forward_times) * 1e3
    trace_ms = statistics.median(trace_times) * 1e3
    error = max_error(rnn, x, trace(rnn, x))
    return f"{name:<30}{forward_ms:>12.2f}{trace_ms:>12.2f}{trace_ms / forward_ms:>8.2f}{error:>12.1e}"


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] if args.device in ("all", "cpu") else []
    if args.device == "cuda" or (args.device == "all" and torch.cuda.is_available()):
        devices.append(torch.device("cuda"))
    for device in devices:
        if device.type == "cuda":
            where = torch.cuda.get_device_name(device)
        else:
            # Other processes on the cores spoil the timings (most with several threads): say how busy it was.
            load = os.getloadavg()[0]
            where = f"CPU, {torch.get_num_threads()} threads, load average {load:.1f} on {os.cpu_count()} cores"
        print(f"\n{where}, torch {torch.__version__}: batch {args.batch}, {args.tokens} tokens,"
              f" median of {args.repeats}")
        print(f"{'configuration':<30}{'forward ms':>12}{'trace ms':>12}{'ratio':>8}{'max error':>12}")
        for config in CONFIGS:
            print(bench(config, device, args), flush=True)


if __name__ == "__main__":
    main()
