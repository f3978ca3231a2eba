"""`footfall-collector pki ...`: the deployment's CA, its certificates, its CRL and the broker's ACL.

footfall-collector pki --dir /etc/footfall/pki init
footfall-collector pki issue broker mqtt.store.lan --host 192.168.1.10
footfall-collector pki issue collector collector-1
footfall-collector pki issue sensor paris-01/door-1
footfall-collector pki revoke paris-01/door-1 --reason key_compromise
footfall-collector pki crl            # before crl.pem's next update (30 days): cron or a timer
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from collector.pki.ca import KINDS, REASONS, Issued, Pki, PkiError

_DAYS = click.IntRange(1, 36_500)


def _now() -> datetime:
    return datetime.now(UTC)


def _open(root: Path) -> Pki:
    try:
        return Pki(root)
    except PkiError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
@click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/etc/footfall/pki"),
    show_default=True,
    envvar="FOOTFALL_PKI_DIR",
    help="The PKI directory (keys 0600). Env: FOOTFALL_PKI_DIR.",
)
@click.pass_context
def pki(ctx: click.Context, root: Path) -> None:
    """TLS identities: a CA, the broker's certificate, one client certificate per sensor and collector."""
    ctx.obj = root


@pki.command()
@click.option("--name", default="footfall CA", show_default=True, help="The CA certificate's common name.")
@click.option("--days", type=_DAYS, default=3650, show_default=True, help="CA validity in days.")
@click.option(
    "--topic-prefix",
    default="footfall/v1",
    show_default=True,
    help="The deployment's MQTT topic prefix (for the ACL).",
)
@click.pass_obj
def init(root: Path, name: str, days: int, topic_prefix: str) -> None:
    """Create the CA (ca.key, ca.crt), an empty CRL and an empty ACL in --dir."""
    if not topic_prefix or any(c in topic_prefix for c in "#+") or topic_prefix.endswith("/"):
        raise click.BadParameter(
            f"{topic_prefix!r}: a topic prefix without + # or a trailing /", param_hint="'--topic-prefix'"
        )
    try:
        made = Pki.init(root, _now(), name=name, days=days, prefix=topic_prefix)
    except (PkiError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{root}: CA {name!r} until {made.ca_cert.not_valid_after_utc:%Y-%m-%d}; ca.key is the secret to guard"
    )


@pki.command()
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("name")
@click.option("--days", type=_DAYS, default=825, show_default=True, help="Certificate validity in days.")
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="HOST",
    help="broker only: another DNS name or IP address (repeatable).",
)
@click.option(
    "--force", is_flag=True, help="Revoke the name's active certificate (superseded) and issue a new one."
)
@click.pass_obj
def issue(root: Path, kind: str, name: str, days: int, hosts: tuple[str, ...], force: bool) -> None:
    """Issue a certificate: KIND broker|sensor|collector, NAME its host name, <store>/<sensor> or name."""
    if hosts and kind != "broker":
        raise click.BadParameter("only a broker certificate takes --host", param_hint="'--host'")
    ca = _open(root)
    try:
        issued = ca.issue(kind, name, _now(), days=days, hosts=hosts, force=force)
    except (PkiError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    cert, key = ca.paths(issued)
    click.echo(f"{kind} {name}: certificate {issued.serial} until {issued.not_after[:10]}")
    click.echo(f"  {cert}\n  {key} (0600)")
    click.echo(f"  with {root / 'ca.crt'}; ACL rewritten: reload Mosquitto (SIGHUP)")


@pki.command()
@click.argument("name")
@click.option(
    "--reason",
    type=click.Choice(["unspecified", *sorted(REASONS)]),
    default="unspecified",
    show_default=True,
    help="Why (recorded in the CRL).",
)
@click.option(
    "--crl-days", type=_DAYS, default=30, show_default=True, help="Validity of the new CRL in days."
)
@click.pass_obj
def revoke(root: Path, name: str, reason: str, crl_days: int) -> None:
    """Revoke NAME's certificate: it goes in crl.pem and out of the ACL. Then reload Mosquitto."""
    try:
        revoked = _open(root).revoke(name, _now(), reason=reason, crl_days=crl_days)
    except (PkiError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revoked {revoked.kind} {name} (certificate {revoked.serial}, {reason})")
    click.echo(
        f"  {root / 'crl.pem'} and {root / 'mosquitto.acl'} rewritten: reload Mosquitto (SIGHUP) to refuse it,"
        " restart it to cut off a connection already open"
    )


@pki.command()
@click.option("--days", type=_DAYS, default=30, show_default=True, help="Validity of the CRL in days.")
@click.pass_obj
def crl(root: Path, days: int) -> None:
    """Re-sign crl.pem: Mosquitto refuses every client once the CRL is past its next update."""
    try:
        path = _open(root).write_crl(_now(), days=days)
    except (PkiError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{path}: valid {days} days; reload Mosquitto (SIGHUP)")


@pki.command("list")
@click.pass_obj
def list_(root: Path) -> None:
    """Every certificate issued, newest last."""
    for cert in _open(root).certificates():
        click.echo(_row(cert))


def _row(cert: Issued) -> str:
    state = (
        f"revoked {cert.revoked_at[:10]} ({cert.reason})"
        if cert.revoked_at
        else f"until {cert.not_after[:10]}"
    )
    return f"{cert.kind:<9} {cert.name:<40} {cert.serial}  {state}"
