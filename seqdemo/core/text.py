"""Text in, token ids out: the checks and the truncation every model entry point shares."""

from __future__ import annotations

import re
import string
import unicodedata

import torch


def require_text(text: str) -> str:
    """Refuses what no model can read, with a message a person can act on; returns it as valid Unicode."""
    if not isinstance(text, str):
        raise TypeError(f"expected text (str), got {type(text).__name__}")
    if not text.strip():
        raise ValueError("The text is empty: type a word or a sentence first.")
    return valid_unicode(text)


def valid_unicode(text: str) -> str:
    """`text` with each lone surrogate (from a JSON "\\ud800" escape, say) replaced by U+FFFD: UTF-8 has no
    encoding for them, so the tokenizer, and the JSON that carries a reply, would fail on them."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        # Through UTF-16 a surrogate pair still spells its character; only the lone halves become U+FFFD.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def head_length(max_tokens: int) -> int:
    """How many of the max_tokens kept from a long text come from its start (the rest come from its end)."""
    return max_tokens // 2


def head_and_tail(ids: list[int], max_tokens: int) -> list[int]:
    """Long reviews keep their opening and their verdict: the first and the last max_tokens/2 tokens."""
    if len(ids) <= max_tokens:
        return ids
    head = head_length(max_tokens)
    return ids[:head] + ids[len(ids) - (max_tokens - head) :]


def sentences(text: str) -> list[str]:
    """The text's sentences, split after . ! or ? (good enough for reviews; no abbreviation rules)."""
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def short_enough(sentence: str, min_words: int = 4, max_words: int = 40) -> bool:
    """Whether a sentence is a short text that says something: "10/10" says little, a run-on one is no short text."""
    return min_words <= len(re.findall(r"\w+", sentence)) <= max_words


def last_sentence(text: str) -> str | None:
    """A review's closing sentence, where its verdict usually sits ("A must see."), if it is `short_enough`."""
    found = sentences(text)
    return found[-1] if found and short_enough(found[-1]) else None


def contrast(first: str, second: str) -> str:
    """The two texts as one contrast, "first, but second" (a capital that only opens the second is lowered)."""
    first = first.strip().rstrip(".!?").rstrip()
    second = second.strip()
    if re.match(r"[A-Z][a-z]", second):
        second = second[0].lower() + second[1:]
    return f"{first}, but {second}"


def casual(text: str) -> str:
    """How people type into a demo box: lower case, no punctuation."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return re.sub(r"\s+", " ", text).strip()


def letter_counts(text: str) -> tuple[int, int]:
    """(letters, Latin letters) in the text: a letter is any Unicode letter (Chinese, Hebrew, Cyrillic...); a Latin
    one is named LATIN by Unicode (a-z, é, ß...). Digits, punctuation and emoji are no letters."""
    letters = [ch for ch in text if unicodedata.category(ch).startswith("L")]
    return len(letters), sum(1 for ch in letters if unicodedata.name(ch, "").startswith("LATIN"))


def word_count(text: str) -> int:
    """How many words the text has: runs of letters, in any script ("don't" is two, "10/10" none)."""
    return len(re.findall(r"[^\W\d_]+", text))


def pad_batch(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, longest) ids padded at the end, and each sequence's length."""
    lengths = torch.tensor([len(s) for s in sequences])
    ids = torch.full((len(sequences), int(lengths.max())), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return ids, lengths
