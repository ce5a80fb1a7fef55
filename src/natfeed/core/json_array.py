"""Streaming reader of JSON files that hold a top-level array of rows (ShareGPT ships this way).

The array is decoded one element at a time from a bounded buffer, so memory stays flat however large the
file (ShareGPT V3 is 670 MB). Every complete element is yielded; what cannot be split into elements ends
the file as one error record: ``truncated_json`` when the file ends inside an element (the ShareGPT
wheel's file is cut inside a record), ``invalid_json`` for a syntax error between or inside elements (the
array cannot be resynchronised after one), ``trailing_data`` for text after the closing bracket. The
detail of each names the byte offset where the bad part starts.

:func:`json_layout` tells a ``.json`` file's layout from its first bytes: ``array``, JSON ``lines`` (one
row object per line, as natfeed has always read ``.json``), or raises :class:`InputError` saying what
the file holds instead (an object, a number, ...).
"""

from __future__ import annotations

import codecs
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

from natfeed.core.errors import NatfeedError

CHUNK = 1 << 20
"""Bytes read at a time; a buffer holds at most one element plus a chunk or two."""
MAX_ELEMENT_CHARS = 256 << 20
"""An element longer than this is treated as a syntax error (the buffer never grows past it)."""
ROW_KEYS = ("conversation", "messages", "conversations")
_WS = " \t\r\n"

Layout = Literal["array", "lines"]


class JsonLayoutError(NatfeedError, ValueError):
    """A ``.json`` file that is neither an array of rows nor JSON lines."""


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")  # noqa: SIM115


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def json_layout(path: Path) -> Layout:
    """``array`` or ``lines`` for a ``.json`` file; :class:`JsonLayoutError` for anything else."""
    try:
        with _open(path) as fh:
            head = fh.read(4096).lstrip(b"\xef\xbb\xbf" + _WS.encode())
            if not head or head[:1] == b"[":
                return "array" if head else "lines"
            fh.seek(0)
            first = fh.readline().strip()
    except (OSError, EOFError) as err:
        raise JsonLayoutError(f"{path}: cannot read ({err})") from None
    found = "JSON text spread over several lines"
    try:
        value = json.loads(first.decode("utf-8-sig"))
        if isinstance(value, dict) and any(k in value for k in ROW_KEYS):
            return "lines"
        found = _kind(value) + (f" with keys {sorted(value)[:6]}" if isinstance(value, dict) else "")
    except (UnicodeDecodeError, json.JSONDecodeError):
        if head[:1] == b"{":
            found = "an object spread over several lines"
    raise JsonLayoutError(f"{path}: natfeed reads a .json file as a JSON array of rows or as JSON lines (one row "
                          f"object per line); this one holds {found}. Rewrite it as one of those.")


class _Buffer:
    """Decoded text of a byte stream, read on demand, with the byte offset of every position kept."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.text = ""
        self.pos = 0
        self.base_bytes = 0  # byte offset of text[0] in the file
        self.eof = False

    def fill(self, at_least: int = CHUNK) -> bool:
        """Read more; False at the end of the file."""
        if self.eof:
            return False
        data = self.fh.read(max(CHUNK, at_least))
        self.eof = not data
        try:
            self.text += self.decoder.decode(data, final=self.eof)
        except UnicodeDecodeError as err:
            raise JsonLayoutError(f"invalid UTF-8 near byte {self.base_bytes + len(self.text.encode())}: "
                                  f"{err.reason}") from None
        return not self.eof

    def skip_ws(self) -> str:
        """The next non-blank character ('' at the end of the file), left unconsumed."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.text) or not self.fill():
                return self.text[self.pos] if self.pos < len(self.text) else ""

    def byte_offset(self, pos: int) -> int:
        return self.base_bytes + len(self.text[:pos].encode("utf-8"))

    def compact(self) -> None:
        if self.pos > CHUNK:
            self.base_bytes = self.byte_offset(self.pos)
            self.text, self.pos = self.text[self.pos:], 0

    def rest(self) -> str:
        """Everything from ``pos`` to the end of the file (for an error record), capped."""
        while len(self.text) - self.pos < MAX_ELEMENT_CHARS and self.fill():
            pass
        return self.text[self.pos:self.pos + MAX_ELEMENT_CHARS]


ArrayItem = tuple[int, object | None, str | None, str | None]
"""(1-based element index, the element, or an error "reason: detail" and the raw text)."""


def _element(buf: _Buffer, decoder: json.JSONDecoder) -> tuple[object, int, str | None]:
    """Decode the element at ``buf.pos``: (value, end, None), or (None, -1, error) when it cannot be; the
    error is ``truncated_json: ...`` when the file ends inside the element."""
    while True:
        try:
            value, end = decoder.raw_decode(buf.text, buf.pos)
            if end < len(buf.text) or buf.eof:
                return value, end, None
        except json.JSONDecodeError as err:
            if buf.eof or len(buf.text) - buf.pos >= MAX_ELEMENT_CHARS:
                cut = buf.eof and (err.pos >= len(buf.text.rstrip()) or err.msg.startswith("Unterminated"))
                what = "the file ends inside this element" if cut else "a syntax error"
                return None, -1, f"{'truncated_json' if cut else 'invalid_json'}: {what} ({err.msg})"
        except RecursionError:
            return None, -1, "invalid_json: nested too deeply"
        buf.fill(at_least=len(buf.text) - buf.pos)  # doubles the window: a long element costs O(n log n)


def iter_array(path: Path) -> Iterator[ArrayItem]:
    """Every element of the top-level JSON array in ``path``, then at most one error item for the rest."""
    decoder = json.JSONDecoder()
    with _open(path) as fh:
        buf = _Buffer(fh)
        if buf.skip_ws() != "[":
            raise JsonLayoutError(f"{path}: not a JSON array")
        buf.pos += 1
        index = 0
        while True:
            nxt = buf.skip_ws()
            if index and nxt in (",", "]"):
                buf.pos += 1
                if nxt == "]":
                    break
                nxt = buf.skip_ws()
            elif index and nxt:
                yield _error(buf, index + 1, "invalid_json: expected ',' or ']' after a row")
                return
            elif nxt == "]":  # an empty array
                buf.pos += 1
                break
            if nxt == "":
                yield _error(buf, index + 1, "truncated_json: the file ends before the array is closed")
                return
            value, end, error = _element(buf, decoder)
            if error is not None:
                yield _error(buf, index + 1, error)
                return
            index += 1
            yield index, value, None, None
            buf.pos = end
            buf.compact()
        if buf.skip_ws() != "":
            yield _error(buf, index + 1, "trailing_data: text after the array's closing bracket")


def _error(buf: _Buffer, index: int, error: str) -> ArrayItem:
    """The error item for everything from ``buf.pos`` on: its byte offset in the detail, the text as raw."""
    reason, _, what = error.partition(": ")
    return (index, None, f"{reason}: element {index}, from byte {buf.byte_offset(buf.pos)} to the end of the file: "
            f"{what}", buf.rest())
