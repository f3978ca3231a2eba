"""What both command-line tools (`footfall-sensor`, `footfall-collector`) start the same way.

The top-level group of each takes `--log-level` (logs to stderr, never a MAC address) and `--version`;
a config file that does not load becomes a click error (its message, no traceback).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TypeVar

import click

from footfall.configfile import ConfigError

T = TypeVar("T")


def package_version() -> str:
    try:
        return version("footfall")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0+unknown"


class ToolGroup(click.Group):
    """A group whose commands never end in a traceback for a path or a file: one line, exit status 1.

    A file that cannot be opened or written (a missing directory, no permission, a full disk) or that is
    not the text it should be arrives here as OSError or UnicodeDecodeError, from whatever command.
    """

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise click.ClickException(
                f"not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset {exc.start}"
            ) from None


def tool_group(prog_name: str) -> Callable[[Callable[[], None]], click.Group]:
    """Decorator: the tool's top-level click group, its help the function's docstring."""

    def decorate(f: Callable[[], None]) -> click.Group:
        @click.group(cls=ToolGroup, context_settings={"help_option_names": ["-h", "--help"]})
        @click.option(
            "--log-level",
            default="info",
            show_default=True,
            envvar="FOOTFALL_LOG_LEVEL",
            type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
            help="Logging verbosity (logs go to stderr and never contain a MAC address).",
        )
        @click.version_option(package_version(), prog_name=prog_name)
        @functools.wraps(f)
        def group(log_level: str) -> None:
            logging.basicConfig(
                level=log_level.upper(),
                stream=sys.stderr,
                format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            )
            f()

        return group

    return decorate


def load_or_fail(load: Callable[[Path | None], T], path: Path | None) -> T:
    """`load(path)`, a `ConfigError` turned into a click error."""
    try:
        return load(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
