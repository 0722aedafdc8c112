"""Read a large JSON object member by member, its arrays one element at a time.

A COCO file of 100,000 annotations is ~30 MB of text and ~150 MB once ``json.loads`` has built it; the checker
only needs one annotation at a time. Elements are decoded by the standard library's own decoder
(``JSONDecoder.raw_decode``) from a sliding text buffer, so values come out exactly as ``json.loads`` gives them.

Anything unusual -- not an object at the top, a repeated key, invalid JSON or UTF-8, data after the end -- raises
:class:`NotStreamable`; the caller then falls back to ``json.loads`` of the whole file, which also words the error.
"""
import codecs
import json
import re

CHUNK = 1 << 20  # characters read at a time
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_AFTER_VALUE = frozenset(" \t\n\r,]}:")  # what may follow a complete value in valid JSON


class NotStreamable(Exception):
    """The file cannot be streamed as one JSON object; read it whole instead."""


class JsonStream:
    """``members()`` yields ``(key, value, is_array)``; for an array, ``value`` is an iterator over its elements
    (what the caller leaves unread is skipped)."""

    def __init__(self, fp, chunk=None):
        self._fp = fp
        self._chunk = chunk or CHUNK
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._decoder = json.JSONDecoder()
        self._buf, self._pos, self._eof = "", 0, False

    def _fill(self, size=None):
        """Append the next piece of the file to the unread text; False once the file is exhausted."""
        if self._eof:
            return False
        data = self._fp.read(size or self._chunk)
        self._eof = not data
        try:
            text = self._utf8.decode(data, final=self._eof)
        except UnicodeDecodeError:
            raise NotStreamable("not UTF-8") from None
        self._buf = self._buf[self._pos:] + text
        self._pos = 0
        return True

    def _peek(self):
        """The next non-whitespace character ('' at the end of the file)."""
        while True:
            self._pos = _WHITESPACE.match(self._buf, self._pos).end()
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return ""

    def _expect(self, chars):
        char = self._peek()
        if char not in chars or not char:
            raise NotStreamable(f"expected one of {chars!r}")
        self._pos += 1
        return char

    def _value(self):
        if not self._peek():
            raise NotStreamable("unexpected end of file")
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError:
                # incomplete so far: read more (doubling, so that one huge value costs linear time)
                if self._fill(max(self._chunk, len(self._buf) - self._pos)):
                    continue
                raise NotStreamable("invalid JSON") from None
            if self._eof or (end < len(self._buf) and self._buf[end] in _AFTER_VALUE):
                self._pos = end
                return value
            self._fill()  # "1.", "-2.5e" or "12" at the end of the buffer: the number may go on in the next piece

    def _elements(self):
        if self._peek() == "]":
            self._pos += 1
            return
        while True:
            yield self._value()
            if self._expect(",]") == "]":
                return

    def members(self):
        self._expect("{")
        seen = set()
        if self._peek() == "}":
            self._pos += 1
        else:
            while True:
                key = self._value()
                if not isinstance(key, str) or key in seen:  # json.loads keeps the last of repeated keys
                    raise NotStreamable(f"repeated or invalid key {key!r}")
                seen.add(key)
                self._expect(":")
                if self._peek() == "[":
                    self._pos += 1
                    elements = self._elements()
                    yield key, elements, True
                    for _ in elements:  # skip what the caller did not read
                        pass
                else:
                    yield key, self._value(), False
                if self._expect(",}") == "}":
                    break
        if self._peek():
            raise NotStreamable("data after the end of the object")
