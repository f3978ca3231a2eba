"""A small certificate authority for one deployment: the broker, every sensor, every collector.

The PKI directory (0700; every key 0600, written unencrypted because Mosquitto and the clients start
unattended, so keep the directory on the admin machine and copy out only what each host needs):

    ca.key, ca.crt          the CA (EC P-256); only `issue`, `revoke` and `crl` need ca.key
    crl.pem                 revoked certificates, for Mosquitto's `crlfile`; renew before it expires
    mosquitto.acl           the broker's ACL, rewritten from the index by every issue and revoke
    index.json              every certificate issued: serial, kind, name, validity, revocation
    broker.crt, broker.key  the broker's server certificate (SANs: its host names and addresses)
    sensors/<store>/<sensor>.crt|.key    one per sensor; certificate CN `<store>/<sensor>`
    collectors/<name>.crt|.key           one per collector; CN `<name>`

Mosquitto takes the client certificate's CN as the MQTT user name (`use_identity_as_username`), so
the CN is the identity the ACL speaks of: a sensor may publish only under
`<prefix>/<store>/<sensor>/#` and read only `<prefix>/<store>/control/#`; a collector reads
`<prefix>/#` and publishes `<prefix>/+/control/#`. Mosquitto's pattern ACLs cannot take the store out
of `<store>/<sensor>`, which is why the ACL lists every identity and is generated here.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from footfall.events import COLLECTOR_LEVELS, NAME_PATTERN

Kind = Literal["broker", "sensor", "collector"]
KINDS: tuple[str, ...] = get_args(Kind)
REASONS = {
    r.name: r
    for r in x509.ReasonFlags
    if r not in (x509.ReasonFlags.unspecified, x509.ReasonFlags.remove_from_crl)
}
_NAME = NAME_PATTERN[1:-1]  # footfall.events.Name, unanchored: a topic level
_HOST = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
# Kind → (how its name must look, where its files go, extended key usage).
_KIND_RULES: dict[str, tuple[re.Pattern[str], str, x509.ObjectIdentifier]] = {
    "sensor": (re.compile(rf"^{_NAME}/{_NAME}$"), "sensors/{name}", ExtendedKeyUsageOID.CLIENT_AUTH),
    "collector": (re.compile(rf"^{_NAME}$"), "collectors/{name}", ExtendedKeyUsageOID.CLIENT_AUTH),
    "broker": (_HOST, "broker", ExtendedKeyUsageOID.SERVER_AUTH),
}
_EXPECTED = {
    "sensor": "<store>/<sensor>, each 1-63 of A-Z a-z 0-9 _ . - (e.g. paris-01/door-1)",
    "collector": "1-63 of A-Z a-z 0-9 _ . - (e.g. collector-1)",
    "broker": "the broker's host name (its addresses go in --host)",
}


class PkiError(Exception):
    """A PKI operation that cannot be done; the message says what and where, in one line."""


@dataclass(frozen=True, slots=True)
class Issued:
    """One certificate of the index."""

    serial: str  # hex
    kind: str
    name: str
    not_before: str  # ISO 8601, UTC
    not_after: str
    revoked_at: str | None = None
    reason: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def check_name(kind: str, name: str) -> None:
    """Raise PkiError unless `name` is a valid identity for `kind`."""
    if kind not in _KIND_RULES:
        raise PkiError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    if not _KIND_RULES[kind][0].match(name):
        raise PkiError(f"bad {kind} name {name!r}: expected {_EXPECTED[kind]}")
    if kind == "sensor" and name.split("/", 1)[1].lower() in COLLECTOR_LEVELS:
        raise PkiError(
            f"bad sensor name {name!r}: {name.split('/', 1)[1]!r} is a topic level only the collector writes"
            f" ({', '.join(sorted(COLLECTOR_LEVELS))}); its certificate could speak for the collector"
        )


class Pki:
    """The CA in `root`; every method that signs takes `now` (aware UTC)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        if not (root / "ca.crt").is_file() or not (root / "index.json").is_file():
            raise PkiError(f"{root}: no PKI here (create one with `footfall-collector pki init`)")
        try:
            self._index: dict[str, Any] = json.loads((root / "index.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PkiError(f"{root / 'index.json'}: unreadable: {exc}") from None
        self.ca_cert = x509.load_pem_x509_certificate((root / "ca.crt").read_bytes())

    # -- creation -----------------------------------------------------------------------------------------
    @classmethod
    def init(
        cls,
        root: Path,
        now: datetime,
        *,
        name: str = "footfall CA",
        days: int = 3650,
        prefix: str = "footfall/v1",
    ) -> Pki:
        if (root / "ca.key").exists() or (root / "index.json").exists():
            raise PkiError(f"{root}: a PKI is already there (ca.key, index.json); not overwritten")
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_key(root / "ca.key", key)
        _write(root / "ca.crt", cert.public_bytes(serialization.Encoding.PEM))
        _write(
            root / "index.json",
            json.dumps({"version": 1, "topic_prefix": prefix, "certificates": []}).encode(),
        )
        pki = cls(root)
        pki.write_crl(now)
        pki.write_acl(now)
        return pki

    def issue(
        self,
        kind: str,
        name: str,
        now: datetime,
        *,
        days: int = 825,
        hosts: Sequence[str] = (),
        force: bool = False,
    ) -> Issued:
        """A key and certificate for `name`; with `force`, an active one of the same name is revoked first."""
        check_name(kind, name)
        current = self.find(name)
        if current is not None and current.active:
            if current.kind != kind:
                raise PkiError(f"{name!r} is already a {current.kind}; names are unique across kinds")
            if not force:
                raise PkiError(
                    f"{kind} {name!r} already has certificate {current.serial} (until {current.not_after}): "
                    "revoke it first, or give --force to replace it"
                )
            self.revoke(name, now, reason="superseded")
        san = _subject_alt_names([name, *hosts]) if kind == "broker" else None
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(min(now + timedelta(days=days), self.ca_cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([_KIND_RULES[kind][2]]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_cert.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        cert = builder.sign(self._ca_key(), hashes.SHA256())
        stem = self.root / _KIND_RULES[kind][1].format(name=name)
        _write_key(stem.with_name(stem.name + ".key"), key)
        _write(stem.with_name(stem.name + ".crt"), cert.public_bytes(serialization.Encoding.PEM))
        issued = Issued(
            format(cert.serial_number, "x"),
            kind,
            name,
            _iso(cert.not_valid_before_utc),
            _iso(cert.not_valid_after_utc),
        )
        self._index["certificates"].append(asdict(issued))
        self._save_index()
        self.write_acl(now)
        return issued

    def paths(self, issued: Issued) -> tuple[Path, Path]:
        """(certificate, key) files of an identity."""
        stem = self.root / _KIND_RULES[issued.kind][1].format(name=issued.name)
        return stem.with_name(stem.name + ".crt"), stem.with_name(stem.name + ".key")

    # -- revocation ---------------------------------------------------------------------------------------
    def revoke(self, name: str, now: datetime, *, reason: str = "unspecified", crl_days: int = 30) -> Issued:
        """Revoke the active certificate of `name`; rewrites the CRL and the ACL."""
        if reason != "unspecified" and reason not in REASONS:
            raise PkiError(
                f"unknown reason {reason!r}: expected one of unspecified, {', '.join(sorted(REASONS))}"
            )
        current = self.find(name)
        if current is None or not current.active:
            raise PkiError(f"no active certificate for {name!r} in {self.root / 'index.json'}")
        revoked = replace(current, revoked_at=_iso(now), reason=reason)
        self._index["certificates"] = [
            asdict(revoked) if c["serial"] == current.serial else c for c in self._index["certificates"]
        ]
        self._save_index()
        self.write_crl(now, days=crl_days)
        self.write_acl(now)
        return revoked

    def write_crl(self, now: datetime, *, days: int = 30) -> Path:
        """The CRL (valid `days`): Mosquitto refuses every client once it is past its next update."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.ca_cert.subject)
            .last_update(now - timedelta(minutes=5))
            .next_update(now + timedelta(days=days))
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_cert.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )
        for cert in self.certificates():
            if cert.revoked_at is None:
                continue
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(int(cert.serial, 16))
                .revocation_date(datetime.fromisoformat(cert.revoked_at))
            )
            if cert.reason in REASONS:
                entry = entry.add_extension(x509.CRLReason(REASONS[cert.reason]), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        crl = builder.sign(self._ca_key(), hashes.SHA256())
        path = self.root / "crl.pem"
        _write(path, crl.public_bytes(serialization.Encoding.PEM))
        return path

    # -- the broker's ACL ---------------------------------------------------------------------------------
    def write_acl(self, now: datetime) -> Path:
        prefix = self._index.get("topic_prefix", "footfall/v1")
        lines = [
            f"# Generated by `footfall-collector pki` from {self.root / 'index.json'} at {_iso(now)}.",
            "# Do not edit: every `pki issue` and `pki revoke` rewrites it. Reload Mosquitto (SIGHUP) after.",
            "# No rule, no access: anything not granted below is denied.",
        ]
        for cert in sorted(self.certificates(), key=lambda c: (c.kind, c.name)):
            if not cert.active or cert.kind == "broker":
                continue
            if cert.kind == "sensor":
                store = cert.name.split("/", 1)[0]
                sensor = cert.name.split("/", 1)[1]
                grants = [
                    f"topic write {prefix}/{cert.name}/#",
                    f"topic read {prefix}/{store}/control/#",
                    f"topic read {prefix}/{store}/ack/{sensor}",
                ]
            else:
                grants = [
                    f"topic read {prefix}/#",
                    f"topic write {prefix}/+/control/#",
                    f"topic write {prefix}/+/trigger",
                    f"topic write {prefix}/+/ack/+",
                ]
            lines += [
                "",
                f"# {cert.kind} {cert.name}, certificate {cert.serial}",
                f"user {cert.name}",
                *grants,
            ]
        path = self.root / "mosquitto.acl"
        _write(path, ("\n".join(lines) + "\n").encode())
        return path

    # -- reading ------------------------------------------------------------------------------------------
    def certificates(self) -> list[Issued]:
        return [Issued(**c) for c in self._index["certificates"]]

    def find(self, name: str) -> Issued | None:
        """The newest certificate issued to `name`."""
        matches = [c for c in self.certificates() if c.name == name]
        return matches[-1] if matches else None

    def _ca_key(self) -> ec.EllipticCurvePrivateKey:
        try:
            key = serialization.load_pem_private_key((self.root / "ca.key").read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise PkiError(f"{self.root / 'ca.key'}: cannot load the CA key: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PkiError(f"{self.root / 'ca.key'}: not an EC key")
        return key

    def _save_index(self) -> None:
        _write(self.root / "index.json", json.dumps(self._index, indent=1).encode())


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _subject_alt_names(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not _HOST.match(host):
                raise PkiError(f"bad --host {host!r}: expected a DNS name or an IP address") from None
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write atomically (a temporary file renamed over), with `mode` from the start."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(path, pem, 0o600)
