"""Shared fixtures: small, untrained checkpoints built on the fly, so tests never depend on the shipped weights
(the tests that are about the shipped weights say so in their names)."""

from __future__ import annotations

import os
import socket

import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# The test models are tiny: one thread avoids the OpenMP hand-offs that cost more than the arithmetic.
torch.set_num_threads(1)

from seqdemo.core.models import NextWordLSTM, SentimentClassifier  # noqa: E402
from seqdemo.core.tokenizer import Tokenizer  # noqa: E402

TINY_CORPUS = [
    "The movie was great and I loved it.",
    "Terrible acting, dull plot, a waste of time.",
    "Not good at all! The worst film of the year.",
    "The plot was thin but the acting saved it.",
    "A wonderful, moving story with brilliant performances.",
    "I would not recommend this boring mess to anyone.",
]


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Tokenizer:
    return Tokenizer.train(TINY_CORPUS * 50, vocab_size=400)


@pytest.fixture(scope="session")
def tiny_sentiment(tiny_tokenizer) -> SentimentClassifier:
    torch.manual_seed(0)
    return SentimentClassifier(vocab_size=tiny_tokenizer.vocab_size, embed_dim=16, hidden_size=12).eval()


@pytest.fixture(scope="session")
def tiny_nextword(tiny_tokenizer) -> NextWordLSTM:
    torch.manual_seed(0)
    return NextWordLSTM(vocab_size=tiny_tokenizer.vocab_size, embed_dim=16, hidden_size=16, dropout=0.1).eval()


def save_checkpoint(model, tokenizer: Tokenizer, folder) -> None:
    """A checkpoint folder as training writes it: config.json, model.safetensors, tokenizer.model."""
    model.save_pretrained(folder)
    tokenizer.save(folder)


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory, tiny_tokenizer, tiny_sentiment, tiny_nextword):
    """{'sentiment': folder, 'nextword': folder} with the tiny models saved as real checkpoints."""
    root = tmp_path_factory.mktemp("checkpoints")
    for kind, model in (("sentiment", tiny_sentiment), ("nextword", tiny_nextword)):
        save_checkpoint(model, tiny_tokenizer, root / kind)
    return {"sentiment": root / "sentiment", "nextword": root / "nextword"}


def tiny_pipelines(tokenizer: Tokenizer, sentiment: SentimentClassifier, nextword: NextWordLSTM) -> tuple:
    """The page's two pipelines around the tiny models, on the CPU."""
    from seqdemo.inference.generation import NextWordPipeline
    from seqdemo.inference.sentiment import SentimentPipeline

    cpu = torch.device("cpu")
    return (SentimentPipeline(sentiment, tokenizer, device=cpu, source="tiny untrained test model"),
            NextWordPipeline(nextword, tokenizer, device=cpu, source="tiny untrained test model"))


@pytest.fixture(scope="module")
def pipelines(tiny_tokenizer, tiny_sentiment, tiny_nextword):
    """tiny_pipelines, a pair per test module (a module may patch them)."""
    return tiny_pipelines(tiny_tokenizer, tiny_sentiment, tiny_nextword)


def serve_locally(demo, **launch_options) -> str:
    """Serves `demo` in-process on a free loopback port and returns its URL (the caller closes the demo)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_options)
    return f"http://127.0.0.1:{port}/"
