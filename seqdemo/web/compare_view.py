"""What the Compare tab shows (tracker issue 12), as plain data: the comparison opened from its folder, or the one
sentence that says why it cannot be; the results table and the claims' verdict lines; every variant's verdict on a
text; the gradient curves of the vanishing-gradient chart. No gradio here (see seqdemo.web.presentation for why).

User text reaches the page only as table cells and (escaped) plot labels; the Markdown here carries numbers and
the contents of results.json, each escaped with `md`.
"""

from __future__ import annotations

import logging
import math
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
from seqdemo.web.plots import GRADIENT_FLOOR
from seqdemo.web.presentation import md, percent, table, visible

logger = logging.getLogger("seqdemo.web.compare_view")

COMMAND = "nice -n 19 python -m seqdemo.experiments.compare"
GRADIENT_VARIANTS = ("rnn", "lstm", "gru")  # one line each in the vanishing-gradient chart
INSPECTABLE = ("gru", "bigru")  # the gate inspector opens these too: a GRU's r, z, n gates beside the LSTMs' gates
# The gradient section's default: a long review (written for this page, in no data split), because a plain RNN's
# gradient shrinks by a factor per step, which shows only over many steps; the praise at its start sits far from
# the end, where only a memory that lasts can still carry it to the decision.
LONG_REVIEW = (
    "I went into this film knowing nothing about it except the poster, and the first twenty minutes had me hooked. "
    "The opening scene, a long single shot of a family packing up a house at dawn, is quietly beautiful and tells "
    "you everything about these people without a word of exposition. Then the middle hour wanders. The script keeps "
    "adding characters who never matter, a subplot about a stolen painting goes nowhere, and the score swells at "
    "moments that have not earned it. I checked my watch twice. The lead actress does what she can, and her scenes "
    "with her younger brother are the best thing in the film, but the director seems more interested in pretty "
    "landscapes than in the story. By the last act I had stopped caring who ended up with the house. It is not a "
    "terrible movie, just a long and forgettable one, and I would not watch it again."
)
GRADIENT_NOTE = (
    "Read each line from the right (the last token) to the left: the further a line sinks, the less a token that "
    "far from the end can still move that model's decision. A plain RNN's gradient shrinks by a factor at every "
    "step back (it vanishes); the LSTM's cell state and the GRU's update gate are there to keep their lines from "
    "sinking. **Length matters:** a factor per step adds up only over many steps, so on a short text the RNN's "
    "line need not sink at all (it may even end highest); this section opens on a long review for that reason. "
    f"A value too small for the chart (below 1e{round(math.log10(GRADIENT_FLOOR))}, or exactly 0 where the number "
    "underflows) is drawn as ▼ on the floor line."
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


def model_size(model) -> str:
    """A classifier's recurrence in words ("2 layers of 512 units per direction"), from the loaded model."""
    rnn = model.rnn
    layers = f"{rnn.num_layers} layer{'s' * (rnn.num_layers != 1)}"
    return f"{layers} of {rnn.hidden_size} units" + (" per direction" if rnn.bidirectional else "")


def claims_markdown(results: dict, sentiment_model: str) -> str:
    """Where the numbers come from, then each claim with its verdict and the figure it rests on; under claims 2 and
    3 (a variant against the LSTM) what the equal time budget means for them, and the comparison at equal data."""
    command = str(results.get("command", "?")).replace("`", "'")
    lines = [f"Measured by `{command}` on {md(results.get('hardware', '?'))}; ± is half the spread (max − min) "
             "over the seeds.", ""]
    for claim in results["claims"]:
        reading = claim.get("reading", claim["verdict"])
        lines.append(f"{claim['claim']}. *{md(claim['text'])}* **{md(reading)}**: {md(claim['line'])}")
        if claim["claim"] == 2:
            lines += [budget_line(results, "bilstm", "lstm"), small_bilstm_line(results, sentiment_model)]
        if claim["claim"] == 3:
            lines.append(budget_line(results, "gru", "lstm"))
    lines += ["", equal_training_markdown(results)]
    return "\n".join(line for line in lines if line is not None)


def budget_line(results: dict, name: str, baseline: str) -> str | None:
    """A sub-item: every run trained for the same minutes, so `name` read less (or more) data than `baseline`; and
    the two at equal data, with the sampling error of that difference."""
    summary, equal = results["variants"], results.get("equal_training")
    if name not in summary or baseline not in summary:
        return None
    titles = {n: md(summary[n]["title"]) for n in (name, baseline)}
    ratio = summary[name]["tokens_per_second"]["mean"] / summary[baseline]["tokens_per_second"]["mean"]
    line = (f"   - *Same minutes, not the same data:* every run trained for {results['recipe']['run_minutes']:g} "
            f"minutes, so the {titles[name]} read {ratio:.2f}× the {titles[baseline]}'s training tokens.")
    stats = [(equal or {}).get("valid_accuracy", {}).get(n) for n in (name, baseline)]
    if all(stats):
        rows = results["recipe"]["valid_rows"]
        error = math.sqrt(sum(s["mean"] * (1 - s["mean"]) / rows for s in stats))
        gap = stats[0]["mean"] - stats[1]["mean"]
        line += (f" At equal data (the first {equal['tokens'] / 1e6:.1f} M tokens): validation accuracy "
                 f"{titles[name]} {md(format_stat(stats[0]))} vs {titles[baseline]} {md(format_stat(stats[1]))} "
                 f"({gap * 100:+.1f} points; on {rows} validation rows a difference has a standard error of "
                 f"{error * 100:.1f} points).")
    return line


def small_bilstm_line(results: dict, sentiment_model: str) -> str | None:
    """A sub-item: the BiLSTM compared here is small, not the Sentiment tab's model."""
    if "bilstm" not in results["variants"]:
        return None
    options = VARIANTS["bilstm"]
    return (f"   - This BiLSTM is the Compare tab's small one ({options['hidden_size']} units per direction, "
            f"{results['variants']['bilstm']['parameters']:,} trainable parameters), not the Sentiment tab's "
            f"model ({md(sentiment_model)}).")


def equal_training_markdown(results: dict) -> str:
    """Every variant's validation accuracy after the same amount of training, or why it is not there."""
    equal = results.get("equal_training")
    if not equal:
        return f"*At equal data:* not in this results file; `{COMMAND} --rederive` adds it from the stored runs."
    shown = ", ".join(f"{md(results['variants'][name]['title'])} {md(format_stat(stat))}"
                      for name, stat in equal["valid_accuracy"].items() if name in results["variants"])
    return (f"**At equal data:** validation accuracy after the first {equal['tokens'] / 1e6:.1f} M training tokens "
            f"of each run (the most every run reached; {md(equal['approximation'])}): {shown}.")


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
