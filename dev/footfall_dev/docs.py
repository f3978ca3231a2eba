"""Reference tables for the README, generated from the models so the docs cannot drift from the code.

`python -m footfall_dev.docs` rewrites the generated blocks of README.md in place; a test fails when the
README is stale. A block is delimited by `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`.
"""

from __future__ import annotations

import re
import sys
import tempfile
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

README = Path(__file__).resolve().parents[2] / "README.md"


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return " \\| ".join(repr(a).replace("'", "") for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _rows(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = info.annotation
        nested = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        if nested is not None:
            yield from _rows(nested, f"{key}.")
            continue
        if info.default is not PydanticUndefined:
            default = "—" if info.default is None else f"`{info.default}`"
        elif info.default_factory is not None:
            default = f"`{info.default_factory()}`"  # type: ignore[call-arg]
        else:
            default = "required"
        yield key, _type_name(annotation), default, (info.description or "").replace("|", "\\|")


def config_table(model: type[BaseModel]) -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {t} | {d} | {m} |" for k, t, d, m in _rows(model)]
    return "\n".join(lines)


def schema_tables() -> str:
    from footfall.events import SCHEMA_MODELS

    parts = []
    for name, model in SCHEMA_MODELS.items():
        parts.append(f"**`{name}`** — {(model.__doc__ or '').strip().splitlines()[0]}\n")
        lines = ["| field | type | meaning |", "|---|---|---|"]
        for field_name, info in model.model_fields.items():
            wire = info.alias or field_name
            meaning = (info.description or "").replace("|", "\\|")
            lines.append(f"| `{wire}` | {_type_name(info.annotation)} | {meaning} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _sensor_config() -> str:
    from sensor.config import SensorConfig

    return config_table(SensorConfig)


def _collector_config() -> str:
    from collector.config import CollectorConfig

    return config_table(CollectorConfig)


DEMO_CAPTURE = README.parent / "sensor" / "demo" / "demo-store.pcap"


def demo_report() -> str:
    """What `scripts/demo` prints at the end, made the broker-free way (replay to JSON lines, ingest, report).

    tests/test_end_to_end.py proves the MQTT path gives the same report; the figures do not depend on
    the throwaway key the demo replays with.
    """
    from click.testing import CliRunner

    from collector.cli.main import main as collector
    from sensor.cli.main import main as sensor

    def run(group: click.Group, *args: str) -> str:
        result = CliRunner().invoke(group, list(args))
        if result.exit_code != 0:
            raise RuntimeError(f"{group.name} {' '.join(args)}: {result.output}")
        return result.output

    with tempfile.TemporaryDirectory(prefix="footfall-demo-") as tmp:
        config, events, db = Path(tmp, "sensor.yaml"), Path(tmp, "events.jsonl"), Path(tmp, "footfall.db")
        config.write_text("site:\n  store: demo\n  sensor: door-1\n")  # as scripts/demo writes it
        run(
            sensor,
            "replay",
            str(DEMO_CAPTURE),
            "--config",
            str(config),
            "--to",
            "jsonl",
            "--out",
            str(events),
        )
        run(collector, "ingest", str(events), "--db", str(db))
        report = run(collector, "report", "--store", "demo", "--db", str(db))
    return f"```text\n{report.rstrip()}\n```"


BLOCKS: dict[str, Callable[[], str]] = {
    "event-schema": schema_tables,
    "sensor-config": _sensor_config,
    "collector-config": _collector_config,
    "demo-report": demo_report,
}


def render(text: str, skip: frozenset[str] = frozenset()) -> str:
    """`text` with every generated block made again (but those in `skip`)."""
    for name, make in BLOCKS.items():
        if name in skip:
            continue
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- /generated:{name} -->)", re.S)
        text = pattern.sub(lambda m, make=make: m.group(1) + make() + "\n" + m.group(2), text)  # type: ignore[misc]
    return text


def main() -> None:
    text = README.read_text()
    new = render(text)
    if new != text:
        README.write_text(new)
        print("README.md: generated sections updated", file=sys.stderr)


if __name__ == "__main__":
    main()
