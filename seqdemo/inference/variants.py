"""The Compare tab's saved variants at run time: the RNN, LSTM, BiLSTM, GRU and Conv1d classifiers that
`python -m seqdemo.experiments.compare` trained and measured, loaded on the language model's frozen embedding, with
each one's verdict and its per-token gradient norms (the vanishing-gradient picture)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from seqdemo.core.models import LABELS, NextWordLSTM, SentimentClassifier
from seqdemo.core.text import require_text
from seqdemo.core.tokenizer import Tokenizer
from seqdemo.inference.hub import CheckpointError, load_model
from seqdemo.inference.sentiment import SentimentPipeline

DEFAULT_OUT = Path("checkpoints/compare")
DEFAULT_EMBEDDING_FROM = Path("checkpoints/nextword")
RESULTS_FILE = "results.json"
VARIANT_KIND = "compare-variant"

# Sizes chosen so that each variant has about 100k trainable parameters on a 512-d embedding (nn.RNN has one
# gate's weights per unit, nn.GRU three, nn.LSTM four).
VARIANTS: dict[str, dict] = {
    "rnn": dict(cell="rnn", bidirectional=False, hidden_size=160),
    "lstm": dict(cell="lstm", bidirectional=False, hidden_size=48),
    "bilstm": dict(cell="lstm", bidirectional=True, hidden_size=24),
    "gru": dict(cell="gru", bidirectional=False, hidden_size=64),
    "bigru": dict(cell="gru", bidirectional=True, hidden_size=32),
    "conv_bilstm": dict(cell="lstm", bidirectional=True, hidden_size=32, conv_channels=48, conv_kernel=3,
                        conv_stride=2),
    "lstm2": dict(cell="lstm", bidirectional=False, hidden_size=40, num_layers=2, layer_dropout=0.0),
    "lstm2_dropout": dict(cell="lstm", bidirectional=False, hidden_size=40, num_layers=2, layer_dropout=0.2),
}
TITLES = {
    "rnn": "RNN (tanh)", "lstm": "LSTM", "bilstm": "BiLSTM", "gru": "GRU", "bigru": "BiGRU",
    "conv_bilstm": "Conv1d (stride 2) + BiLSTM", "lstm2": "2-layer LSTM", "lstm2_dropout": "2-layer LSTM, dropout 0.2",
}


def tensor_hash(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def load_embedding(folder: Path, pad_id: int) -> tuple[torch.nn.Embedding, str]:
    """The language model's embedding as a frozen layer, and its hash (which variants record and check)."""
    weight = load_model(NextWordLSTM, Path(folder)).embedding.weight.detach().float()
    return torch.nn.Embedding.from_pretrained(weight, freeze=True, padding_idx=pad_id), tensor_hash(weight)


def build_variant(options: dict, embedding: torch.nn.Embedding, tokenizer: Tokenizer, max_tokens: int):
    model = SentimentClassifier(
        vocab_size=embedding.num_embeddings, embed_dim=embedding.embedding_dim, pooling="last", dropout=0.0,
        labels=list(LABELS), pad_id=tokenizer.pad_id, max_tokens=max_tokens, **options,
    )
    model.embedding = embedding  # one frozen layer shared by every variant
    return model






class EmbeddingMismatch(CheckpointError):
    """A saved variant whose frozen embedding is not the one offered (the language model changed since)."""


def load_variant(folder: Path, embedding: torch.nn.Embedding, embedding_hash: str, tokenizer: Tokenizer):
    """A saved variant on the given embedding; refuses an embedding other than the one it was trained on."""
    import safetensors.torch

    config = json.loads((Path(folder) / "config.json").read_text())
    if config.get("embedding_sha256") != embedding_hash:
        raise EmbeddingMismatch(
            f"{folder} was trained on embedding {config.get('embedding_sha256')} but the language model offers "
            f"{embedding_hash}: rerun `python -m seqdemo.experiments.compare` after changing checkpoints/nextword"
        )
    model = build_variant(config["options"], embedding, tokenizer, config["max_tokens"])
    weights = safetensors.torch.load_file(Path(folder) / "model.safetensors")
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
    if unexpected or any(not k.startswith("embedding.") for k in missing):
        raise CheckpointError(f"{folder}: missing {missing}, unexpected {unexpected}")
    return model.eval()


# --------------------------------------------------------------------------------------- what the tab will call


def load_results(folder: str | Path = DEFAULT_OUT) -> dict:
    """The results.json a comparison wrote (its runs, per-variant summary and claim verdicts)."""
    return json.loads((Path(folder) / RESULTS_FILE).read_text())


def load_variants(folder: str | Path = DEFAULT_OUT, embedding_from: str | Path | None = None,
                  device: torch.device | str = "cpu") -> dict[str, SentimentPipeline]:
    """Every saved variant as a SentimentPipeline, in VARIANTS order, sharing one frozen embedding and tokenizer
    (from `embedding_from`, by default the checkpoint the comparison read)."""
    folder = Path(folder)
    results = load_results(folder)
    source = Path(embedding_from or results["embedding"]["from"])
    tokenizer = Tokenizer.load(source)
    embedding, embedding_hash = load_embedding(source, tokenizer.pad_id)
    pipelines = {}
    for name in VARIANTS:
        if (folder / name / "config.json").is_file():
            model = load_variant(folder / name, embedding, embedding_hash, tokenizer).to(device)
            pipelines[name] = SentimentPipeline(model, tokenizer, torch.device(device), source=str(folder / name))
    return pipelines


def verdicts(pipelines: dict[str, SentimentPipeline], text: str) -> dict[str, dict]:
    """Each variant's prediction on one text ({"label", "score", "probabilities", "tokens", "truncated"})."""
    require_text(text)
    return {name: pipeline.predict(text)[0] for name, pipeline in pipelines.items()}


def gradient_norms(model: SentimentClassifier, ids: list[int]) -> list[float]:
    """‖∂ logit / ∂ embedding_t‖ for each token t of one text, where logit is the decision's log-odds
    logit(last label) - logit(first label): how much each input token can still move the decision. For the
    vanishing-gradient picture, plot it (log scale) against the distance from the end, len(ids) - 1 - t."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    embedded = model.embedding(torch.tensor([ids], device=device)).detach().requires_grad_(True)
    # Gradients for the input alone (the weights' .grad stay untouched, so concurrent requests can't mix), without
    # cuDNN, whose RNNs have no backward pass in eval mode.
    with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
        logits = model.classify_embeddings(embedded, torch.tensor([len(ids)]))
        (gradient,) = torch.autograd.grad(logits[0, -1] - logits[0, 0], embedded)
    model.train(was_training)
    return gradient[0].norm(dim=-1).tolist()


def text_gradient_norms(pipeline: SentimentPipeline, text: str) -> tuple[list[str], list[float]]:
    """The tokens a variant reads of `text` (a long text's head and tail; each as Tokenizer.step_label shows it)
    and gradient_norms over them."""
    ids, _ = pipeline.encode(text)
    return [pipeline.tokenizer.step_label(i) for i in ids], gradient_norms(pipeline.model, ids)


def format_stat(stat: dict | None, scale: float = 100, unit: str = "%", digits: int = 1) -> str:
    """mean ± half the spread, e.g. "81.2% ± 0.4"; "n/a" when nothing was measured."""
    if stat is None:
        return "n/a"
    return f"{stat['mean'] * scale:.{digits}f}{unit} ± {stat['spread'] * scale / 2:.{digits}f}"
