"""What a MAC address looks like in text: the one grammar, for parsing one and for finding one inside text.

A MAC is spelled, in either case, as
- six pairs of hex digits separated by `:`, `-`, `.` or a space (aa:bb:cc:dd:ee:ff, AA-BB-..., "aa bb ..."),
  the separators possibly mixed (a typo is still a MAC);
- three groups of four separated by `.` (Cisco: aabb.ccdd.eeff);
- twelve hex digits in a row (aabbccddeeff), exactly twelve.

Inside longer text, a MAC-shaped run counts only where no hex digit touches it on either side: a longer
hex run is an id, not a MAC. The wire schema makes every footfall id (event ids, pseudonyms, tokens) a
length other than 12 for this very reason (footfall/events.py `HexId`, footfall/control.py `Token`), and
the collector stores such ids anyway, so masking them would hide what a dead letter is kept for without
protecting anything. The collector's ingest masks with `mask_macs`, its registry and profile checks refuse
text where `contains_mac` is true, and a MAC given on purpose goes through `parse_mac`: one grammar, so
what is masked, what is refused and what is parsed never disagree.

Messages never repeat the text: a mistyped MAC is still personal data.
"""

from __future__ import annotations

import re
from typing import Final

MAC_SPELLINGS: Final = "aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff or aabbccddeeff"

_HEX = "[0-9a-f]"
_SHAPES = (
    rf"{_HEX}{{2}}(?:[:\-. ]{_HEX}{{2}}){{5}}"  # pairs
    rf"|{_HEX}{{4}}\.{_HEX}{{4}}\.{_HEX}{{4}}"  # Cisco's triples
    rf"|{_HEX}{{12}}"  # bare
)
_WHOLE = re.compile(rf"(?:{_SHAPES})", re.IGNORECASE)
_INSIDE = re.compile(rf"(?<!{_HEX})(?:{_SHAPES})(?!{_HEX})", re.IGNORECASE)
_INSIDE_BYTES = re.compile(_INSIDE.pattern.encode(), re.IGNORECASE)
_DIGIT_BYTES = re.compile(rb"[0-9a-f]", re.IGNORECASE)
_SEPARATORS = re.compile(r"[:\-. ]")


class MacError(ValueError):
    """Not a MAC address; the message says what was expected, never what was given."""


def parse_mac(text: str) -> bytes:
    """The 6 bytes of a MAC in any of its spellings (surrounding white space ignored)."""
    value = text.strip()
    if not _WHOLE.fullmatch(value):
        raise MacError(f"not a MAC address ({len(value)} characters; expected {MAC_SPELLINGS})")
    return bytes.fromhex(_SEPARATORS.sub("", value))


def contains_mac(text: str) -> bool:
    """Whether `text` holds something shaped like a MAC address anywhere."""
    return _INSIDE.search(text) is not None


def mask_macs(data: bytes) -> bytes:
    """Every MAC-shaped run in `data` with its hex digits replaced by x's (separators and length kept)."""
    return _INSIDE_BYTES.sub(lambda m: _DIGIT_BYTES.sub(b"x", m[0]), data)
