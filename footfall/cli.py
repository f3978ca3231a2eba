"""What both command-line tools (`footfall-sensor`, `footfall-collector`) start the same way.

The top-level group of each takes `--log-level` (logs to stderr, never a MAC address) and `--version`;
a config file that does not load becomes a click error (its message, no traceback).

The console scripts start on a `LazyGroup`: `--help` lists the commands from a table and imports none
of them (pydantic, cryptography, paho and FastAPI cost ~1 s of start-up); running a command imports
the real group and hands over to it. Nothing heavy is imported at this module's top for that reason.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

T = TypeVar("T")


def package_version() -> str:
    # Imported here: importlib.metadata and the search for the installed distribution cost a replay's
    # start-up ~10 % (asked for by `--version`, a status event or a publishing sink only).
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("footfall")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0+unknown"


class ToolGroup(click.Group):
    """A group whose commands never end in a traceback for a path or a file: one line, exit status 1.

    A file that cannot be opened or written (a missing directory, no permission, a full disk) or that is
    not the text it should be arrives here as OSError or UnicodeDecodeError, from whatever command.

    `lazy` (name → "module:attribute") are commands imported only when looked up, so running one command
    does not pay for importing the others (`replay` does not import the calibration or live capture code).
    """

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is not None and cmd_name not in self.commands:
            module, _, attribute = target.partition(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

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


def tool_group(
    prog_name: str, cls: type[click.Group] = ToolGroup, **attrs: Any
) -> Callable[[Callable[[], None]], click.Group]:
    """Decorator: the tool's top-level click group, its help the function's docstring."""

    def decorate(f: Callable[[], None]) -> click.Group:
        @click.group(cls=cls, context_settings={"help_option_names": ["-h", "--help"]}, **attrs)
        @click.option(
            "--log-level",
            default="info",
            show_default=True,
            envvar="FOOTFALL_LOG_LEVEL",
            type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
            help="Logging verbosity (logs go to stderr and never contain a MAC address).",
        )
        @click.option(
            "--version",
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=functools.partial(_show_version, prog_name),
            help="Show the version and exit.",
        )
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


def _show_version(prog_name: str, ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`--version`, as click.version_option prints it, with the version looked up only when asked for."""
    if value and not ctx.resilient_parsing:
        click.echo(f"{prog_name}, version {package_version()}", color=ctx.color)
        ctx.exit()


class LazyGroup(click.Group):
    """The console script's group: lists `commands` (name → short help) and imports `target` to run one.

    `target` ("module:attribute") is the real group; a test checks that `commands` matches it.
    """

    def __init__(self, *args: Any, target: str, commands: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.target = target
        self.listing = dict(commands)

    def real_group(self) -> click.Group:
        module, _, attribute = self.target.partition(":")
        group = getattr(importlib.import_module(module), attribute)
        assert isinstance(group, click.Group)
        return group

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.listing)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.real_group().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        # click's own shortening, on a stand-in command that carries only the help text
        rows = [
            (name, click.Command(name, help=self.listing[name]).get_short_help_str(limit)) for name in names
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def load_or_fail(load: Callable[[Path | None], T], path: Path | None) -> T:
    """`load(path)`, a `ConfigError` turned into a click error."""
    from footfall.configfile import ConfigError

    try:
        return load(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
