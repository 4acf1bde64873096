"""Trains the two shipped models on the training split of `seqdemo.data`.

    python -m seqdemo.train nextword  --out checkpoints/nextword
    python -m seqdemo.train sentiment --init-from checkpoints/nextword --out checkpoints/sentiment

The language model comes first: it learns the tokenizer and English about movies from the review text. The
classifier then starts from it, as in ULMFiT (Howard & Ruder 2018, "Universal Language Model Fine-tuning for Text
Classification"): the embedding and the first LSTM layer (both directions) are copied from the language model and
trained with a smaller learning rate than the new layers (discriminative learning rates).

Each run validates after every epoch, keeps the best epoch, and writes a complete checkpoint folder: config.json,
model.safetensors (float16), tokenizer.model and a README.md model card. `python -m seqdemo.evaluate FOLDER` then
measures the test metrics and writes them into the card.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from seqdemo.data import LABELS, Review, load_splits
from seqdemo.card import TRAINING_FILE, write_model_card
from seqdemo.device import describe, pick_device
from seqdemo.evaluate import accuracy_by_source
from seqdemo.models import NextWordLSTM, SentimentClassifier
from seqdemo.sentiment import SentimentPipeline
from seqdemo.text import casual, head_and_tail, pad_batch
from seqdemo.tokenizer import Tokenizer




def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def autocast(device: torch.device):
    # bf16 on the GPU roughly doubles LSTM throughput; the CPU trains in float32.
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


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


def token_stream(reviews: list[Review], tokenizer: Tokenizer) -> torch.Tensor:
    """All texts as one long sequence, each one opened by <s> and closed by </s>."""
    ids: list[int] = []
    for review in reviews:
        ids += [tokenizer.bos_id, *tokenizer.encode(review.text), tokenizer.eos_id]
    return torch.tensor(ids, dtype=torch.long)


def batchify(stream: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(batch, length) rows of one stream, read left to right in BPTT windows (pytorch/examples' layout)."""
    length = stream.numel() // batch_size
    return stream[: length * batch_size].view(batch_size, length)


def imdb(reviews: list[Review]) -> list[Review]:
    return [r for r in reviews if r.source == "imdb"]


def detach(state):
    return tuple(s.detach() for s in state)


def lm_loss(model: NextWordLSTM, rows: torch.Tensor, bptt: int, device, max_windows: int | None = None) -> float:
    """Mean per-token cross-entropy (nats) over the rows, state carried from window to window."""
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.no_grad(), autocast(device):
        for n, start in enumerate(range(0, rows.shape[1] - 1, bptt)):
            if max_windows is not None and n >= max_windows:
                break
            x = rows[:, start : start + bptt].to(device)
            y = rows[:, start + 1 : start + 1 + bptt].to(device)
            x = x[:, : y.shape[1]]
            logits, state = model(x, state)
            total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").item()
            count += y.numel()
    return total / count


def train_nextword(args, splits, device) -> tuple[torch.nn.Module, Tokenizer, dict]:
    # The tokenizer sees every training text (the classifier shares it); the language model learns from the
    # IMDB reviews alone, whose ordinary prose it is scored on (the RT sentences are lower-cased and pre-split).
    tokenizer = Tokenizer.train([r.text for r in splits["train"]], vocab_size=args.vocab_size)
    train_rows = batchify(token_stream(imdb(splits["train"]), tokenizer), args.batch_size)
    valid_rows = batchify(token_stream(imdb(splits["valid"]), tokenizer), 16)
    model = NextWordLSTM(
        vocab_size=tokenizer.vocab_size,
        embed_dim=args.hidden_size,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        dropout=args.dropout,
    ).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    windows = (train_rows.shape[1] - 1) // args.bptt
    total_steps = args.epochs * min(windows, args.steps_per_epoch or windows)
    schedule = WarmupCosine(optimizer, total_steps, args.max_minutes)

    def train_epoch(epoch: int, deadline: float) -> float:
        model.train()
        state, tokens, started = None, 0, time.time()
        steps = min(windows, args.steps_per_epoch or windows)
        bar = tqdm(range(steps), desc=f"epoch {epoch}", dynamic_ncols=True)
        offset = random.randrange(args.bptt)  # a new window phase each epoch
        for step in bar:
            start = (offset + step * args.bptt) % (train_rows.shape[1] - args.bptt - 1)
            if step == 0 or start < args.bptt:
                state = None
            x = train_rows[:, start : start + args.bptt].to(device)
            y = train_rows[:, start + 1 : start + 1 + args.bptt].to(device)
            with autocast(device):
                logits, state = model(x, state)
                loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
            loss.backward()
            state = detach(state)
            clip_and_step(optimizer, model, args.clip)
            schedule.step()
            tokens += y.numel()
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tokens / (time.time() - started):.0f}")
            if time.time() > deadline:
                break
        return lm_loss(model, valid_rows, args.bptt, device)

    return run_epochs(args, model, train_epoch, metric_name="valid_loss", lower_is_better=True), tokenizer, {
        "train_tokens_per_epoch": int(train_rows.numel()),
    }


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


def transfer_from_language_model(classifier: SentimentClassifier, lm: NextWordLSTM) -> list[torch.nn.Parameter]:
    """Copies the LM's embedding and first LSTM layer into the classifier; returns the copied parameters."""
    copied = [classifier.embedding.weight]
    classifier.embedding.weight.data.copy_(lm.embedding.weight.data)
    for name, lm_param in lm.rnn.named_parameters():
        if not name.endswith("_l0"):
            continue
        for suffix in ("", "_reverse"):  # the backward direction starts from the same features
            param = getattr(classifier.rnn, name + suffix, None)
            if param is not None and param.shape == lm_param.shape:
                param.data.copy_(lm_param.data)
                copied.append(param)
    return copied


def train_sentiment(args, splits, device) -> tuple[torch.nn.Module, Tokenizer, dict]:
    from seqdemo.hub import load_model

    lm = load_model(NextWordLSTM, Path(args.init_from)) if args.init_from else None
    tokenizer = Tokenizer.load(args.init_from) if args.init_from else Tokenizer.train(
        [r.text for r in splits["train"]], vocab_size=args.vocab_size
    )
    model = SentimentClassifier(
        vocab_size=tokenizer.vocab_size,
        embed_dim=lm.embedding.embedding_dim if lm else args.hidden_size,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        dropout=args.dropout,
        pooling=args.pooling,
        labels=list(LABELS),
        pad_id=tokenizer.pad_id,
        max_tokens=args.max_tokens,
    )
    pretrained = transfer_from_language_model(model, lm) if lm else []
    model.to(device)
    pretrained_ids = {id(p) for p in pretrained}
    new = [p for p in model.parameters() if id(p) not in pretrained_ids]
    optimizer = torch.optim.AdamW(
        [{"params": new, "lr": args.lr}, {"params": pretrained, "lr": args.lr * args.pretrained_lr_scale}],
        weight_decay=0.01,
    )
    examples = [(head_and_tail(tokenizer.encode(r.text), args.max_tokens), r) for r in splits["train"]]
    # The same rows typed casually, so "not good at all" without capitals or punctuation reads the same.
    casual_rows = random.sample(examples, int(len(examples) * args.casual_fraction))
    examples += [(head_and_tail(tokenizer.encode(casual(r.text)), args.max_tokens), r) for _, r in casual_rows]
    steps_per_epoch = math.ceil(len(examples) / args.batch_size)
    if args.steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, args.steps_per_epoch)
    schedule = WarmupCosine(optimizer, args.epochs * steps_per_epoch, args.max_minutes)

    def train_epoch(epoch: int, deadline: float) -> float:
        model.train()
        batches = length_batches(examples, args.batch_size, key=lambda e: len(e[0]), shuffle=True)
        bar = tqdm(batches[:steps_per_epoch], desc=f"epoch {epoch}", dynamic_ncols=True)
        tokens, started = 0, time.time()
        for batch in bar:
            # Gradual unfreezing: the copied layers stay fixed while the new ones settle.
            for param in pretrained:
                param.requires_grad_(schedule.progress >= args.unfreeze_after)
            ids, lengths = pad_batch([e[0] for e in batch], tokenizer.pad_id)
            labels = torch.tensor([e[1].label for e in batch], device=device)
            with autocast(device):
                loss = F.cross_entropy(model(ids.to(device), lengths).float(), labels)
            loss.backward()
            clip_and_step(optimizer, model, args.clip)
            schedule.step()
            tokens += int(lengths.sum())
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tokens / (time.time() - started):.0f}")
            if time.time() > deadline:
                break
        model.eval()
        valid = accuracy_by_source(SentimentPipeline(model, tokenizer, device, source="training"), splits["valid"])
        tqdm.write(f"epoch {epoch}: valid accuracy {valid}")
        return sum(valid.values()) / len(valid)  # the mean over sources, so the short RT sentences count

    best = run_epochs(args, model, train_epoch, metric_name="valid_accuracy", lower_is_better=False)
    return best, tokenizer, {"transferred_from": args.init_from, "casual_copies": len(casual_rows)}


# ----------------------------------------------------------------------------------------------------- common


def run_epochs(args, model, train_epoch, metric_name: str, lower_is_better: bool):
    """Trains epoch after epoch within the time budget; returns the model of the best validation epoch."""
    deadline = time.time() + args.max_minutes * 60 if args.max_minutes else math.inf
    best_state, best_value, history = None, None, []
    for epoch in range(1, args.epochs + 1):
        value = train_epoch(epoch, deadline)
        history.append({"epoch": epoch, metric_name: round(value, 4)})
        tqdm.write(f"epoch {epoch}: {metric_name} {value:.4f}")
        if best_value is None or (value < best_value if lower_is_better else value > best_value):
            best_value, best_state = value, copy.deepcopy(model.state_dict())
        if time.time() > deadline:
            tqdm.write(f"stopping: the {args.max_minutes}-minute budget is spent")
            break
    model.load_state_dict(best_state)
    args.history = history
    return model


def save(model, tokenizer: Tokenizer, out: Path, recipe: dict) -> None:
    """config.json + float16 model.safetensors + tokenizer.model + training.json + the model card."""
    out.mkdir(parents=True, exist_ok=True)
    # Half precision halves the download; weights are widened back to float32 on load.
    copy.deepcopy(model).cpu().half().save_pretrained(out)
    tokenizer.save(out)
    (out / TRAINING_FILE).write_text(json.dumps(recipe, indent=2) + "\n")
    write_model_card(out)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["nextword", "sentiment"], help="which model to train")
    parser.add_argument("--out", type=Path, help="checkpoint folder to write (default: checkpoints/KIND)")
    parser.add_argument("--init-from", help="sentiment only: language-model checkpoint to start from")
    parser.add_argument("--epochs", type=int, default=None, help="passes over the training data")
    parser.add_argument("--steps-per-epoch", type=int, default=0, help="cap the steps of an epoch (0: no cap)")
    parser.add_argument("--max-minutes", type=float, default=0, help="stop after this many minutes (0: no limit)")
    parser.add_argument("--batch-size", type=int, default=None, help="sequences per step")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (warm-up, then cosine decay)")
    parser.add_argument("--hidden-size", type=int, default=None, help="LSTM units (per direction)")
    parser.add_argument("--num-layers", type=int, default=None, help="stacked LSTM layers")
    parser.add_argument("--dropout", type=float, default=None, help="dropout between and after layers")
    parser.add_argument("--vocab-size", type=int, default=8000, help="SentencePiece vocabulary size")
    parser.add_argument("--bptt", type=int, default=128, help="nextword: tokens per backpropagation window")
    parser.add_argument("--max-tokens", type=int, default=512, help="sentiment: tokens read per text (head+tail)")
    parser.add_argument("--pooling", default="max", choices=["max", "last", "mean"], help="sentiment: pooling")
    parser.add_argument("--casual-fraction", type=float, default=0.3,
                        help="sentiment: share of training texts added again lower-cased without punctuation")
    parser.add_argument("--pretrained-lr-scale", type=float, default=0.3,
                        help="sentiment: learning-rate factor for the layers copied from the language model")
    parser.add_argument("--unfreeze-after", type=float, default=0.1,
                        help="sentiment: share of training during which the copied layers stay fixed")
    parser.add_argument("--clip", type=float, default=1.0, help="gradient-norm clipping")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads (0: torch's default); 1 is faster when other jobs share the cores")
    args = parser.parse_args(argv)
    defaults = {  # the recipe when a flag is not given
        "nextword": dict(epochs=4, batch_size=64, lr=2e-3, hidden_size=512, num_layers=3, dropout=0.25),
        "sentiment": dict(epochs=4, batch_size=32, lr=2e-3, hidden_size=256, num_layers=1, dropout=0.3),
    }[args.kind]
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.out = args.out or Path("checkpoints") / args.kind
    args.command = "python -m seqdemo.train " + " ".join(sys.argv[1:] if argv is None else argv)
    return args


def train(args: argparse.Namespace, splits: dict[str, list[Review]]) -> tuple[torch.nn.Module, Tokenizer, dict]:
    """Trains args.kind on `splits`; returns the best model, its tokenizer and the recipe for training.json."""
    seed_everything(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    started = time.time()
    trainer = train_nextword if args.kind == "nextword" else train_sentiment
    model, tokenizer, extra = trainer(args, splits, device)
    recipe = {
        "kind": args.kind,
        "command": args.command,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k not in ("history", "command")},
        "history": args.history,
        "parameters": sum(p.numel() for p in model.parameters()),
        "training_minutes": round((time.time() - started) / 60, 1),
        "hardware": describe(device) if device.type == "cuda"
        else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)",
        "train_rows": len(splits["train"]),
        **extra,
    }
    return model, tokenizer, recipe


def main(argv=None) -> None:
    args = parse_args(argv)
    model, tokenizer, recipe = train(args, load_splits())
    save(model, tokenizer, args.out, recipe)
    print(f"wrote {args.out} after {recipe['training_minutes']} minutes")


if __name__ == "__main__":
    main()
