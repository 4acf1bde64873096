"""Trains the two shipped models on the training split of `seqdemo.experiments.data`.

    python -m seqdemo.experiments.train nextword                                         # writes checkpoints/nextword
    python -m seqdemo.experiments.train sentiment --init-from checkpoints/nextword       # writes checkpoints/sentiment
    python -m seqdemo.experiments.train nextword --help                                  # the recipe: every flag's default

The language model comes first: it learns the tokenizer and English about movies from the review text. The
classifier then starts from it, as in ULMFiT (Howard & Ruder 2018, "Universal Language Model Fine-tuning for Text
Classification"): the embedding and the first LSTM layer are copied from the language model into the forward
direction, and a backward language model's first layer (`nextword --backward`, each text read right to left) into the
backward direction; the copied layers train with a smaller learning rate than the new ones (discriminative learning
rates) and are held fixed at first (gradual unfreezing).

Each run validates after every epoch and writes its best epoch as a complete checkpoint folder the moment it is
reached (config.json, model.safetensors in float16 or int8, tokenizer.model, training.json, README.md), so a run that is
killed leaves its best model behind; `--resume FOLDER` trains a checkpoint further. `--max-minutes` bounds
a run: the learning rate decays over the time budget. `python -m seqdemo.experiments.evaluate FOLDER` then measures the test
metrics and writes them into the card.

The same command runs on several devices under torchrun, in DistributedDataParallel (NCCL with one GPU per process,
gloo on the CPU):

    torchrun --nproc_per_node 4 -m seqdemo.experiments.train sentiment --init-from checkpoints/nextword

Each process reads its share of every batch (--batch-size stays the whole step's batch, so a recipe trains the same
model on any number of devices, only faster); rank 0 alone validates, logs and writes checkpoints.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from seqdemo.core import weights
from seqdemo.core.device import device_name, pick_device
from seqdemo.core.models import NextWordLSTM, SentimentClassifier
from seqdemo.core.text import (
    casual,
    contrast,
    head_and_tail,
    pad_batch,
    sentences,
    short_enough,
)
from seqdemo.core.tokenizer import Tokenizer
from seqdemo.experiments.card import TRAINING_FILE, write_model_card
from seqdemo.experiments.data import (
    HELD_OUT_SOURCE,
    LABELS,
    NEGATORS,
    Review,
    closing_sentences,
    load_splits,
    negation_templates,
    row_hash,
    treebank,
    treebank_adjectives,
    treebank_phrases,
)
from seqdemo.experiments.evaluate import (
    accuracy_by_source,
    mean_over_sources,
    validation_rows,
)
from seqdemo.inference.hub import load_model
from seqdemo.inference.sentiment import SentimentPipeline


def flag(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """What every run takes. Each kind below sets its own defaults: `--help` of a kind shows its recipe."""

    kind: ClassVar[str]
    out: Path | None = flag(None, "checkpoint folder to write (default: checkpoints/KIND)")
    epochs: int = flag(4, "passes over the training data (or over --steps-per-epoch steps)")
    steps_per_epoch: int = flag(0, "cap the steps of an epoch, so that a long run validates often (0: no cap)")
    max_minutes: float = flag(0.0, "stop after this many minutes; the learning rate decays over them (0: no limit)")
    batch_size: int = flag(32, "sequences per step (under torchrun: in all, shared out over the processes)")
    lr: float = flag(2e-3, "peak learning rate (linear warm-up, then cosine decay)")
    warmup: float = flag(0.05, "share of the run spent warming up the learning rate")
    hidden_size: int = flag(512, "LSTM units (per direction)")
    num_layers: int = flag(1, "stacked LSTM layers")
    dropout: float = flag(0.25, "dropout on the LSTM's input, between layers and on its output")
    vocab_size: int = flag(8000, "SentencePiece vocabulary size (when a tokenizer is learned)")
    clip: float = flag(1.0, "gradient-norm clipping")
    seed: int = flag(0, "random seed")
    device: str | None = flag(None, "cuda or cpu (None: cuda when available)")
    threads: int = flag(0, "CPU threads (0: torch's default)")
    precision: str = flag("auto", "bf16 autocast or fp32 (auto: bf16 where the hardware runs an LSTM in it)")
    weight_storage: str = flag("float16", "how model.safetensors stores the weights: float32, float16, or int8 with "
                               "one scale per row (half of float16; seqdemo.core.weights)")
    resume: Path | None = flag(None, "go on training this checkpoint of the same kind: its architecture, weights and "
                               "tokenizer, with this run's regularisation and a fresh optimizer")

    def __post_init__(self):
        self.out = Path(self.out) if self.out else Path("checkpoints") / self.kind

    def select(self, splits: dict[str, list[Review]]) -> dict[str, list[Review]]:
        """The rows this run trains and validates on (all of them, unless a kind says otherwise)."""
        return splits

    def command(self) -> str:
        """The command line that reproduces this configuration (flags that differ from the kind's defaults)."""
        defaults = type(self)()
        parts = ["python -m seqdemo.experiments.train", self.kind]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != getattr(defaults, f.name):
                name = f"--{f.name.replace('_', '-')}"
                parts.append(name if value is True else f"--no-{name[2:]}" if value is False else f"{name} {value}")
        return " ".join(parts)


@dataclass
class NextWordConfig(TrainConfig):
    """The 3-layer LSTM language model (it also learns the tokenizer)."""

    kind: ClassVar[str] = "nextword"
    num_layers: int = flag(3, "stacked LSTM layers")
    bptt: int = flag(96, "tokens per backpropagation-through-time window")
    embedding_dropout: float = flag(0.05, "share of words dropped from the embedding (AWD-LSTM)")
    weight_drop: float = flag(0.2, "DropConnect on the hidden-to-hidden weights (AWD-LSTM)")
    backward: bool = flag(False, "read every text right to left: a backward LM, which starts the classifier's "
                          "backward direction (--backward-from)")


@dataclass
class SentimentConfig(TrainConfig):
    """The bidirectional LSTM classifier, best started from a language model (--init-from)."""

    kind: ClassVar[str] = "sentiment"
    hidden_size: int = flag(256, "LSTM units (per direction)")
    dropout: float = flag(0.3, "dropout on the embeddings and on the pooled features")
    init_from: Path | None = flag(None, "language-model checkpoint to start from (its tokenizer, embedding and the "
                                  "first --num-layers LSTM layers)")
    backward_from: Path | None = flag(None, "backward language model (nextword --backward) whose layers start the "
                                      "backward direction (default: the forward one's)")
    max_tokens: int = flag(512, "tokens the model reads per text (head and tail), saved in its config")
    train_tokens: int = flag(256, "tokens per text while training (head and tail)")
    pooling: str = flag("max", "max, mean or last: how the BiLSTM's states become one feature vector")
    casual_fraction: float = flag(0.3, "share of training texts added again lower-cased without punctuation")
    short_repeats: int = flag(1, "times each Rotten Tomatoes sentence is read per epoch (its few short sentences "
                              "are otherwise outweighed by the long IMDB reviews)")
    word_dropout: float = flag(0.0, "share of a training text's tokens left out, drawn afresh each time it is read, "
                               "so that a sentence read many times is not learned by heart (Iyyer et al. 2015)")
    pretrained_lr_scale: float = flag(0.3, "learning-rate factor for the layers copied from the language model")
    unfreeze_after: float = flag(0.1, "share of training during which the copied layers stay fixed")
    sources: str = flag("imdb,rotten_tomatoes", "comma-separated sources to train and validate on")
    train_fraction: float = flag(1.0, "share of each source's training rows to train on, for learning curves (the "
                                 "same rows in every run, and a smaller share's rows are part of a larger one's)")
    closing_sentences: int = flag(0, "add the closing sentences of this many IMDB training reviews as short texts "
                                  "labelled with their review's verdict (distant supervision)")
    contrast_pairs: int = flag(0, "add this many contrasts 'A, but B' joined from two short training texts of opposite "
                               "verdicts, labelled with B's: the clause after 'but' carries a contrast's verdict (the "
                               "A-but-B rule of Hu et al. 2016, \"Harnessing Deep Neural Networks with Logic Rules\")")
    contrast_from: str = flag("short", "which short texts --contrast-pairs joins: 'short' (Rotten Tomatoes sentences "
                              "and --closing-sentences) or 'rotten_tomatoes' (the hand-labelled sentences alone, whose "
                              "verdicts are cleaner than a closing sentence's borrowed one)")
    review_sentences: int = flag(0, "add this many sentences from inside the IMDB training reviews (not their closing "
                                 "ones), each labelled softly by two witnesses: the resumed classifier (the teacher) "
                                 "and its review's verdict (self-training with distant supervision; needs --resume)")
    review_odds: float = flag(6.0, "how many times likelier a sentence is to share its review's verdict than not: the "
                              "review's weight as a witness (a sentence the teacher reads as 0.5 gets 6/7 towards its "
                              "review's verdict)")
    label_smoothing: float = flag(0.0, "share of each target spread evenly over both verdicts (0.1: a positive row's "
                                  "target is 0.95 positive), so that sentences read many times are not pushed to "
                                  "certainty (Szegedy et al. 2016, \"Rethinking the Inception Architecture\")")
    adversarial: float = flag(0.0, "also train on each batch with its embeddings moved, per text, along the loss's "
                              "gradient by this share of a token embedding's mean norm (adversarial training: Miyato "
                              "et al. 2017, \"Adversarial Training Methods for Semi-Supervised Text Classification\"; "
                              "their 5.0 on unit-variance 256-d embeddings is about 0.3); each batch is then read twice")
    sst: Path | None = flag(None, "Stanford Sentiment Treebank folder (train.txt, dev.txt, test.txt of its "
                            "trainDevTestTrees_PTB): train on every non-neutral phrase of the trees that match no "
                            "validation or test sentence (seqdemo.experiments.data.leak_free)")
    negation_repeats: int = flag(1, "times each treebank phrase with a negator (not, n't, never, no...) is read")
    negation_templates: int = flag(0, "add this many negation and contrast texts from templates filled with the "
                                   "treebank's labelled adjectives (needs --sst); held-out templates and words are "
                                   "reported at each validation, outside the mean training chooses by")
    average_from: float = flag(1.0, "share of training after which the weights are also averaged, step by step "
                               "(stochastic weight averaging: Izmailov et al. 2018, \"Averaging Weights Leads to "
                               "Wider Optima\"); the average replaces the best epoch if it validates at least as well "
                               "(1: off)")

    def select(self, splits: dict[str, list[Review]]) -> dict[str, list[Review]]:
        """The training and validation rows of --sources and --train-fraction of each source's training rows, plus
        --closing-sentences, --review-sentences and --contrast-pairs made of the short ones."""
        def shuffled(source: str) -> list[Review]:
            # Row-hash order is a fixed shuffle, so a share's rows are the first ones of every larger share.
            return sorted((r for r in splits["train"] if r.source == source), key=row_hash)

        sources = self.sources.split(",")
        kept = set()
        for source in sources:
            rows = shuffled(source)
            kept.update(rows[: round(len(rows) * self.train_fraction)])
        train = [r for r in splits["train"] if r in kept]  # in the split's order, so all rows train as before
        reviews = shuffled("imdb")
        train += closing_sentences(reviews[: self.closing_sentences])
        if self.review_sentences:
            inner = [Review(s, r.label, "imdb review sentence") for r in reviews
                     for s in sentences(r.text)[:-1] if short_enough(s)]
            train += random.Random(self.seed).sample(inner, min(self.review_sentences, len(inner)))
        def pairable(r: Review) -> bool:
            return r.source != "imdb" if self.contrast_from == "short" else r.source == self.contrast_from

        short = [[r for r in train if pairable(r) and r.label == label] for label in range(len(LABELS))]
        if self.contrast_pairs and not all(short):
            raise SystemExit(f"--contrast-pairs needs texts of both verdicts (--contrast-from {self.contrast_from})")
        both, draw = short[0] + short[1], random.Random(self.seed)
        for _ in range(self.contrast_pairs):
            second = draw.choice(both)
            first = draw.choice(short[1 - second.label])
            train.append(Review(contrast(first.text, second.text), second.label, "contrast pair"))
        valid = validation_rows(splits["valid"], sources)
        if not self.sst:
            return {**splits, "train": train, "valid": valid}
        trees, counts = treebank(self.sst, splits)
        phrases = treebank_phrases(trees)
        negated = [r for r in phrases if NEGATORS.search(r.text)]
        train += phrases + negated * (self.negation_repeats - 1)
        words = treebank_adjectives(trees)
        train += negation_templates(words, self.negation_templates, held_out=False, seed=self.seed)
        valid += negation_templates(words, 600 if self.negation_templates else 0, held_out=True)
        counts.update(distinct_phrases=len(phrases), with_negator=len(negated), template_words=len(words))
        say(f"Sentiment Treebank: {counts}")
        return {**splits, "train": train, "valid": valid, "treebank": counts}


CONFIGS = {config.kind: config for config in (NextWordConfig, SentimentConfig)}
CHOICES = {"precision": ["auto", "bf16", "fp32"], "pooling": ["max", "mean", "last"],
           "contrast_from": ["short", "rotten_tomatoes"],
           "weight_storage": ["float32", "float16", "int8"]}


@dataclass
class Epoch:
    epoch: int
    metric: float  # validation loss (nextword, nats per token) or mean validation accuracy over sources (sentiment)
    tokens_per_second: int
    minutes: float


@dataclass
class TrainResult:
    model: torch.nn.Module  # the best validated epoch
    tokenizer: Tokenizer
    recipe: dict  # what training.json records


# ------------------------------------------------------------------------------------------------ distributed


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def join_processes(requested: str | None) -> torch.device:
    """This process's device. Under torchrun (WORLD_SIZE > 1) it first joins the others' process group: NCCL with
    the GPU of its LOCAL_RANK, gloo on the CPU. A plain run is left as it is."""
    device = pick_device(requested)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def agreed_max(value: float) -> float:
    """The largest `value` over the processes, so that decisions read off each one's clock (the time budget, the
    schedule's progress) are the same everywhere: a process that stopped alone would leave the others waiting."""
    if world_size() == 1:
        return value
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    box = torch.tensor([float(value)], dtype=torch.float64, device=on)
    dist.all_reduce(box, op=dist.ReduceOp.MAX)
    return float(box.item())


def past(deadline: float) -> bool:
    return deadline != math.inf and bool(agreed_max(time.time() > deadline))


def from_rank_zero(make: Callable):
    """`make()`, computed by rank 0 alone and handed to every process (a validation score, a learned tokenizer)."""
    if world_size() == 1:
        return make()
    box = [make() if rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def distributed(module: torch.nn.Module, device: torch.device, seed: int, held_fixed: bool = False) -> torch.nn.Module:
    """`module` in DistributedDataParallel when there are several processes, else itself. Every process then starts
    from rank 0's weights and draws its own dropout masks. Layers `held_fixed` for part of a run (gradual
    unfreezing) take no gradient then: find_unused_parameters lets DDP finish its steps without them."""
    if world_size() == 1:
        return module
    torch.manual_seed(seed + 1000 * rank())
    return DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None,
                                   find_unused_parameters=held_fixed)


def say(message: str) -> None:
    if rank() == 0:
        tqdm.write(message)


def learned_tokenizer(splits: dict[str, list[Review]], vocab_size: int) -> Tokenizer:
    """A tokenizer learned from the training texts, by rank 0 for every process (SentencePiece's threads need not
    learn the same pieces twice)."""
    return Tokenizer(from_rank_zero(lambda: Tokenizer.train([r.text for r in splits["train"]], vocab_size).model_proto))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def bf16_supported(device: torch.device) -> bool:
    """Whether an LSTM runs under bf16 autocast here. GPUs with bf16 do; on the CPU it takes oneDNN's bf16 LSTM,
    which needs AVX-512 (BF16) or AMX: an AVX2-only CPU refuses it ("could not create a primitive descriptor")."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return False
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out, _ = torch.nn.LSTM(8, 8).to(device)(torch.randn(2, 1, 8, device=device))
        out.float().sum().backward()
        return True
    except RuntimeError:
        return False


def pick_precision(requested: str, device: torch.device) -> str:
    if requested == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if requested == "bf16" and not bf16_supported(device):
        raise SystemExit(f"bf16 autocast is not supported on this {device.type} (try --precision fp32)")
    return requested


def autocast(device: torch.device, precision: str = "fp32"):
    # bf16 autocast roughly doubles LSTM throughput where the hardware has bf16 units; the loss curve matches fp32.
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


class WarmupCosine:
    """Linear warm-up, then cosine decay to 5% of the peak. Progress is the larger of the steps done and the time
    spent (when a --max-minutes budget is set), so a run cut short by its budget still ends with a low rate."""

    def __init__(self, optimizer, total_steps: int, max_minutes: float, warmup: float = 0.05):
        self.optimizer, self.total_steps, self.warmup = optimizer, max(total_steps, 1), warmup
        self.peaks = [group["lr"] for group in optimizer.param_groups]
        self.budget = max_minutes * 60 or math.inf
        self.started, self.steps = time.time(), 0
        self.step(count=False)

    def step(self, count: bool = True) -> None:
        self.steps += count
        elapsed = (time.time() - self.started) / self.budget
        if self.budget != math.inf:  # every process decays the rate alike
            elapsed = agreed_max(elapsed)
        self.progress = progress = min(1.0, max(self.steps / self.total_steps, elapsed))
        if progress < self.warmup:
            factor = (progress + 1 / self.total_steps) / self.warmup
        else:
            factor = 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (progress - self.warmup) / (1 - self.warmup)))
        for group, peak in zip(self.optimizer.param_groups, self.peaks):
            group["lr"] = peak * min(factor, 1.0)


def clip_and_step(optimizer, model, clip: float) -> float:
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(norm)


# ----------------------------------------------------------------------------------------------- language model


def token_stream(reviews: list[Review], tokenizer: Tokenizer, backward: bool = False) -> torch.Tensor:
    """All texts as one long sequence, each one opened by <s> and closed by </s> (backward: each text's tokens
    reversed, so the model reads it as a BiLSTM's backward direction does)."""
    ids: list[int] = []
    for review in reviews:
        pieces = tokenizer.encode(review.text)
        ids += [tokenizer.bos_id, *(pieces[::-1] if backward else pieces), tokenizer.eos_id]
    return torch.tensor(ids, dtype=torch.long)


def batchify(stream: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(batch, length) rows of one stream, read left to right in BPTT windows (pytorch/examples' layout)."""
    length = stream.numel() // batch_size
    return stream[: length * batch_size].view(batch_size, length)


def imdb(reviews: list[Review]) -> list[Review]:
    return [r for r in reviews if r.source == "imdb"]


def detach(state):
    return tuple(s.detach() for s in state)


def lm_loss(model: NextWordLSTM, rows: torch.Tensor, bptt: int, device, precision: str = "fp32") -> float:
    """Mean per-token cross-entropy (nats) over the rows, state carried from window to window."""
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.no_grad(), autocast(device, precision):
        for start in range(0, rows.shape[1] - 1, bptt):
            x = rows[:, start : start + bptt].to(device)
            y = rows[:, start + 1 : start + 1 + bptt].to(device)
            x = x[:, : y.shape[1]]
            logits, state = model(x, state)
            total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").item()
            count += y.numel()
    return total / count


def my_rows(config: NextWordConfig, texts: list[Review], tokenizer: Tokenizer) -> torch.Tensor:
    """The training stream's (batch, length) rows this process reads: all of them, or under torchrun an equal share,
    so that the mean of the processes' mean losses is the whole batch's."""
    texts = random.Random(config.seed).sample(texts, len(texts))
    rows = batchify(token_stream(texts, tokenizer, config.backward), config.batch_size)
    if world_size() == 1:
        return rows
    if config.batch_size % world_size():
        raise SystemExit(f"--batch-size {config.batch_size} does not share out over {world_size()} processes")
    return rows[rank() :: world_size()]


def train_nextword(config: NextWordConfig, splits, device, on_best) -> tuple[torch.nn.Module, Tokenizer, list, dict]:
    # The tokenizer sees every training text (the classifier shares it). The language model reads the IMDB reviews
    # (whose prose it is scored on) and the short Rotten Tomatoes sentences, in one shuffled order, so that the
    # classifier it starts has read both kinds of text.
    if config.resume:
        model, tokenizer = resume(NextWordLSTM, config, dropout=config.dropout, weight_drop=config.weight_drop,
                                  embedding_dropout=config.embedding_dropout)
    else:
        tokenizer = learned_tokenizer(splits, config.vocab_size)
        model = NextWordLSTM(
            vocab_size=tokenizer.vocab_size,
            embed_dim=config.hidden_size,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout,
            embedding_dropout=config.embedding_dropout,
            weight_drop=config.weight_drop,
            weight_storage=config.weight_storage,
        )
    model.to(device)
    net = distributed(model, device, config.seed)
    train_rows = my_rows(config, splits["train"], tokenizer)
    valid_rows = batchify(token_stream(imdb(splits["valid"]), tokenizer, config.backward), 16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    windows = (train_rows.shape[1] - 1) // config.bptt
    steps = min(windows, config.steps_per_epoch or windows)
    schedule = WarmupCosine(optimizer, config.epochs * steps, config.max_minutes, config.warmup)
    bptt = config.bptt

    def train_epoch(epoch: int, deadline: float) -> tuple[float, int]:
        model.train()
        state, tokens, started = None, 0, time.time()
        bar = tqdm(range(steps), desc=f"epoch {epoch}", dynamic_ncols=True, disable=rank() != 0)
        offset = random.randrange(bptt)  # a new window phase each epoch
        for step in bar:
            start = (offset + step * bptt) % (train_rows.shape[1] - bptt - 1)
            if step == 0 or start < bptt:
                state = None
            x = train_rows[:, start : start + bptt].to(device)
            y = train_rows[:, start + 1 : start + 1 + bptt].to(device)
            with autocast(device, config.precision):
                logits, state = net(x, state)
                loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
            loss.backward()
            state = detach(state)
            clip_and_step(optimizer, model, config.clip)
            schedule.step()
            tokens += y.numel() * world_size()
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tokens / (time.time() - started):.0f}")
            if past(deadline):
                break
        speed = round(tokens / (time.time() - started))
        return from_rank_zero(lambda: lm_loss(model, valid_rows, bptt, device, config.precision)), speed

    best, history = run_epochs(config, model, train_epoch, True, lambda m, h: on_best(m, tokenizer, h))
    return best, tokenizer, history, {"train_tokens_per_epoch": int(train_rows.numel()) * world_size(), **previous_runs(config)}


# ------------------------------------------------------------------------------------------------- classifier


def length_batches(items: list, batch_size: int, key, shuffle: bool) -> list[list]:
    """Batches of similar length (less padding), in random order when training. Items are shuffled before the
    (stable) sort, so texts of equal length - every review cut to max_tokens - do not keep the data's label order."""
    items = random.sample(items, len(items)) if shuffle else items
    order = sorted(items, key=key)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        random.shuffle(batches)
    return batches


def same_length(sequences: list[list[int]], multiple: int = 8) -> list[list[int]]:
    """A batch of similar-length texts cut to one length, each keeping its head and tail, so that it needs no
    padding: unpadded batches take the CPU's fast fused LSTM kernel, packed ones do not. Lengths of 64 tokens and
    more are rounded down to a multiple of `multiple` (a few fixed shapes for oneDNN to plan). A batch that would
    lose more than an eighth of one of its texts is left as it is (and padded)."""
    shortest = min(len(s) for s in sequences)
    length = shortest - shortest % multiple if shortest >= 64 else shortest
    if any(len(s) - length > len(s) // 8 for s in sequences):
        return sequences
    return [head_and_tail(s, length) for s in sequences]


def drop_words(ids: list[int], rate: float) -> list[int]:
    """`ids` without a random share `rate` of its tokens (word dropout, as in Iyyer et al. 2015, "Deep Unordered
    Composition Rivals Syntactic Methods for Text Classification"); at least one token stays."""
    if rate <= 0:
        return ids
    kept = [i for i in ids if random.random() >= rate]
    return kept or [random.choice(ids)]


def transfer_from_language_model(
    classifier: SentimentClassifier, lm: NextWordLSTM, backward_lm: NextWordLSTM | None = None
) -> list[torch.nn.Parameter]:
    """Copies the LM's embedding and LSTM layers into the classifier's forward direction, and the backward LM's
    layers (the forward LM's without one) into its backward direction; returns the copied parameters.

    Above the first layer a BiLSTM direction reads both directions' outputs below it (forward first), where an LM
    layer reads only its own: the copied input weights take the columns of their own direction and the other
    direction's columns start at zero, so before fine-tuning the classifier's two directions compute exactly the two
    language models, layer by layer."""
    copied = [classifier.embedding.weight]
    classifier.embedding.weight.data.copy_(lm.embedding.weight.data)
    hidden = classifier.rnn.hidden_size
    for layer in range(min(classifier.rnn.num_layers, lm.rnn.num_layers)):
        for direction, source in enumerate((lm, backward_lm or lm)):
            suffix = "_reverse" if direction else ""
            for name, lm_param in source.rnn.named_parameters():
                if not name.endswith(f"_l{layer}"):
                    continue
                param = getattr(classifier.rnn, name + suffix, None)
                if param is None:
                    continue
                value = lm_param.data
                if layer > 0 and name.startswith("weight_ih") and param.shape == (len(value), 2 * hidden):
                    value = torch.zeros_like(param.data)
                    value[:, direction * hidden : (direction + 1) * hidden] = lm_param.data
                if param.shape == value.shape:
                    param.data.copy_(value)
                    copied.append(param)
    return copied


def adversarial_step(gradient: torch.Tensor, size: float) -> torch.Tensor:
    """For each text (dim 0), the move of its embeddings of norm `size` along the loss's gradient: to first order the
    small change of the input that raises the loss the most."""
    norms = gradient.flatten(1).norm(dim=1).clamp(min=1e-12)
    return size * gradient / norms.view(-1, *[1] * (gradient.dim() - 1))


def review_sentence_targets(teacher, tokenizer, device, rows: list[Review], odds: float) -> dict[Review, float]:
    """P(positive) for each sentence taken from inside a review, from two witnesses taken as independent (Bayes'
    rule): the teacher's odds that it is positive, times `odds` towards its review's verdict. A review's label alone
    is a poor label for its sentences (a good film's review still says the plot is thin), the teacher alone only
    repeats what it knows; together the review settles what the teacher is unsure of."""
    teacher.eval()
    pipeline = SentimentPipeline(teacher, tokenizer, device, source="teacher")
    predictions = pipeline.predict([r.text for r in rows], batch_size=128)
    targets = {}
    for row, prediction in zip(rows, predictions):
        p = min(max(prediction["probabilities"][LABELS[1]], 1e-6), 1 - 1e-6)
        logit = math.log(p / (1 - p)) + (1 if row.label else -1) * math.log(odds)
        targets[row] = 1 / (1 + math.exp(-logit))
    return targets


def classifier_from_language_models(config: SentimentConfig, splits) -> tuple[SentimentClassifier, Tokenizer, list]:
    """A new classifier, started from the language models when --init-from names one (returns the copied
    parameters), else from scratch with a tokenizer of its own."""
    lm = load_model(NextWordLSTM, Path(config.init_from)) if config.init_from else None
    backward_lm = load_model(NextWordLSTM, Path(config.backward_from)) if config.backward_from else None
    tokenizer = Tokenizer.load(config.init_from) if config.init_from else learned_tokenizer(splits, config.vocab_size)
    model = SentimentClassifier(
        vocab_size=tokenizer.vocab_size,
        embed_dim=lm.embedding.embedding_dim if lm else config.hidden_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        dropout=config.dropout,
        pooling=config.pooling,
        labels=list(LABELS),
        pad_id=tokenizer.pad_id,
        max_tokens=config.max_tokens,
        weight_storage=config.weight_storage,
    )
    pretrained = transfer_from_language_model(model, lm, backward_lm) if lm else []
    return model, tokenizer, pretrained


def train_sentiment(config: SentimentConfig, splits, device, on_best) -> tuple[torch.nn.Module, Tokenizer, list, dict]:
    model, tokenizer, pretrained = sentiment_model(config, splits)
    model.to(device)
    net = Classify(model)
    inner = [r for r in splits["train"] if r.source == "imdb review sentence"]
    if inner and not config.resume:
        raise SystemExit("--review-sentences are labelled by the classifier being trained further: --resume one")
    # Every other row's target is its label (probability 0 or 1 of the positive class).
    soft_targets = review_sentence_targets(model, tokenizer, device, inner, config.review_odds) if inner else {}
    net = distributed(net, device, config.seed, held_fixed=bool(pretrained) and config.unfreeze_after > 0)
    optimizer = discriminative_adamw(model, pretrained, config)
    examples, casual_rows = sentiment_examples(config, splits["train"], tokenizer)
    steps = math.ceil(len(examples) / config.batch_size)
    steps = min(steps, config.steps_per_epoch or steps)
    schedule = WarmupCosine(optimizer, config.epochs * steps, config.max_minutes, config.warmup)
    average = AveragedModel(model) if config.average_from < 1 else None
    adversarial_size = config.adversarial * float(model.embedding.weight.detach().norm(dim=1).mean())
    template_accuracy = []  # held-out negation templates at each validation, reported beside the history

    def validate(candidate, name: str) -> float:
        return from_rank_zero(lambda: validation_score(candidate, tokenizer, device, splits["valid"], name,
                                                       template_accuracy))

    def train_epoch(epoch: int, deadline: float) -> tuple[float, int]:
        model.train()
        # Words are dropped before the texts are grouped by length, so that a batch still needs no padding.
        read = [(drop_words(ids, config.word_dropout), review) for ids, review in examples]
        batches = length_batches(read, config.batch_size, key=lambda e: len(e[0]), shuffle=True)
        # Under torchrun every process takes a share of each batch: a batch too small to share is left out.
        batches = [b for b in batches if len(b) >= world_size()]
        bar = tqdm(batches[:steps], desc=f"epoch {epoch}", dynamic_ncols=True, disable=rank() != 0)
        tokens, started = 0, time.time()
        for batch in bar:
            # Gradual unfreezing: the copied layers stay fixed while the new ones settle.
            for param in pretrained:
                param.requires_grad_(schedule.progress >= config.unfreeze_after)
            targets = [soft_targets.get(e[1], float(e[1].label)) for e in batch]
            loss, read_tokens = sentiment_step(net, [e[0] for e in batch], targets, config, device, adversarial_size,
                                               tokenizer.pad_id)
            clip_and_step(optimizer, model, config.clip)
            schedule.step()
            if average is not None and schedule.progress >= config.average_from:
                average.update_parameters(model)
            tokens += read_tokens
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens / (time.time() - started):.0f}")
            if past(deadline):
                break
        speed = round(tokens / (time.time() - started))
        return validate(model, f"epoch {epoch}"), speed

    best, history = run_epochs(config, model, train_epoch, False, lambda m, h: on_best(m, tokenizer, h))
    extra = sentiment_record(config, splits, casual_rows, template_accuracy, soft_targets)
    if average is not None and average.n_averaged > 0:
        extra["weight_average"] = keep_average_if_better(average, best, history, validate, config.average_from)
    return best, tokenizer, history, extra


def discriminative_adamw(model, pretrained: list, config: SentimentConfig) -> torch.optim.AdamW:
    """AdamW with the smaller learning rate (--pretrained-lr-scale) for the layers copied from a language model."""
    pretrained_ids = {id(p) for p in pretrained}
    new = [p for p in model.parameters() if id(p) not in pretrained_ids]
    return torch.optim.AdamW(
        [{"params": new, "lr": config.lr}, {"params": pretrained, "lr": config.lr * config.pretrained_lr_scale}],
        weight_decay=0.01,
    )


def keep_average_if_better(average: AveragedModel, best, history: list, validate, start: float) -> dict:
    """Loads the weight average into `best` when it validates at least as well as the best epoch; returns the
    record of what it scored."""
    value = round(validate(average.module, f"average of {average.n_averaged} steps"), 4)
    kept = value >= max(e.metric for e in history)
    if kept:
        best.load_state_dict(average.module.state_dict())
    return {"from": start, "steps": int(average.n_averaged), "valid_accuracy": value, "kept": kept}


def sentiment_model(config: SentimentConfig, splits) -> tuple[SentimentClassifier, Tokenizer, list]:
    """The classifier to train, its tokenizer and the parameters that take the smaller learning rate: a resumed
    checkpoint, or a new classifier started from the language models."""
    if not config.resume:
        return classifier_from_language_models(config, splits)
    if config.init_from or config.backward_from:
        raise SystemExit("--resume goes on from a trained classifier: --init-from and --backward-from do not apply")
    model, tokenizer = resume(SentimentClassifier, config, dropout=config.dropout)
    # Everything below the linear head keeps the smaller rate (--pretrained-lr-scale): in a classifier started
    # from language models, those are the layers that were copied.
    pretrained = [p for name, p in model.named_parameters() if not name.startswith("classifier.")]
    return model, tokenizer, pretrained


def sentiment_examples(config: SentimentConfig, rows: list[Review], tokenizer: Tokenizer) -> tuple[list, list]:
    """(token ids, row) for every training text, plus the repeats and casual copies; and the casual copies' rows."""
    # Training reads shorter windows than the model will (--train-tokens): most of a review's verdict sits in its
    # head and tail, and a step costs time in proportion to its length.
    examples = [(head_and_tail(tokenizer.encode(r.text), config.train_tokens), r) for r in rows]
    examples += [e for e in examples if e[1].source == "rotten_tomatoes"] * (config.short_repeats - 1)
    # The same rows typed casually, so "not good at all" without capitals or punctuation reads the same.
    casual_rows = random.sample(examples, int(len(examples) * config.casual_fraction))
    examples += [(head_and_tail(tokenizer.encode(casual(r.text) or r.text), config.train_tokens), r)
                 for _, r in casual_rows]
    return examples, casual_rows


class Classify(torch.nn.Module):
    """The classifier from token ids to float logits, its embeddings optionally moved (adversarial training) or kept
    for their gradient: both reads of a batch go through this one forward, which DistributedDataParallel sees."""

    def __init__(self, model: SentimentClassifier):
        super().__init__()
        self.model = model

    def forward(self, ids, lengths, move=None, keep_gradient: bool = False):
        embedded = self.model.embedding(ids)
        if move is not None:
            embedded = embedded + move
        if keep_gradient:  # keep the loss's gradient at the embeddings, even while they are held fixed
            embedded.requires_grad_().retain_grad()
        return self.model.classify_embeddings(embedded, lengths).float(), embedded


def sentiment_step(net: Classify, sequences: list[list[int]], positive: list[float], config: SentimentConfig,
                   device, adversarial_size: float, pad_id: int) -> tuple[float, int]:
    """The forward and backward passes of one batch (this process's share of it); returns the share's loss and the
    whole batch's tokens."""
    sequences = same_length(sequences)  # cut as one batch before it is shared out, as a single process cuts it
    mine = range(rank(), len(sequences), world_size())
    ids, lengths = pad_batch([sequences[i] for i in mine], pad_id)
    ids = ids.to(device)
    target = torch.tensor([positive[i] for i in mine], device=device)
    target = target * (1 - config.label_smoothing) + config.label_smoothing / 2
    targets = torch.stack([1 - target, target], 1)
    # A share's mean loss counts by its size, so that DDP's average of the shares' gradients is the whole batch's.
    share = len(mine) * world_size() / len(sequences)
    with autocast(device, config.precision):
        logits, embedded = net(ids, lengths, keep_gradient=bool(config.adversarial))
        loss = F.cross_entropy(logits, targets)
    (loss * share if share != 1 else loss).backward()
    if config.adversarial:
        # The same batch once more, each text's embeddings moved where its loss rises fastest; the weights
        # learn from both (the move itself is held fixed, as in Miyato et al.).
        step = adversarial_step(embedded.grad, adversarial_size)
        with autocast(device, config.precision):
            moved = F.cross_entropy(net(ids, lengths, move=step)[0], targets)
        (moved * share if share != 1 else moved).backward()
    return loss.item(), sum(len(s) for s in sequences)


def validation_score(candidate, tokenizer, device, rows: list[Review], name: str, template_accuracy: list) -> float:
    """Mean validation accuracy over the sources of the weights as the checkpoint will store them (int8 alone moved
    validation by 0.005 in a run); the held-out negation templates go to `template_accuracy` instead."""
    stored = weights.as_stored(candidate, candidate.weight_storage).eval()
    valid = accuracy_by_source(SentimentPipeline(stored, tokenizer, device, source="training"), rows)
    tqdm.write(f"{name}: valid accuracy {valid}")
    if HELD_OUT_SOURCE in valid:
        template_accuracy.append(valid.pop(HELD_OUT_SOURCE))
    return mean_over_sources(valid)


def sentiment_record(config: SentimentConfig, splits, casual_rows, template_accuracy, soft_targets) -> dict:
    """What training.json adds for a classifier: where it started, the treebank's counts, the soft labels."""
    extra = {"transferred_from": str(config.init_from), "backward_from": str(config.backward_from),
             "casual_copies": len(casual_rows), **previous_runs(config)}
    if "treebank" in splits:
        extra["treebank"] = {**splits["treebank"], "held_out_template_accuracy": template_accuracy}
    if soft_targets:
        agree = sum((t > 0.5) == bool(r.label) for r, t in soft_targets.items()) / len(soft_targets)
        extra["review_sentences"] = {"count": sum(r.source == "imdb review sentence" for r in splits["train"]),
                                     "share_labelled_as_their_review": round(agree, 4)}
    backward_record = training_record(config.backward_from)
    if backward_record:  # the backward LM is not shipped: keep its recipe here
        extra["backward_lm"] = backward_record
    return extra


# ----------------------------------------------------------------------------------------------------- common


def resume(model_class, config: TrainConfig, **regularisation):
    """A checkpoint's model (its architecture, this run's regularisation and weight storage) and its tokenizer, to
    train further. The weights load as stored (float16 or int8)."""
    folder = Path(config.resume)
    model = load_model(model_class, folder, **regularisation, weight_storage=config.weight_storage)
    return model, Tokenizer.load(folder)


def with_resumed_architecture(config: TrainConfig) -> TrainConfig:
    """The config with the resumed checkpoint's shape (hidden size, layers, vocabulary, max tokens, pooling), which a
    --resume keeps whatever the flags say, so that training.json records the model that was trained. A checkpoint
    of another kind is refused here, before any data is prepared."""
    saved = json.loads((Path(config.resume) / "config.json").read_text())
    if saved.get("kind", config.kind) != config.kind:
        raise SystemExit(f"--resume {config.resume} is not a {config.kind} checkpoint")
    names = ("hidden_size", "num_layers", "vocab_size", "max_tokens", "pooling")
    shape = {name: saved[name] for name in names if name in saved and hasattr(config, name)}
    return dataclasses.replace(config, **shape)


def training_record(folder: Path | None) -> dict | None:
    """A checkpoint folder's training.json, so that the runs a model came from stay on record (None without one)."""
    path = Path(folder or "") / TRAINING_FILE
    return json.loads(path.read_text()) if folder and path.is_file() else None


def previous_runs(config: TrainConfig) -> dict:
    """The resumed checkpoint's own record, so that the whole chain of runs stays in training.json."""
    record = training_record(config.resume)
    return {"resumed_from": record} if record else {}


def run_epochs(config: TrainConfig, model, train_epoch, lower_is_better: bool, on_best) -> tuple[torch.nn.Module, list]:
    """Trains epoch after epoch within the time budget; returns the model of the best validation epoch and the
    history. `on_best(model, history)` runs at each new best, so a run killed mid-way leaves its best epoch on disk."""
    started = time.time()
    deadline = started + config.max_minutes * 60 if config.max_minutes else math.inf
    best_state, best_value, history = None, None, []
    for epoch in range(1, config.epochs + 1):
        value, speed = train_epoch(epoch, deadline)
        history.append(Epoch(epoch, round(value, 4), speed, round((time.time() - started) / 60, 1)))
        say(f"epoch {epoch}: validation {value:.4f}, {speed} tokens/s")
        if best_value is None or (value < best_value if lower_is_better else value > best_value):
            best_value, best_state = value, copy.deepcopy(model.state_dict())
            on_best(model, history)
        if past(deadline):
            say(f"stopping: the {config.max_minutes}-minute budget is spent")
            break
    model.load_state_dict(best_state)
    return model, history


def save(model, tokenizer: Tokenizer, out: Path, recipe: dict) -> None:
    """config.json (with the model's kind) + model.safetensors (float16 or int8: seqdemo.core.weights) + tokenizer.model
    + training.json + card."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    config_path = out / "config.json"
    config_path.write_text(json.dumps({"kind": recipe["kind"], **json.loads(config_path.read_text())}, indent=2))
    tokenizer.save(out)
    (out / TRAINING_FILE).write_text(json.dumps(recipe, indent=2) + "\n")
    write_model_card(out)


def train(config: TrainConfig, splits: dict[str, list[Review]], checkpoint: Callable | None = None) -> TrainResult:
    """Trains config.kind on `splits`. `checkpoint(model, tokenizer, recipe)` runs at each new best epoch (on rank 0
    alone under torchrun, where every process returns the same model)."""
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = join_processes(config.device)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for what autocast leaves in float32
    precision = pick_precision(config.precision, device)
    config = dataclasses.replace(config, precision=precision)
    if config.resume:
        config = with_resumed_architecture(config)
    splits = config.select(splits)
    started = time.time()
    def recipe(model, history: list[Epoch], extra: dict) -> dict:
        metric = "valid_loss" if config.kind == "nextword" else "valid_accuracy"
        return {
            "kind": config.kind,
            "command": config.command(),
            "settings": json.loads(json.dumps(dataclasses.asdict(config), default=str)),
            "history": [{"epoch": e.epoch, metric: e.metric, "tokens_per_second": e.tokens_per_second,
                         "minutes": e.minutes} for e in history],
            "parameters": sum(p.numel() for p in model.parameters()),
            "training_minutes": round((time.time() - started) / 60, 1),
            "precision": precision,
            "hardware": device_name(device) if device.type == "cuda"
            else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)",
            "train_rows": len(splits["train"]),
            **({"processes": world_size()} if world_size() > 1 else {}),
            **extra,
        }

    def on_best(model, tokenizer, history: list[Epoch]) -> None:
        if checkpoint is not None and rank() == 0:
            checkpoint(model, tokenizer, recipe(model, history, {}))

    trainer = train_nextword if config.kind == "nextword" else train_sentiment
    model, tokenizer, history, extra = trainer(config, splits, device, on_best)
    return TrainResult(model, tokenizer, recipe(model, history, extra))


def parse_args(argv=None) -> TrainConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND", help="nextword or sentiment")
    for kind, config_class in CONFIGS.items():
        sub = kinds.add_parser(kind, help=config_class.__doc__,
                               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        for f in dataclasses.fields(config_class):
            default = f.default
            if isinstance(default, bool):
                sub.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=default,
                                 action=argparse.BooleanOptionalAction, help=f.metadata["help"])
                continue
            kind_of_value = type(default) if default is not None else (Path if "Path" in str(f.type) else str)
            sub.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind_of_value, default=default,
                             choices=CHOICES.get(f.name), help=f.metadata["help"])
    args = vars(parser.parse_args(argv))
    return CONFIGS[args.pop("kind")](**args)


def main(argv=None) -> None:
    config = parse_args(argv)
    result = train(config, load_splits(), checkpoint=lambda m, t, r: save(m, t, config.out, r))
    if rank() == 0:
        save(result.model, result.tokenizer, config.out, result.recipe)
        print(f"wrote {config.out} after {result.recipe['training_minutes']} minutes")
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
