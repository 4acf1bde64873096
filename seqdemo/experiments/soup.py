"""Averages the weights of classifiers fine-tuned from one start into one classifier ("model soup").

    python -m seqdemo.experiments.soup --out runs/soup FOLDER FOLDER ...            # the uniform average of these checkpoints
    python -m seqdemo.experiments.soup --greedy --out runs/soup FOLDER FOLDER ...   # greedy soup, chosen by validation

Models fine-tuned from the same weights stay in one basin of the loss, so the average of their weights is a model
of the same shape (the inspector shows its gates, its attribution stays exact) that is often better than each of
them, out of distribution above all (Wortsman et al. 2022, "Model soups"). The greedy soup ranks the checkpoints by
validation (the rows training chooses by: seqdemo.experiments.evaluate.validation_rows) and adds each, best first, only if
the average with it validates higher than without; the test split is never read. The soup is written as a
checkpoint folder in the first checkpoint's weight storage, and validated as stored.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from seqdemo.core import weights
from seqdemo.experiments.card import TRAINING_FILE, read_json
from seqdemo.inference.hub import (
    CONFIG,
    MODEL_CLASS,
    TOKENIZER,
    load_folder,
    load_model,
)


def average(folders: list[Path]) -> torch.nn.Module:
    """The first checkpoint's model holding the mean of all the checkpoints' weights, each widened to float32."""
    models = [load_model(MODEL_CLASS["sentiment"], folder) for folder in folders]
    states = [model.state_dict() for model in models]
    models[0].load_state_dict({name: torch.stack([state[name] for state in states]).mean(dim=0) for name in states[0]})
    return models[0]


def check_compatible(folders: list[Path]) -> None:
    """Only checkpoints of one architecture and one tokenizer can be averaged."""
    first = folders[0]
    for folder in folders[1:]:
        for name in (CONFIG, TOKENIZER):
            if (folder / name).read_bytes() != (first / name).read_bytes():
                raise ValueError(f"{folder / name} differs from {first / name}: these checkpoints cannot be averaged")


def write_soup(folders: list[Path], out: Path, record: dict) -> None:
    """A checkpoint folder holding the average of `folders`, stored as the first one is."""
    check_compatible(folders)
    model = average(folders)
    out.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG, TOKENIZER):
        shutil.copyfile(folders[0] / name, out / name)
    storage = read_json(folders[0] / CONFIG).get("weight_storage", "float32")
    weights.save(model, out / weights.WEIGHTS, storage)
    training = {"kind": "sentiment", "soup": record,
                "ingredients": {str(folder): read_json(folder / TRAINING_FILE) for folder in folders}}
    (out / TRAINING_FILE).write_text(json.dumps(training, indent=2) + "\n")


def validate(folders: list[Path], rows, device=None) -> dict[str, float]:
    from seqdemo.experiments.evaluate import sentiment_metrics

    with tempfile.TemporaryDirectory() as scratch:
        write_soup(folders, Path(scratch), {})
        return sentiment_metrics(load_folder("sentiment", scratch, device=device), rows, with_mean=True)


def greedy(folders: list[Path], rows, device=None, log=print) -> tuple[list[Path], list[dict]]:
    """Wortsman et al.'s greedy soup: best checkpoint first, then each next one kept only if it raises validation."""
    scored = [(validate([folder], rows, device), folder) for folder in folders]
    history = [{"checkpoint": str(folder), "alone": score} for score, folder in scored]
    for entry in history:
        log(f"{entry['checkpoint']}: validation {entry['alone']['mean over sources']}")
    scored.sort(key=lambda pair: -pair[0]["mean over sources"])
    best, soup = scored[0][0], [scored[0][1]]
    for _, folder in scored[1:]:
        score = validate(soup + [folder], rows, device)
        kept = score["mean over sources"] > best["mean over sources"]
        log(f"+ {folder}: validation {score['mean over sources']} ({'kept' if kept else 'left out'})")
        history.append({"checkpoint": str(folder), "with soup": score, "kept": kept})
        if kept:
            best, soup = score, soup + [folder]
    return soup, history + [{"soup": [str(folder) for folder in soup], "validation": best}]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", help="sentiment checkpoint folders fine-tuned from one start")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the soup to")
    parser.add_argument("--greedy", action="store_true",
                        help="add the checkpoints best first, each only if validation rises (else: average them all)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    args = parser.parse_args(argv)

    check_compatible(args.folders)
    record = {"command": "python -m seqdemo.experiments.soup " + " ".join(argv if argv is not None else sys.argv[1:])}
    folders = args.folders
    if args.greedy:
        from seqdemo.experiments.data import load_splits
        from seqdemo.experiments.evaluate import validation_rows

        rows = validation_rows(load_splits()["valid"], ["imdb", "rotten_tomatoes"])
        folders, record["greedy"] = greedy(folders, rows, args.device, log=lambda line: print(line, flush=True))
    write_soup(folders, args.out, {**record, "averaged": [str(folder) for folder in folders]})
    print(f"wrote the average of {len(folders)} checkpoints to {args.out}")


if __name__ == "__main__":
    main()
