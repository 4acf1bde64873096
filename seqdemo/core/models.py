"""The two LSTM models the demo shows.

- SentimentClassifier: Embedding -> (optional Conv1d) -> bidirectional LSTM -> Linear(2 * hidden -> classes),
  the classifier of the textbook chapter on LSTMs. The cell (LSTM, GRU or a plain tanh RNN), the direction count
  and the convolutional front end (with a stride that shortens the sequence) are configuration, so the chapter's
  comparisons (seqdemo.experiments.compare) need no new model code.
- NextWordLSTM: Embedding -> 3-layer LSTM -> Linear(vocab), a word-level language model in the style of
  pytorch/examples' word_language_model, with the output layer tied to the embedding (Press & Wolf 2017,
  "Using the Output Embedding to Improve Language Models"; Inan et al. 2017).

Both inherit huggingface_hub's PyTorchModelHubMixin: `save_pretrained(folder)` writes config.json and
model.safetensors, `from_pretrained(folder_or_repo)` rebuilds the model from them. The constructor's
keyword arguments are the configuration, so they must stay JSON-serialisable. The weights are stored as
`weight_storage` says (float32, float16, or int8 with a scale per row: seqdemo.core.weights) and widened to float32 on load.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqdemo.core import weights

HUB_TAGS = ["lstm", "pytorch", "seqdemo"]

LABELS = ("negative", "positive")  # the classifier's two verdicts, in the order of its outputs


class HubModel(PyTorchModelHubMixin):
    """The Hub mixin, storing weights as the model's `weight_storage` says (seqdemo.core.weights; never a pickle)."""

    def _save_pretrained(self, save_directory) -> None:
        weights.save(self, save_directory / weights.WEIGHTS, self.weight_storage)

    @classmethod
    def _load_as_safetensor(cls, model, model_file: str, map_location: str, strict: bool):
        return weights.load(model, model_file).to(map_location).eval()


class SentimentClassifier(
    nn.Module,
    HubModel,
    library_name="seqdemo",
    tags=HUB_TAGS + ["text-classification"],
    pipeline_tag="text-classification",
):
    """Reads token ids (batch, time) with their lengths and returns class logits (batch, classes).

    Padding never changes a prediction: the recurrent layer runs on a packed sequence, so each text stops
    at its own length in both directions, and pooling ignores the padded steps.
    """

    def __init__(
        self,
        vocab_size: int = 8000,
        embed_dim: int = 256,
        hidden_size: int = 256,
        num_layers: int = 1,
        cell: str = "lstm",
        bidirectional: bool = True,
        conv_channels: int = 0,
        conv_kernel: int = 3,
        conv_stride: int = 1,
        dropout: float = 0.0,
        layer_dropout: float | None = None,
        pooling: str = "max",
        labels: list[str] | tuple[str, ...] = LABELS,
        pad_id: int = 0,
        max_tokens: int = 512,
        weight_storage: str = "float32",
    ):
        super().__init__()
        self.weight_storage = weights.check_format(weight_storage)
        if cell not in RNN_CELLS:
            raise ValueError(f"cell must be one of {tuple(RNN_CELLS)}, not {cell!r}")
        if pooling not in ("last", "max", "mean"):
            raise ValueError(f"pooling must be 'last', 'max' or 'mean', not {pooling!r}")
        self.labels = list(labels)
        self.pad_id = pad_id
        self.pooling = pooling
        self.max_tokens = max_tokens
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        # An optional Conv1d reads n-grams before the recurrence (the chapter's CNN + LSTM variant).
        # A stride above 1 shortens the sequence the recurrence reads by that factor.
        self.conv = (
            nn.Conv1d(embed_dim, conv_channels, conv_kernel, stride=conv_stride, padding=conv_kernel // 2)
            if conv_channels else None
        )
        # layer_dropout: between stacked layers only (nn.LSTM's `dropout`); None takes `dropout`.
        between_layers = dropout if layer_dropout is None else layer_dropout
        self.rnn = RNN_CELLS[cell](
            conv_channels or embed_dim,
            hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=True,
            dropout=between_layers if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        directions = 2 if bidirectional else 1
        self.classifier = nn.Linear(directions * hidden_size, len(self.labels))

    def rnn_input(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """What the recurrent layer reads: embeddings, through the Conv1d front end when there is one."""
        return self.front_end(self.embedding(ids), lengths)

    def front_end(self, embedded: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self.dropout(embedded)
        if self.conv is not None:
            if lengths is not None:  # zero the padding so the convolution sees what a lone text sees
                x = x * _mask(lengths.to(x.device), x.shape[1]).unsqueeze(-1)
            x = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        return x

    def rnn_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Each text's length after the front end (a strided convolution shortens it)."""
        if self.conv is None:
            return lengths
        (kernel,), (stride,), (padding,) = self.conv.kernel_size, self.conv.stride, self.conv.padding
        return (lengths + 2 * padding - kernel) // stride + 1

    def read(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs the recurrent layer over each text up to its own length; returns the outputs
        (batch, time, directions * hidden) and the pooled features (batch, directions * hidden)."""
        if bool((lengths == x.shape[1]).all()):
            # No padding, nothing to pack: the plain call takes the CPU's fused oneDNN kernel, which packed
            # sequences skip (several times slower).
            out, state = self.rnn(x)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            packed_out, state = self.rnn(packed)
            out, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=x.shape[1])
        if self.pooling == "last":
            # The final hidden state of each direction: the forward one has read the whole text left to
            # right, the backward one right to left.
            h_n = state[0] if isinstance(state, tuple) else state
            directions = 2 if self.rnn.bidirectional else 1
            return out, torch.cat([h_n[-directions + d] for d in range(directions)], dim=-1)
        mask = _mask(lengths.to(x.device), x.shape[1]).unsqueeze(-1)
        if self.pooling == "max":
            return out, out.masked_fill(~mask, float("-inf")).max(dim=1).values
        return out, (out * mask).sum(1) / lengths.to(x.device).unsqueeze(-1)

    def classify_embeddings(self, embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits from token embeddings: the function that attributions differentiate."""
        _, pooled = self.read(self.front_end(embedded, lengths), self.rnn_lengths(lengths))
        return self.classifier(self.dropout(pooled))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.classify_embeddings(self.embedding(ids), lengths)


class NextWordLSTM(
    nn.Module,
    HubModel,
    library_name="seqdemo",
    tags=HUB_TAGS + ["text-generation"],
    pipeline_tag="text-generation",
):
    """A stateful language model: forward(ids, state) -> (logits, state).

    Passing the returned (h, c) back in continues the text where it stopped, so generation feeds one new
    token per step instead of re-reading the prompt.
    """

    def __init__(
        self,
        vocab_size: int = 8000,
        embed_dim: int = 512,
        hidden_size: int = 512,
        num_layers: int = 3,
        dropout: float = 0.25,
        embedding_dropout: float = 0.0,
        weight_drop: float = 0.0,
        tie_weights: bool = True,
        max_tokens: int = 2048,
        weight_storage: str = "float32",
    ):
        super().__init__()
        self.weight_storage = weights.check_format(weight_storage)
        self.max_tokens = max_tokens
        # Regularisation after AWD-LSTM (Merity, Keskar & Socher 2018, "Regularizing and Optimizing LSTM Language
        # Models"): whole words dropped from the embedding, one dropout mask per sequence on the LSTM's input and
        # output ("locked" dropout), and DropConnect on the hidden-to-hidden weights. All are off in eval mode.
        self.dropout = dropout
        self.embedding_dropout = embedding_dropout
        self.weight_drop = weight_drop
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, dropout=dropout, batch_first=True)
        # Tying needs the last hidden state in embedding space; a projection bridges different sizes.
        self.projection = nn.Linear(hidden_size, embed_dim) if tie_weights and hidden_size != embed_dim else None
        self.decoder = nn.Linear(embed_dim if tie_weights else hidden_size, vocab_size)
        if tie_weights:
            self.decoder.weight = self.embedding.weight

    def rnn_input(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """What the recurrent layer reads: the token embeddings."""
        weight = self.embedding.weight
        if self.training and self.embedding_dropout:
            # A dropped word is dropped everywhere in the batch, so the model cannot lean on any single word.
            keep = weight.new_empty(weight.shape[0], 1).bernoulli_(1 - self.embedding_dropout)
            weight = weight * keep / (1 - self.embedding_dropout)
        return locked_dropout(F.embedding(ids, weight), self.dropout, self.training)

    def forward(
        self, ids: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        x = self.rnn_input(ids)
        if self.training and self.weight_drop:
            # DropConnect: one mask on each weight_hh per batch, shared by every time step.
            weights = {
                name: F.dropout(param, self.weight_drop) if name.startswith("weight_hh") else param
                for name, param in self.rnn.named_parameters()
            }
            out, state = functional_call(self.rnn, weights, (x, state))
        else:
            out, state = self.rnn(x, state)
        out = locked_dropout(out, self.dropout, self.training)
        if self.projection is not None:
            out = self.projection(out)
        return self.decoder(out), state


RNN_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}  # nn.RNN: the plain tanh recurrence


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout with one mask per sequence, shared by all its time steps (x is batch, time, features)."""
    if not training or not p:
        return x
    mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - p) / (1 - p)
    return x * mask


def _mask(lengths: torch.Tensor, total: int) -> torch.Tensor:
    """(batch, time) booleans, True on real tokens."""
    return torch.arange(total, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)
