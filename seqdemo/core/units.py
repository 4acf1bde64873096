"""Unit rankings: which units of one layer and direction of a gate trace matter, by an order or at marked steps.

Pure arithmetic on a trace's (steps, units) tensors (seqdemo.core.gates.TextTrace.layers); no model is called
here. The ranking by contribution to a classifier's decision needs the classifier and lives with it
(seqdemo.inference.sentiment.SentimentPipeline.unit_contributions).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqdemo.core import gates
from seqdemo.core.validate import InputError

MEASURES = ("memory", "gates")


def order(matrix: torch.Tensor, by: str) -> list[int]:
    """The units (columns of `matrix`) by "index" or by "variance" over the steps, highest first."""
    if by == "index":
        return list(range(matrix.shape[1]))
    if by == "variance":
        return gates.rank_units_by_variance(matrix).tolist()
    raise InputError("order must be one of: index, variance, contribution.")


@dataclass
class MarkedChange:
    """How each unit's memory and gates moved at the marked steps, and the units ranked by the chosen measure."""

    kind: str  # "c" (an LSTM's memory) or "h" (a GRU's)
    order: list[int]
    before: torch.Tensor  # memory before the first marked step, per unit
    after: torch.Tensor  # memory after the last marked step
    jump: torch.Tensor  # |after - before| per marked step, in units of the unit's usual step
    keep_here: torch.Tensor  # the keeping gate's lowest value at the marked steps (f, or a GRU's z)
    keep_else: torch.Tensor  # its mean elsewhere
    write_here: torch.Tensor  # the writing gate's highest value at the marked steps (i, or 1 - z)
    write_else: torch.Tensor


def _memory_and_gates(values: dict[str, torch.Tensor]):
    if "c" in values:
        return "c", values["c"].float(), values["f"].float(), values["i"].float()
    if "z" in values:
        keep = values["z"].float()
        return "h", values["h"].float(), keep, 1 - keep
    raise InputError("Finding units reads a memory and the gates that keep and write it: an LSTM's or a GRU's.")


def marked_change(values: dict[str, torch.Tensor], steps: list[int], measure: str = "memory") -> MarkedChange:
    """The units whose memory or gates change most at the marked `steps`, strongest first. An LSTM's memory is its
    cell state c, which the forget gate f keeps and the input gate i writes to; a GRU's is its hidden state h,
    which the update gate z keeps and 1 - z overwrites.

    memory: |memory after the marked steps - before them| per marked step, divided by the unit's mean step
    |m_t - m_t-1| over the text ("5x its usual step"). gates: how far the keeping gate dips below (min inside vs.
    mean outside) or the writing gate rises above (max inside vs. mean outside) their levels in the rest."""
    if measure not in MEASURES:
        raise InputError("measure must be one of: memory, gates.")
    kind, memory, keep, write = _memory_and_gates(values)
    inside = torch.zeros(memory.shape[0], dtype=torch.bool)
    inside[steps] = True
    if inside.all():
        raise InputError("Mark part of the text, not all of it: the units are compared with the rest.")
    previous = torch.cat([memory.new_zeros(1, memory.shape[1]), memory[:-1]])
    before, after = previous[min(steps)], memory[max(steps)]
    usual = (memory - previous).abs().mean(0) + 1e-6
    jump = (after - before).abs() / len(steps) / usual
    keep_here, keep_else = keep[inside].min(0).values, keep[~inside].mean(0)
    write_here, write_else = write[inside].max(0).values, write[~inside].mean(0)
    score = jump if measure == "memory" else torch.maximum(keep_else - keep_here, write_here - write_else)
    ranked = torch.argsort(score, descending=True, stable=True).tolist()
    return MarkedChange(kind, ranked, before, after, jump, keep_here, keep_else, write_here, write_else)
