"""Errors of the decoding core: small, typed, and carrying the numbers that explain them.

`DecodeError.reason` is a stable string that `FrameDecoder` uses as a counter key, so a malformed
frame becomes a counted event rather than a crash. `CaptureError` is different: a capture file
that cannot be read at all is the caller's problem, so it names the file and the byte offset.
"""

from __future__ import annotations


class DecodeError(Exception):
    """A frame could not be decoded; `reason` is the counter key (e.g. "radiotap_truncated")."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class Truncated(DecodeError):
    """The frame ended before a field it announces: `needed` bytes were required, `got` were there."""

    def __init__(self, reason: str, needed: int, got: int) -> None:
        super().__init__(reason, f"got {got}, {needed} needed")
        self.needed = needed
        self.got = got


class Malformed(DecodeError):
    """The bytes are there but make no sense (bad version, impossible length, unknown layout)."""


class CaptureError(Exception):
    """A capture file (or buffer) is not a readable pcap/pcapng; names the source and byte offset."""

    def __init__(self, source: str, offset: int, message: str) -> None:
        super().__init__(f"{source}: at byte {offset}: {message}")
        self.source = source
        self.offset = offset
