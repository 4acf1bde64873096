"""How a checkpoint's model.safetensors stores the weights: float32, float16, or int8 with one scale per row.

float32 is what a model computes in (save_pretrained's default); float16 halves the download at no measurable cost
(what training writes). int8 halves it again: each row of a weight matrix (one unit's
input weights, one word's embedding) is stored as 8-bit integers times one float32 scale, the row's largest
magnitude / 127 (symmetric per-row quantisation, as in LLM.int8() - Dettmers et al. 2022 - without its outliers).
Vectors (biases) stay float16. Loading widens everything back to float32, so the model that runs, and that
`python -m seqdemo.experiments.evaluate` measures, is exactly the widened one. The file says how it is stored: a weight with
a companion `NAME{SCALE_SUFFIX}` tensor is int8. Training picks the format (`python -m seqdemo.experiments.train ...
--weight-storage int8`), and config.json records it as `weight_storage`.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import safetensors.torch
import torch

WEIGHTS = "model.safetensors"
FORMATS = ("float32", "float16", "int8")
SCALE_SUFFIX = ":int8_scale"


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 values, float32 scale per row) with values * scale ≈ weight."""
    rows = weight.detach().float().flatten(1)
    scale = rows.abs().amax(dim=1).clamp(min=1e-12) / 127
    values = torch.round(rows / scale.unsqueeze(1)).clamp(-127, 127).to(torch.int8)
    return values.view(weight.shape), scale


def check_format(storage: str) -> str:
    if storage not in FORMATS:
        raise ValueError(f"weight storage must be one of {FORMATS}, not {storage!r}")
    return storage


def save(model: torch.nn.Module, path: str | Path, storage: str = "float32") -> None:
    """Writes the model's weights to `path` as `storage`. A weight tied to another (the language model's decoder is
    its embedding) is written once, as safetensors' own save_model does; int8 refuses tied weights."""
    if check_format(storage) != "int8":
        dtype = torch.float16 if storage == "float16" else torch.float32
        safetensors.torch.save_model(copy.deepcopy(model).cpu().to(dtype), str(path))
        return
    tensors, seen = {}, set()
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() in seen:
            raise ValueError(f"int8 storage does not support tied weights ({name})")
        seen.add(tensor.data_ptr())
        if tensor.is_floating_point() and tensor.dim() >= 2:
            tensors[name], tensors[name + SCALE_SUFFIX] = quantize_rows(tensor.cpu())
        else:
            tensors[name] = tensor.detach().cpu().half() if tensor.is_floating_point() else tensor.detach().cpu()
    safetensors.torch.save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"format": "pt"})


def load(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """Loads either format into `model`, strictly (every weight present, none left over, no int8 weight without
    its scale), widened to float32."""
    path = str(path)
    with safetensors.safe_open(path, framework="pt") as f:
        quantized = any(name.endswith(SCALE_SUFFIX) or f.get_slice(name).get_dtype() == "I8" for name in f.keys())
    if not quantized:
        safetensors.torch.load_model(model, path, strict=True, device="cpu")  # restores tied weights too
        return model.float()
    stored = safetensors.torch.load_file(path, device="cpu")
    state = {}
    for name, tensor in stored.items():
        if name.endswith(SCALE_SUFFIX):
            continue
        if tensor.dtype == torch.int8:
            scale = stored.get(name + SCALE_SUFFIX)
            if scale is None:
                raise ValueError(f"{name} is stored as int8 without its scale ({name}{SCALE_SUFFIX})")
            tensor = (tensor.float().flatten(1) * scale.float().unsqueeze(1)).view(tensor.shape)
        state[name] = tensor.float() if tensor.is_floating_point() else tensor
    orphans = [name for name in stored if name.endswith(SCALE_SUFFIX) and name[: -len(SCALE_SUFFIX)] not in state]
    if orphans:
        raise ValueError(f"scales without their weights: {', '.join(orphans)}")
    model.load_state_dict(state, strict=True)
    return model.float()


def as_stored(model: torch.nn.Module, storage: str) -> torch.nn.Module:
    """A copy of `model` with exactly the weights a checkpoint stored as `storage` loads back (int8 rounds every row),
    so that training validates, and picks its best epoch by, the model it ships."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / WEIGHTS
        save(model, path, storage)
        return load(copy.deepcopy(model), path)
