"""JSON lines out: one event per line, byte for byte the MQTT payload (for analysis and the demo)."""

from __future__ import annotations

from typing import BinaryIO

from footfall.events import Event


class JsonlSink:
    """One event per line, byte for byte the MQTT payload."""

    def __init__(self, stream: BinaryIO, *, close_stream: bool = False) -> None:
        self._stream = stream
        self._close_stream = close_stream
        self.sent = 0

    def send(self, event: Event) -> None:
        self._stream.write(event.to_json() + b"\n")
        self.sent += 1

    def close(self) -> None:
        self._stream.flush()
        if self._close_stream:
            self._stream.close()
