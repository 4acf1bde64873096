"""Subword tokenizer: a SentencePiece unigram model (Kudo 2018), saved as `tokenizer.model` in each checkpoint.

Identity normalisation keeps the text exactly as typed (case included), so the language model is scored on
the original characters; byte fallback gives every emoji, CJK or control character a token instead of <unk>.
"""

from __future__ import annotations

import codecs
import io
import unicodedata
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import sentencepiece as spm

from seqdemo.core.text import valid_unicode

FILENAME = "tokenizer.model"
PAD, UNK, BOS, EOS = 0, 1, 2, 3
WORD_START = "\u2581"  # SentencePiece marks a piece that begins a new word with this character
JOINERS = {"'", "\u2019", "-"}  # inside a word they join its parts: don't, stop-motion


class Span(NamedTuple):
    """A stretch of the text as the reader sees it: one piece, or the byte pieces of one character."""

    text: str
    value: float  # the summed values of its pieces
    positions: list[int]  # where its pieces are in the ids


class Tokenizer:
    def __init__(self, model_proto: bytes):
        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        if self.sp.get_piece_size() == 0:  # sentencepiece accepts an empty proto, then fails on the first encode
            raise ValueError("the model holds no pieces (an empty or truncated file?)")
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
        return self.sp.encode(valid_unicode(text))

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

    def byte_value(self, token_id: int) -> int | None:
        """The byte a byte-fallback piece stands for (<0xF0> -> 0xF0), or None for any other piece."""
        if not self.sp.is_byte(token_id):
            return None
        return int(self.sp.id_to_piece(token_id)[3:5], 16)  # the piece reads "<0xHH>"

    def step_label(self, token_id: int) -> str:
        """What one model step read: the piece, except that a byte piece spelling a whole ASCII character shows
        that character ("<" rather than <0x3C>). Bytes of longer characters stay <0xHH>: alone they spell nothing."""
        byte = self.byte_value(token_id)
        if byte is not None and byte < 0x80:
            return chr(byte)
        return self.display(token_id)

    def spans(self, ids: Sequence[int], values: Sequence[float], starts_text: bool = True) -> list[Span]:
        """The text the ids spell, cut at their pieces, each stretch with its pieces' summed value.

        Byte-fallback pieces (an emoji is four) are merged into the character they spell, and their values
        summed: right for surprisal (bits add up along a character's pieces) and for attributions (they add up
        to the decision). `starts_text`: the ids begin the text, so their first word-start mark is no space."""
        spans: list[Span] = []
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending_value, pending_positions = 0.0, []

        def flush_bytes() -> None:
            # An unfinished character (bytes that never completed one) shows as the replacement character.
            nonlocal pending_value, pending_positions
            if pending_positions:
                spans.append(Span(decoder.decode(b"", final=True) or "\ufffd", pending_value, pending_positions))
                decoder.reset()
                pending_value, pending_positions = 0.0, []

        for position, (token, value) in enumerate(zip(ids, values)):
            byte = self.byte_value(token)
            if byte is None:
                flush_bytes()
                spans.append(Span(self.display(token), value, [position]))
                continue
            pending_value += value
            pending_positions.append(position)
            text = decoder.decode(bytes([byte]))
            if text:  # the character is complete
                spans.append(Span(text, pending_value, pending_positions))
                pending_value, pending_positions = 0.0, []
        flush_bytes()
        if starts_text and spans and spans[0].text.startswith(" "):
            first = spans[0]._replace(text=spans[0].text[1:])
            if not first.text and len(spans) > 1:  # a lone word-start mark: part of the next span
                second = spans.pop(1)
                first = Span(second.text, first.value + second.value, first.positions + second.positions)
            spans[0] = first
        return spans

    def words(self, ids: Sequence[int], values: Sequence[float], starts_text: bool = True) -> list[Span]:
        """`spans` merged into the words a reader sees, each with its pieces' summed value and positions.

        A word is a run of pieces with no space between them ("▁grin" + "ning"); punctuation stands alone (so a
        full stop is its own token) except an apostrophe or hyphen inside a word; an ideograph, kana or emoji is
        one word by itself (those scripts put no spaces between words); a run of whitespace (a line break) is
        one token. A lone word-start mark ("▁" before an emoji's bytes) joins the word it starts."""
        words: list[Span] = []
        kinds: list[str] = []
        for span in self.spans(ids, values, starts_text):
            kind = _word_kind(span.text)
            if words and _continues(words[-1].text, kinds[-1], span.text, kind):
                last = words[-1]
                words[-1] = Span(last.text + span.text, last.value + span.value, last.positions + span.positions)
                kinds[-1] = kind if kinds[-1] == "space" and kind != "space" else kinds[-1]
            else:
                words.append(span)
                kinds.append(kind)
        return words


def _word_kind(text: str) -> str:
    """"space", "alone" (an ideograph, kana or emoji), "joiner", "punctuation" or "word"."""
    core = text.strip()
    if not core:
        return "space"
    if len(core) == 1 and (unicodedata.east_asian_width(core) in "WF" or unicodedata.category(core) == "So"):
        return "alone"
    if core in JOINERS:
        return "joiner"
    if all(unicodedata.category(ch)[0] in "PS" for ch in core):
        return "punctuation"
    return "word"


def _continues(previous: str, previous_kind: str, text: str, kind: str) -> bool:
    """Whether the span `text` continues the word `previous` (see Tokenizer.words)."""
    if kind == "space":
        return previous_kind == "space"
    if previous == " ":  # a lone word-start mark
        return not text[0].isspace()
    if text[0].isspace():
        return False
    if kind == "word":
        return previous_kind in ("word", "joiner")
    return kind == "joiner" and previous_kind == "word"
