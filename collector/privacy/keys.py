"""The deployment's token key file on the collector (footfall/tokens.py has the key and why there is one)."""

from __future__ import annotations

from pathlib import Path

from collector.privacy.registry import PrivacyError
from footfall.secretfile import KeyFileError
from footfall.tokens import TokenKey


def init_token_key(path: Path) -> str:
    """Create the deployment's token key file (0600, never overwritten); returns its public key id."""
    key = TokenKey.generate()
    try:
        key.save(path)
        return key.key_id
    finally:
        key.destroy()


def load_token_key(path: Path | None) -> TokenKey:
    if path is None:
        raise PrivacyError(
            "no token key: set privacy.token_key_file (create one with `footfall-collector tokens init`)"
        )
    try:
        return TokenKey.load(path)
    except KeyFileError as exc:
        raise PrivacyError(str(exc)) from None
