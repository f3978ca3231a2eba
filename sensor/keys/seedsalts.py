"""Salts straight from a store seed, for replaying captures: any epoch from the seed's anchor on.

A sensor never holds its store's seed (it holds only the current, ratcheting salt), because the seed
recomputes every pseudonym the store ever had. An analyst replaying old captures does hold one, kept
offline: with it, replays are deterministic (same seed, same capture → same pseudonyms and event ids)
and agree with what the store's sensors published in the same epochs.
"""

from __future__ import annotations

from sensor.keys.keystore import StoreSeed
from sensor.keys.pseudonym import Epoch


class SeedTooLate(ValueError):
    """The capture is older than the seed: its epochs lie before the ratchet's anchor.

    Deliberately not a LookupError (which the pipeline counts and skips per frame): a replay with the
    wrong seed must stop with one clear line rather than drop every frame.
    """


class SeedSalts:
    """A `SaltSource` over a `StoreSeed`; ratchets forward from the last epoch it served."""

    def __init__(self, seed: StoreSeed) -> None:
        self._seed = seed
        self._index = -1
        self._salt = bytearray()

    def epoch_at(self, ts_ns: int) -> Epoch:
        index = self._seed.schedule.index_at(ts_ns)
        if index != self._index:
            old = self._salt
            try:
                self._salt = self._seed.salt_for(index)
            except ValueError as exc:
                raise SeedTooLate(str(exc)) from None
            old[:] = bytes(len(old))
            self._index = index
        span = self._seed.schedule.span(index)
        return Epoch(span.id, self._salt, span.start_ns, span.end_ns)

    def close(self) -> None:
        self._salt[:] = bytes(len(self._salt))
        self._seed.destroy()
