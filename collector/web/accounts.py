"""Dashboard accounts and their login sessions, kept in the collector's own database (both backends).

Passwords are hashed with argon2id (argon2-cffi's `PasswordHasher`, RFC 9106 parameters): memory-hard,
so a stolen table is slow to crack even on GPUs, and the hash string carries its own salt and
parameters, so they can be raised later (`needs_rehash` upgrades a hash at the next login).

A session id is 32 random bytes in the cookie; the database holds only its SHA-256, so a copy of the
database opens no session. Each session has its own CSRF token and an absolute expiry.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from collector.storage.base import Store
from collector.storage.base import us as _us
from collector.storage.dashboard import Query, Transaction, query_of, transaction_of
from footfall.times import from_us as _dt

Role = Literal["viewer", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "admin")
ALL = "*"
SESSION_LIFETIME = timedelta(hours=12)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10
_HASHER = PasswordHasher()
# Verified when the name is unknown, so that a wrong name takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


class AccountError(Exception):
    """A refused account operation; the message says why."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    stores: tuple[str, ...]  # ("*",) for every store

    @property
    def all_stores(self) -> bool:
        return ALL in self.stores

    def may_see(self, store: str) -> bool:
        """The scope rule: a viewer of store A gets nothing of store B."""
        return self.all_stores or store in self.stores

    def visible(self, stores: Sequence[str]) -> list[str]:
        return [s for s in stores if self.may_see(s)]


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf: str
    expires: datetime


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise AccountError(
            f"user name {name!r}: 1-64 letters, digits or . _ @ -, starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    return password


def _session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Accounts:
    """Users and sessions over one open store; `transaction(doing)` yields a `Db` inside a transaction."""

    def __init__(self, transaction: Transaction, query: Query) -> None:
        self._transaction = transaction
        self._query = query

    # -- users ----------------------------------------------------------------------------------------------
    def add(self, name: str, password: str, role: Role, stores: Sequence[str], now: datetime) -> None:
        check_name(name)
        if role not in ROLES:
            raise AccountError(f"role {role!r}: expected one of {', '.join(ROLES)}")
        if not stores:
            raise AccountError("give the stores the user may see (--store S, or --all)")
        digest = _HASHER.hash(check_password(password))
        scope = json.dumps(sorted(set(stores)))
        with self._transaction(f"add user {name}") as db:
            if db.execute("SELECT 1 FROM web_users WHERE name = ?", (name,)).fetchone():
                raise AccountError(f"user {name!r} exists already (users passwd, or users remove first)")
            db.execute("INSERT INTO web_users VALUES (?, ?, ?, ?, ?)", (name, digest, role, scope, _us(now)))

    def users(self) -> list[User]:
        rows = self._query("list users", "SELECT name, role, stores FROM web_users ORDER BY name", ())
        return [User(r[0], r[1], tuple(json.loads(r[2]))) for r in rows]

    def remove(self, name: str) -> None:
        with self._transaction(f"remove user {name}") as db:
            if not db.execute("DELETE FROM web_users WHERE name = ?", (name,)).rowcount:
                raise AccountError(f"no user {name!r}")
            db.execute("DELETE FROM web_sessions WHERE name = ?", (name,))

    def set_password(self, name: str, password: str) -> None:
        """A new password; every session of the user ends (a stolen session dies with the old password)."""
        digest = _HASHER.hash(check_password(password))
        with self._transaction(f"change the password of {name}") as db:
            if not db.execute(
                "UPDATE web_users SET password_hash = ? WHERE name = ?", (digest, name)
            ).rowcount:
                raise AccountError(f"no user {name!r}")
            db.execute("DELETE FROM web_sessions WHERE name = ?", (name,))

    def verify(self, name: str, password: str) -> User | None:
        """The user if the password is right; None otherwise (unknown names take the same time)."""
        rows = self._query(
            "check a password", "SELECT password_hash, role, stores FROM web_users WHERE name = ?", (name,)
        )
        digest = rows[0][0] if rows else _DUMMY_HASH
        try:
            _HASHER.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return None
        if not rows:
            return None
        if _HASHER.check_needs_rehash(digest):
            with self._transaction(f"rehash the password of {name}") as db:
                db.execute(
                    "UPDATE web_users SET password_hash = ? WHERE name = ?", (_HASHER.hash(password), name)
                )
        return User(name, rows[0][1], tuple(json.loads(rows[0][2])))

    # -- sessions -------------------------------------------------------------------------------------------
    def open_session(
        self, user: User, now: datetime, lifetime: timedelta = SESSION_LIFETIME
    ) -> tuple[str, str]:
        """A new session: (the id for the cookie, its CSRF token). Expired sessions are swept here."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._transaction(f"open a session for {user.name}") as db:
            db.execute("DELETE FROM web_sessions WHERE expires_us <= ?", (_us(now),))
            db.execute(
                "INSERT INTO web_sessions VALUES (?, ?, ?, ?, ?)",
                (_session_key(session_id), user.name, csrf, _us(now), _us(now + lifetime)),
            )
        return session_id, csrf

    def session(self, session_id: str, now: datetime) -> Session | None:
        """The live session of this cookie value, with its user; None if unknown or expired."""
        rows = self._query(
            "read a session",
            "SELECT s.csrf, s.expires_us, u.name, u.role, u.stores FROM web_sessions s"
            " JOIN web_users u ON u.name = s.name WHERE s.id_hash = ? AND s.expires_us > ?",
            (_session_key(session_id), _us(now)),
        )
        if not rows:
            return None
        csrf, expires, name, role, stores = rows[0]
        return Session(User(name, role, tuple(json.loads(stores))), csrf, _dt(expires))

    def close_session(self, session_id: str) -> None:
        with self._transaction("close a session") as db:
            db.execute("DELETE FROM web_sessions WHERE id_hash = ?", (_session_key(session_id),))


def open_accounts(store: Store) -> Accounts:
    """The accounts of an open store (either backend)."""
    return Accounts(transaction_of(store), query_of(store))
