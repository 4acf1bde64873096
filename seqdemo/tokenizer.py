"""Subword tokenizer: a SentencePiece unigram model (Kudo 2018), saved as `tokenizer.model` in each checkpoint.

Identity normalisation keeps the text exactly as typed (case included), so the language model is scored on
the original characters; byte fallback gives every emoji, CJK or control character a token instead of <unk>.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable

import sentencepiece as spm

FILENAME = "tokenizer.model"
PAD, UNK, BOS, EOS = 0, 1, 2, 3
WORD_START = "\u2581"  # SentencePiece marks a piece that begins a new word with this character


class Tokenizer:
    def __init__(self, model_proto: bytes):
        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = PAD, UNK, BOS, EOS

    @classmethod
    def load(cls, path: str | Path) -> "Tokenizer":
        """Reads `tokenizer.model` from a checkpoint folder (or the file itself)."""
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        try:
            return cls(path.read_bytes())
        except Exception as error:  # sentencepiece reports a bad file with a bare RuntimeError
            raise ValueError(f"{path} is not a readable SentencePiece model: {error}") from error

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / FILENAME
        path.write_bytes(self.model_proto)
        return path

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, max_sentences: int = 200_000) -> "Tokenizer":
        """Learns a unigram vocabulary from `texts` (one text per line; newlines inside a text become spaces)."""
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=(" ".join(t.split("\n")) for t in texts),
            model_writer=model,
            vocab_size=vocab_size,
            model_type="unigram",
            normalization_rule_name="identity",
            byte_fallback=True,
            character_coverage=0.9995,
            pad_id=PAD,
            unk_id=UNK,
            bos_id=BOS,
            eos_id=EOS,
            input_sentence_size=max_sentences,
            shuffle_input_sentence=True,
            max_sentence_length=20_000,
            num_threads=2,
            hard_vocab_limit=False,  # a small corpus may hold fewer pieces than asked for
            minloglevel=2,
        )
        return cls(model.getvalue())

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode(list(ids))

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """Readable token strings, for labels on screen: the word-start mark becomes a space."""
        return [self.display(i) for i in ids]

    def display(self, token_id: int) -> str:
        piece = self.sp.id_to_piece(token_id)
        if self.sp.is_byte(token_id):
            return piece  # e.g. <0xF0>: one byte of a character the vocabulary does not hold
        return piece.replace(WORD_START, " ")

    def starts_word(self, token_id: int) -> bool:
        return self.sp.id_to_piece(token_id).startswith(WORD_START)
