"""The tokenizer's view of a text: byte pieces, the labels of model steps, and spans that merge a character's
byte pieces. Uses the tiny tokenizer of conftest.py, whose vocabulary holds no emoji and no '<'."""

from __future__ import annotations

import pytest

TEXTS = ["I loved it 🙂🎬", "not good at all", "这部电影", "a<b>c", "  two spaces first", "\x00\x07 control"]


@pytest.mark.parametrize("text", TEXTS)
def test_spans_spell_the_text_and_keep_every_value(tiny_tokenizer, text):
    ids = tiny_tokenizer.encode(text)
    values = [float(i + 1) for i in range(len(ids))]
    spans = tiny_tokenizer.spans(ids, values)
    assert "".join(span.text for span in spans) == tiny_tokenizer.decode(ids)
    assert sorted(p for span in spans for p in span.positions) == list(range(len(ids)))
    for span in spans:
        assert span.value == pytest.approx(sum(values[p] for p in span.positions))


def test_an_emoji_is_one_span_of_its_four_byte_pieces(tiny_tokenizer):
    ids = tiny_tokenizer.encode("I loved it 🙂")
    emoji = [i for i in ids if tiny_tokenizer.byte_value(i) is not None]
    assert bytes(tiny_tokenizer.byte_value(i) for i in emoji) == "🙂".encode()
    [span] = [s for s in tiny_tokenizer.spans(ids, [1.0] * len(ids)) if s.text == "🙂"]
    assert len(span.positions) == 4 and span.value == 4.0


def test_bytes_that_never_finish_a_character_show_as_the_replacement_character(tiny_tokenizer):
    ids = tiny_tokenizer.encode("🙂")
    pieces = [i for i in ids if tiny_tokenizer.byte_value(i) is not None][:2]  # half an emoji
    [span] = tiny_tokenizer.spans(pieces, [0.5, 0.25])
    assert span.text == "\ufffd" and span.value == 0.75 and span.positions == [0, 1]


def test_the_first_word_start_mark_is_no_space_unless_the_ids_continue_a_text(tiny_tokenizer):
    ids = tiny_tokenizer.encode("The movie")
    assert tiny_tokenizer.display(ids[0]).startswith(" ")
    assert tiny_tokenizer.spans(ids, [0.0] * len(ids))[0].text == tiny_tokenizer.display(ids[0])[1:]
    assert tiny_tokenizer.spans(ids, [0.0] * len(ids), starts_text=False)[0].text == tiny_tokenizer.display(ids[0])


def test_step_labels_show_ascii_bytes_as_their_character(tiny_tokenizer):
    ids = tiny_tokenizer.encode("a<b")
    [angle] = [i for i in ids if tiny_tokenizer.byte_value(i) == ord("<")]
    assert tiny_tokenizer.display(angle) == "<0x3C>" and tiny_tokenizer.step_label(angle) == "<"
    emoji_byte = next(i for i in tiny_tokenizer.encode("🙂") if tiny_tokenizer.byte_value(i) is not None)
    assert tiny_tokenizer.step_label(emoji_byte) == "<0xF0>"  # alone, the first byte of 🙂 spells nothing
    word = tiny_tokenizer.encode("movie")[-1]
    assert tiny_tokenizer.byte_value(word) is None and tiny_tokenizer.step_label(word) == tiny_tokenizer.display(word)


@pytest.mark.parametrize("text", [*TEXTS, "A modest, grinning film.\n\nBeautifully done!", "don't stop-motion (great)"])
def test_words_spell_the_text_and_add_up_their_pieces(tiny_tokenizer, text):
    ids = tiny_tokenizer.encode(text)
    values = [float(i + 1) for i in range(len(ids))]
    words = tiny_tokenizer.words(ids, values)
    assert "".join(word.text for word in words) == tiny_tokenizer.decode(ids)
    assert [p for word in words for p in word.positions] == list(range(len(ids)))
    for word in words:
        assert word.value == pytest.approx(sum(values[p] for p in word.positions))


def words_of(tokenizer, text: str) -> list[str]:
    ids = tokenizer.encode(text)
    return [word.text for word in tokenizer.words(ids, [0.0] * len(ids))]


def test_a_word_of_several_pieces_is_one_word(tiny_tokenizer):
    assert len(tiny_tokenizer.encode(" grinning")) > 1  # the tiny vocabulary splits it
    assert words_of(tiny_tokenizer, "A modest, grinning film.") == ["A", " modest", ",", " grinning", " film", "."]


def test_punctuation_stands_alone_but_joins_a_word_inside_it(tiny_tokenizer):
    assert words_of(tiny_tokenizer, "don't stop-motion (great)!") == ["don't", " stop-motion", " (", "great", ")",
                                                                     "!"]


def test_ideographs_and_emoji_are_words_of_their_own_and_line_breaks_one_token(tiny_tokenizer):
    assert words_of(tiny_tokenizer, "这部电影") == ["这", "部", "电", "影"]
    assert words_of(tiny_tokenizer, "I loved it 🙂🎬") == ["I", " loved", " it", " 🙂", "🎬"]
    assert words_of(tiny_tokenizer, "Good.\n\nBad") == ["Good", ".", "\n\n", "Bad"]
