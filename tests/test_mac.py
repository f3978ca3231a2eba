"""The one MAC grammar (footfall/mac.py): what is parsed, what is found inside text and what is masked agree."""

from __future__ import annotations

import pytest

from footfall.mac import MacError, contains_mac, mask_macs, parse_mac

MAC = bytes.fromhex("3c22fb12ab9f")

# Every spelling the grammar knows, in both cases.
SPELLINGS = [
    "3c:22:fb:12:ab:9f",
    "3C-22-FB-12-AB-9F",
    "3c.22.fb.12.ab.9f",
    "3c 22 fb 12 ab 9f",
    "3c:22-fb.12 ab:9f",  # mixed separators: a typo is still a MAC
    "3c22.fb12.ab9f",
    "3C22FB12AB9F",
]
# Text that is not a MAC: too few or too many digits, a non-hex digit, a run of hex longer than 12.
NOT_MACS = [
    "3c:22:fb:12:ab",
    "3c:22:fb:12:ab:9f:00",
    "3c:22:fb:12:ab:9g",
    "3c22fb12ab9",
    "3c22fb12ab9f0",
    "3c2:2fb:12a:b9f",
    "3c_22_fb_12_ab_9f",
]


@pytest.mark.parametrize("text", SPELLINGS)
def test_every_spelling_parses_is_found_inside_text_and_is_masked(text: str) -> None:
    assert parse_mac(f" {text}\n") == MAC
    assert contains_mac(f"id-{text}!")
    masked = mask_macs(f"<{text}>".encode())
    assert masked == f"<{''.join('x' if c.isalnum() else c for c in text)}>".encode()


@pytest.mark.parametrize("text", NOT_MACS)
def test_what_does_not_parse_is_neither_found_nor_masked(text: str) -> None:
    with pytest.raises(MacError, match="not a MAC address") as caught:
        parse_mac(text)
    assert text not in str(caught.value)
    # A seven-pair text holds a six-pair MAC at its start: found and masked, though it does not parse.
    holds_one = text == "3c:22:fb:12:ab:9f:00"
    assert contains_mac(text) is holds_one
    assert (mask_macs(text.encode()) != text.encode()) is holds_one


@pytest.mark.parametrize(
    ("text", "inside"),
    [
        ("crm-1234", False),
        ("x112233445566y", True),  # not hex on either side: twelve digits are a MAC
        ("a112233445566", False),  # 13 hex digits: a longer number, not a MAC
        ("0" * 32, False),  # a token, a hashed profile id, an event id: never 12 digits long
        ("2024-05-01T07:00:00Z", False),
        ("fe80::1a2b:3c4d:5e6f:7081", False),  # IPv6 groups are four digits
        ("123e4567-e89b-12d3-a456-426614174000", True),  # a UUID's last group is twelve hex digits
    ],
)
def test_runs_of_hex_count_as_a_mac_only_when_exactly_twelve_long(text: str, inside: bool) -> None:
    assert contains_mac(text) is inside
    assert (mask_macs(text.encode()) != text.encode()) is inside
