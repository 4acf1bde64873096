"""What the Compare tab shows (tracker issue 12), as plain data: the comparison opened from its folder, or the one
sentence that says why it cannot be; the results table and the claims' verdict lines; every variant's verdict on a
text; the gradient curves of the vanishing-gradient chart. No gradio here (see seqdemo.web.presentation for why).

User text reaches the page only as table cells and (escaped) plot labels; the Markdown here carries numbers and
the contents of results.json, each escaped with `md`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from seqdemo.inference.sentiment import SentimentPipeline
from seqdemo.inference.variants import (
    DEFAULT_OUT,
    RESULTS_FILE,
    TITLES,
    VARIANTS,
    EmbeddingMismatch,
    format_stat,
    load_results,
    load_variants,
    text_gradient_norms,
    verdicts,
)
from seqdemo.web.presentation import md, percent, table, visible

logger = logging.getLogger("seqdemo.web.compare_view")

COMMAND = "nice -n 19 python -m seqdemo.experiments.compare"
GRADIENT_VARIANTS = ("rnn", "lstm", "gru")  # one line each in the vanishing-gradient chart
INSPECTABLE = ("gru", "bigru")  # the gate inspector opens these too: a GRU's r, z, n gates beside the LSTMs' gates
GRADIENT_NOTE = (
    "Read each line from the right (the last token) to the left: the further a line sinks, the less a token that "
    "far from the end can still move that model's decision. A plain RNN's gradient shrinks at every step (it "
    "vanishes); the LSTM's cell state and the GRU's update gate are there to keep their lines from sinking."
)


@dataclass
class Comparison:
    results: dict  # results.json as seqdemo.experiments.compare wrote it
    pipelines: dict[str, SentimentPipeline]  # the saved variants, in VARIANTS order


def open_comparison(folder: str | Path = DEFAULT_OUT,
                    embedding_from: str | Path | None = None) -> tuple[Comparison | None, str]:
    """The comparison in `folder` with its variants loaded on `embedding_from` (default: the checkpoint the
    comparison read), or None and one sentence saying why it cannot be shown and which command produces it."""
    folder = Path(folder)
    where = "`" + str(folder / RESULTS_FILE).replace("`", "'") + "`"  # our own path, as code: literal in Markdown
    if not (folder / RESULTS_FILE).is_file():
        return None, (f"No comparison to show yet: {where} is missing; `{COMMAND}` (about 85 minutes on two CPU "
                      "cores) trains the variants and writes it.")
    try:
        results = load_results(folder)
        pipelines = load_variants(folder, embedding_from)
    except EmbeddingMismatch:
        return None, (f"The comparison in {where} cannot be shown: its variants were trained on another embedding "
                      f"than the language model now offers, so rerun `{COMMAND}`.")
    except Exception as error:  # a broken or half-copied folder must not take the rest of the page down
        logger.warning("the comparison in %s cannot be loaded: %r", folder, error)
        return None, (f"The comparison in {where} cannot be loaded ({type(error).__name__}; the server log has "
                      f"the details): rerun `{COMMAND}` to write it again.")
    if not pipelines:
        return None, f"{where} names no saved variants: rerun `{COMMAND}` to train them."
    return Comparison(results, pipelines), ""


def inspectable_variants(comparison: Comparison | None) -> dict[str, SentimentPipeline]:
    """The variants the gate inspector offers besides the two main models (none without a comparison)."""
    if comparison is None:
        return {}
    return {name: comparison.pipelines[name] for name in INSPECTABLE if name in comparison.pipelines}


def variant_choice(name: str) -> str:
    """A variant's name in the inspector's model list."""
    per_direction = " per direction" if VARIANTS[name]["bidirectional"] else ""
    return f"Compare tab's {TITLES[name]}: {VARIANTS[name]['hidden_size']} units{per_direction}"


# -- the measured results ----------------------------------------------------------------------------------------


def target_text(variant: dict) -> str:
    """Seconds to the target validation accuracy, and how many seeds got there when not all did."""
    reached, runs = variant["runs_reaching_target"], len(variant["seeds"])
    if not reached:
        return "not reached"
    stat = format_stat(variant["seconds_to_target"], 1, " s")
    return stat if reached == runs else f"{stat} ({reached} of {runs} runs)"


def results_table(results: dict) -> dict:
    """One row per variant: parameters, test accuracy, speed (mean ± half the spread over seeds)."""
    target = results["recipe"]["target_accuracy"]
    headers = ["variant", "seeds", "parameters", "IMDB test accuracy", "RT test accuracy", "training tokens/s",
               f"time to {percent(target)} validation accuracy", "inference ms / review"]
    rows = []
    for variant in results["variants"].values():
        accuracy = variant["test_accuracy"]
        rows.append([
            variant["title"], len(variant["seeds"]), f"{variant['parameters']:,}",
            format_stat(accuracy.get("imdb")), format_stat(accuracy.get("rotten_tomatoes")),
            format_stat(variant["tokens_per_second"], 1, "", digits=0), target_text(variant),
            format_stat(variant["inference_ms"], 1, "", digits=2),
        ])
    return table(headers, rows)


def claims_markdown(results: dict) -> str:
    """Where the numbers come from, then each claim with its verdict and the figure it rests on."""
    command = str(results.get("command", "?")).replace("`", "'")
    lines = [f"Measured by `{command}` on {md(results.get('hardware', '?'))}; ± is half the spread (max − min) "
             "over the seeds.", ""]
    for claim in results["claims"]:
        lines.append(f"{claim['claim']}. *{md(claim['text'])}* **{md(claim['verdict'])}**: {md(claim['line'])}")
    return "\n".join(lines)


def bucket_names(results: dict) -> dict[str, str]:
    """short / medium / long with their token ranges, for the accuracy-by-length chart's axis."""
    names = {}
    for bucket in ("short", "medium", "long"):
        low, high = results["length_buckets"][bucket]
        if high is None:
            names[bucket] = f"{bucket} (≥ {low} tokens)"
        else:
            names[bucket] = f"{bucket} (< {high} tokens)" if low == 0 else f"{bucket} ({low}–{high - 1} tokens)"
    return names


# -- the visitor's text ------------------------------------------------------------------------------------------


def verdicts_view(comparison: Comparison, text: str) -> tuple[dict, str]:
    """Each variant's verdict on `text` beside its measured test accuracy, and a note on what the variants read."""
    answers = verdicts(comparison.pipelines, text)
    summary = comparison.results["variants"]
    any_pipeline = next(iter(comparison.pipelines.values()))  # the variants share tokenizer, labels and max_tokens
    positive = any_pipeline.labels[-1]
    rows = [[TITLES[name], answer["label"], percent(answer["probabilities"][positive]),
             format_stat(summary.get(name, {}).get("test_accuracy_mean_over_sources"))]
            for name, answer in answers.items()]
    headers = ["variant", "verdict", f"P({positive})", "its test accuracy (mean of IMDB and RT)"]
    first = next(iter(answers.values()))
    note = f"The variants read {first['tokens']} tokens of your text."
    if first["truncated"]:
        kept = any_pipeline.max_tokens
        note += (f" It is longer than that: they kept its first and last {kept // 2} tokens, and the chart's "
                 "distance counts over those.")
    return table(headers, rows), note


def gradient_curves(comparison: Comparison, text: str) -> dict[str, dict]:
    """For the RNN, the LSTM and the GRU (those saved): {name: {"title", "tokens", "norms"}}, the tokens read and
    ‖∂ logit / ∂ embedding_t‖ of each (seqdemo.web.plots.gradient_figure draws them)."""
    curves = {}
    for name in GRADIENT_VARIANTS:
        if name in comparison.pipelines:
            tokens, norms = text_gradient_norms(comparison.pipelines[name], text)
            curves[name] = {"title": TITLES[name], "tokens": [visible(t) for t in tokens], "norms": norms}
    return curves
