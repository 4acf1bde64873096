"""Where the models run: `SEQDEMO_DEVICE` when set, else the GPU when there is one, else the CPU."""

from __future__ import annotations

import os

import torch


def pick_device(name: str | torch.device | None = None) -> torch.device:
    name = name or os.environ.get("SEQDEMO_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def describe(device: torch.device) -> str:
    """A name a person recognises: the GPU's model, or 'CPU'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type.upper()
