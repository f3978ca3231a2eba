"""Pseudonymisation: keyed, truncated, deterministic within an epoch and unlinkable across epochs."""

from __future__ import annotations

import hmac
from hashlib import sha256

import pytest

from sensor.keys.pseudonym import Epoch, FixedSalt, Pseudonymizer

MAC = bytes.fromhex("3c22fb123456")


class TwoEpochs:
    """Epoch 'a' before t=100, 'b' from t=100 on, with different salts."""

    def __init__(self) -> None:
        self.calls = 0

    def epoch_at(self, ts_ns: int) -> Epoch:
        self.calls += 1
        if ts_ns < 100:
            return Epoch("a", b"salt-a" * 6, 0, 100)
        return Epoch("b", b"salt-b" * 6, 100, 200)


def test_pseudonym_is_truncated_hmac_sha256_of_the_address() -> None:
    salt = b"k" * 32
    expected = hmac.new(salt, MAC, sha256).hexdigest()[:16]
    assert Pseudonymizer(FixedSalt(salt)).pseudonym(MAC, 0) == expected


@pytest.mark.parametrize("bits", [32, 64, 128])
def test_pseudonym_length_follows_the_configured_bits(bits: int) -> None:
    assert len(Pseudonymizer(FixedSalt(b"k" * 32), bits).pseudonym(MAC, 0)) == bits // 4


@pytest.mark.parametrize("bits", [30, 48, 300])
def test_pseudonym_length_outside_the_range_is_refused(bits: int) -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        Pseudonymizer(FixedSalt(b"k"), bits)


def test_same_address_differs_across_epochs_and_matches_within_one() -> None:
    p = Pseudonymizer(TwoEpochs())
    a1, a2, b1 = p.pseudonym(MAC, 10), p.pseudonym(MAC, 20), p.pseudonym(MAC, 150)
    assert a1 == a2
    assert a1 != b1
    assert p.epoch == "b"


def test_salt_source_is_asked_only_when_leaving_the_cached_epoch() -> None:
    source = TwoEpochs()
    p = Pseudonymizer(source)
    for t in range(0, 100, 7):
        p.pseudonym(MAC, t)
    assert source.calls == 1


def test_salt_never_appears_in_an_epoch_repr() -> None:
    assert "salt-a" not in repr(TwoEpochs().epoch_at(0))
