"""How long one run of `python -m seqdemo.experiments.compare` needs: each variant's training tokens/s and test-time tokens/s
on texts of the compare recipe's lengths, with the real frozen embedding, on the CPU. Sizes the run's budget.

    nice -n 19 python bench/bench_compare.py --threads 2 --steps 6

Texts are random token ids of the recipe's lengths (a full batch of --train-tokens, no padding): speed depends on
the shapes, not the words.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from seqdemo.core.tokenizer import Tokenizer  # noqa: E402
from seqdemo.experiments.compare import (  # noqa: E402
    CompareSettings,
    trainable_parameters,
)
from seqdemo.experiments.train import clip_and_step  # noqa: E402
from seqdemo.inference.variants import (  # noqa: E402
    VARIANTS,
    build_variant,
    load_embedding,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = CompareSettings()
    tokenizer = Tokenizer.load(settings.embedding_from)
    embedding, _ = load_embedding(settings.embedding_from, tokenizer.pad_id)
    torch.manual_seed(0)
    for name in args.variants.split(","):
        model = build_variant(VARIANTS[name], embedding, tokenizer, settings.max_tokens)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        ids = torch.randint(4, embedding.num_embeddings, (settings.batch_size, settings.train_tokens))
        lengths = torch.full((settings.batch_size,), settings.train_tokens)
        labels = torch.randint(0, 2, (settings.batch_size,))
        seconds = []
        for _ in range(args.steps + 1):  # the first step warms oneDNN up
            started = time.perf_counter()
            F.cross_entropy(model(ids, lengths), labels).backward()
            clip_and_step(optimizer, model, 1.0)
            seconds.append(time.perf_counter() - started)
        train_speed = ids.numel() * args.steps / sum(seconds[1:])
        model.eval()
        test_ids = torch.randint(4, embedding.num_embeddings, (64, 300))
        with torch.no_grad():
            model(test_ids, torch.full((64,), 300))
            started = time.perf_counter()
            model(test_ids, torch.full((64,), 300))
            test_speed = test_ids.numel() / (time.perf_counter() - started)
            one = test_ids[:1]
            started = time.perf_counter()
            for _ in range(5):
                model(one, torch.tensor([300]))
            one_ms = (time.perf_counter() - started) / 5 * 1000
        print(f"{name:14s} params {trainable_parameters(model):7d}  train {train_speed:7.0f} tok/s  "
              f"test {test_speed:8.0f} tok/s  one 300-token review {one_ms:6.1f} ms", flush=True)


if __name__ == "__main__":
    main()
