"""Training throughput of the shipped recipes next to plain fp32 training of the same models, side by side.

For each model, the recipe's training step and a plain one are timed alternately, repeat by repeat, on the same
batches, so that a load change on the machine hits both; the medians are compared (target: recipe >= 1.5x plain
on an idle 2-core CPU).

- next-word LSTM: the recipe is bf16 autocast where the hardware runs an LSTM in it (fp32 elsewhere, see
  seqdemo.experiments.train.bf16_supported) with AWD-LSTM's weight drop; plain is fp32 without it.
- sentiment BiLSTM: the recipe cuts each batch of similar-length texts to one length (seqdemo.experiments.train.same_length:
  no padding, the fused kernel) under the same autocast choice; plain pads the batch and packs it, in fp32.

    python bench/bench_train.py                       # both models, shipped shapes, real review batches
    python bench/bench_train.py --repeats 7 --threads 2
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

# seqdemo is not an installed package: put the repository on the path, so the script runs from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from seqdemo.core.models import NextWordLSTM, SentimentClassifier  # noqa: E402
from seqdemo.core.text import head_and_tail, pad_batch  # noqa: E402
from seqdemo.core.tokenizer import Tokenizer  # noqa: E402
from seqdemo.experiments import train  # noqa: E402
from seqdemo.experiments.data import Review, load_splits  # noqa: E402

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps of each, alternating (default 5)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--texts", type=int, default=2000, help="training texts to draw batches from (default 2000)")
    return parser.parse_args()


def trainer(model, loss_of):
    """A training step on one batch (forward, backward, AdamW) that returns its seconds."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(batch) -> float:
        start = time.perf_counter()
        loss_of(batch).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    return step


def compare(name: str, recipe, plain, batches: list, tokens_of, repeats: int) -> None:
    """Times the two steps alternately on the same batches (the first round is a warm-up) and prints tokens/s."""
    seconds = {"recipe": 0.0, "plain": 0.0}
    tokens = 0
    for repeat in range(repeats + 1):
        batch = batches[repeat % len(batches)]
        timings = recipe(batch), plain(batch)
        if repeat:
            seconds["recipe"] += timings[0]
            seconds["plain"] += timings[1]
            tokens += tokens_of(batch)
    speed = {k: tokens / v for k, v in seconds.items()}
    print(f"{name:<44} recipe {speed['recipe']:>7,.0f} tok/s   plain fp32 {speed['plain']:>7,.0f} tok/s   "
          f"ratio {speed['recipe'] / speed['plain']:.2f}x", flush=True)


def nextword(config: train.NextWordConfig, precision: str, texts: list[Review], tokenizer, repeats: int) -> None:
    rows = train.batchify(train.token_stream(texts, tokenizer), config.batch_size)
    windows = [(rows[:, s : s + config.bptt], rows[:, s + 1 : s + 1 + config.bptt])
               for s in range(0, rows.shape[1] - config.bptt - 1, config.bptt)]

    def step(weight_drop: float, autocast_precision: str):
        torch.manual_seed(0)
        model = NextWordLSTM(tokenizer.vocab_size, config.hidden_size, config.hidden_size, config.num_layers,
                             dropout=config.dropout, embedding_dropout=config.embedding_dropout,
                             weight_drop=weight_drop).train()

        def loss_of(window):
            x, y = window
            with train.autocast(torch.device("cpu"), autocast_precision):
                logits, _ = model(x)
                return F.cross_entropy(logits.float().flatten(0, 1), y.flatten())

        return trainer(model, loss_of)

    compare(f"next-word LSTM {config.num_layers}x{config.hidden_size} ({precision})",
            step(config.weight_drop, precision), step(0.0, "fp32"), windows, lambda w: w[1].numel(), repeats)


def sentiment(config: train.SentimentConfig, precision: str, texts: list[Review], tokenizer, repeats: int) -> None:
    examples = [(head_and_tail(tokenizer.encode(r.text), config.train_tokens), r) for r in texts]
    batches = train.length_batches(examples, config.batch_size, key=lambda e: len(e[0]), shuffle=True)

    def step(cut: bool, autocast_precision: str):
        torch.manual_seed(0)
        model = SentimentClassifier(tokenizer.vocab_size, 512, config.hidden_size, dropout=config.dropout).train()

        def loss_of(batch):
            sequences = [ids for ids, _ in batch]
            ids, lengths = pad_batch(train.same_length(sequences) if cut else sequences, tokenizer.pad_id)
            labels = torch.tensor([review.label for _, review in batch])
            with train.autocast(torch.device("cpu"), autocast_precision):
                return F.cross_entropy(model(ids, lengths).float(), labels)

        return trainer(model, loss_of)

    compare(f"sentiment BiLSTM 1x{config.hidden_size} ({precision}, cut batches)", step(True, precision),
            step(False, "fp32"), batches, lambda b: sum(len(ids) for ids, _ in b), repeats)


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    precision = train.pick_precision("auto", torch.device("cpu"))
    print(f"CPU, {torch.get_num_threads()} threads; bf16 LSTM supported: {precision == 'bf16'}")
    tokenizer = Tokenizer.load(CHECKPOINTS / "nextword")
    random.seed(0)
    texts = random.sample(load_splits()["train"], args.texts)
    nextword(train.NextWordConfig(), precision, texts, tokenizer, args.repeats)
    sentiment(train.SentimentConfig(), precision, texts, tokenizer, args.repeats * 4)


if __name__ == "__main__":
    main()
