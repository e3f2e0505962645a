"""The HTTP/1.1 response of the lean client (``_wire``), parsed incrementally from bytes.

Bounded: a response head over ``MAX_HEAD`` bytes, a malformed status line, header or chunk is a
protocol error (``httpx.RemoteProtocolError``, as httpx raises for the same faults).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

__all__ = ["MAX_HEAD", "ResponseParser", "WireResponse"]

#: Bytes a response's status line and headers may take.
MAX_HEAD = 64 * 1024

_CRLF = b"\r\n"
#: What ``bytes.strip()`` removes (str.strip() would also take latin-1's NBSP and NEL).
_WS = " \t\n\r\x0b\x0c"


class WireResponse:
    """The parts of an HTTP response the backend reads (the same names as ``httpx.Response``)."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(
        self, status_code: int, reason_phrase: str, headers: dict[str, str], content: bytes
    ) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = headers  # names in lower case
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class ResponseParser:
    """Feed it what the socket read; ``feed`` is true once one whole response is in."""

    __slots__ = ("_buffer", "_chunked", "_length", "_parts", "response", "will_close")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._parts: list[bytes] = []  # the chunks of a chunked body so far
        self._length: int | None = None  # body bytes expected; None: until the connection ends
        self._chunked = False
        self.response: WireResponse | None = None
        self.will_close = False

    def feed(self, data: bytes) -> bool:
        self._buffer += data
        if self.response is None and not self._head():
            return False
        return self._body()

    def feed_eof(self) -> bool:
        """The server closed the connection: true when that ends a complete response."""
        if self.response is not None and self._length is None and not self._chunked:
            self._finish(bytes(self._buffer))
            return True
        return False

    @property
    def started(self) -> bool:
        return bool(self._buffer) or self.response is not None

    def _head(self) -> bool:
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    raise httpx.RemoteProtocolError("the response head is too large")
                return False
            # Decoded once, whole: the lines are then split and read as text.
            lines = self._buffer[:end].decode("latin-1").split("\r\n")
            del self._buffer[: end + 4]
            status, reason, version = _status_line(lines[0])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, colon, value = line.partition(":")
                if not colon or not name or name != name.strip(_WS):
                    raise httpx.RemoteProtocolError(
                        f"malformed response header {line[:80].encode('latin-1')!r}"
                    )
                key, value = name.lower(), value.strip(_WS)
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            if 100 <= status < 200:  # 100 Continue and the like: the real answer follows
                continue
            connection = headers.get("connection", "").lower()
            self.will_close = "close" in connection or (
                version == "HTTP/1.0" and "keep-alive" not in connection
            )
            self.response = WireResponse(status, reason, headers, b"")
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._chunked = True
            elif status in (204, 304):
                self._length = 0
            elif "content-length" in headers:
                try:
                    self._length = int(headers["content-length"])
                except ValueError:
                    raise httpx.RemoteProtocolError("malformed Content-Length") from None
                if self._length < 0:
                    raise httpx.RemoteProtocolError("malformed Content-Length")
            else:
                self.will_close = True  # the body runs until the server closes
            return True

    def _body(self) -> bool:
        if self._chunked:
            return self._chunks()
        if self._length is None or len(self._buffer) < self._length:
            return False
        if len(self._buffer) > self._length:
            self.will_close = True  # bytes nobody asked for: do not reuse this connection
        self._finish(bytes(self._buffer[: self._length]))
        return True

    def _chunks(self) -> bool:
        buffer = self._buffer
        while True:
            end = buffer.find(_CRLF)
            if end < 0:
                if len(buffer) > 1024:
                    raise httpx.RemoteProtocolError("malformed chunk size line")
                return False
            size_text = bytes(buffer[:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise httpx.RemoteProtocolError(
                    f"malformed chunk size {size_text[:20]!r}"
                ) from None
            if size < 0:
                raise httpx.RemoteProtocolError("malformed chunk size")
            if size == 0:  # the last chunk, then trailers up to an empty line
                last = buffer.find(b"\r\n\r\n", end)
                if last < 0:
                    if len(buffer) > MAX_HEAD:
                        raise httpx.RemoteProtocolError("the response trailers are too large")
                    return False
                if len(buffer) > last + 4:
                    self.will_close = True  # bytes nobody asked for
                self._finish(b"".join(self._parts))
                return True
            stop = end + 2 + size
            if len(buffer) < stop + 2:
                return False
            if buffer[stop : stop + 2] != _CRLF:
                raise httpx.RemoteProtocolError("malformed chunk")
            self._parts.append(bytes(buffer[end + 2 : stop]))
            del buffer[: stop + 2]

    def _finish(self, content: bytes) -> None:
        assert self.response is not None
        self.response.content = content
        self._buffer.clear()


def _status_line(line: str) -> tuple[int, str, str]:
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdecimal():
        raise httpx.RemoteProtocolError(f"malformed status line {line[:80].encode('latin-1')!r}")
    return int(parts[1]), parts[2] if len(parts) == 3 else "", parts[0]
