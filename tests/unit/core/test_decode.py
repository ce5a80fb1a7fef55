"""A reply cut inside a UTF-8 character loses that partial character, not the text before it."""

from natfeed.core.decode import clean_cut, decode_reply


class ByteTokenizer:
    """Byte-level ids, decoded as a byte-level BPE tokenizer does: an incomplete character becomes U+FFFD."""

    def decode(self, ids, skip_special_tokens=True):
        return bytes(ids).decode("utf-8", errors="replace")


def test_a_chinese_reply_cut_mid_character_ends_on_a_whole_character():
    ids = list("你好世界".encode())[:-1]  # max_new_tokens stopped one byte short of 界
    assert ByteTokenizer().decode(ids).endswith("\ufffd")
    assert decode_reply(ByteTokenizer(), ids) == "你好世"


def test_whole_text_is_unchanged_apart_from_outer_spaces():
    assert clean_cut(" Paris. ") == "Paris." and clean_cut("") == "" and clean_cut("a \ufffd\ufffd") == "a"
