"""Load a YAML file into a pydantic model, with errors that name the file, line, key, value and expectation.

PyYAML's composed node tree keeps each key's line; pydantic's error `loc` is the key path. Joining the
two gives messages like:

    config/sensor.yaml:12: presence.visit_timeout_s = -5: Input should be greater than 0
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:  # PyYAML is imported when a file is read: a replay without --config never needs it
    import yaml

M = TypeVar("M", bound=BaseModel)


class Section(BaseModel):
    """Base of every config section: unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(Exception):
    """One or more problems in a config file; `str()` is one line per problem."""

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def _line_index(
    node: yaml.Node, prefix: tuple[str | int, ...], out: dict[tuple[str | int, ...], int]
) -> None:
    import yaml

    out[prefix] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value))
            out[key] = key_node.start_mark.line + 1
            _line_index(value_node, key, out)
            out[key] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*prefix, i), out)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_model(path: Path, model: type[M], overrides: dict[str, Any] | None = None) -> M:
    """Parse `path` as YAML and validate it as `model`; raise ConfigError with precise locations."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot read config: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            path, [f"{path}: not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset {exc.start}"]
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, [f"{where}: not valid YAML: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            path, [f"{path}:1: expected a mapping of sections at the top, got {type(data).__name__}"]
        )
    lines: dict[tuple[str | int, ...], int] = {}
    if node is not None:
        _line_index(node, (), lines)
    if overrides:
        data = _merge(data, overrides)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, _problems(path, exc, data, lines)) from None


def validate_model(model: type[M], data: dict[str, Any], origin: str = "<defaults>") -> M:
    """Validate in-memory settings (embedded defaults, CLI overrides) with the same error format."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(Path(origin), _problems(Path(origin), exc, data, {})) from None


def _problems(
    path: Path, exc: ValidationError, data: Any, lines: dict[tuple[str | int, ...], int]
) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        line = _nearest_line(loc, lines)
        key = ".".join(str(p) for p in loc) or "(top)"
        where = f"{path}:{line}" if line else str(path)
        if err["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown key {key!r}: not a setting here (check the spelling)")
        elif err["type"] == "missing":
            problems.append(f"{where}: {key}: required setting is missing")
        else:
            problems.append(f"{where}: {key} = {_describe(err.get('input'))}: {err['msg']}")
    return problems


def _nearest_line(loc: tuple[Any, ...], lines: dict[tuple[str | int, ...], int]) -> int:
    for n in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:n]))
        if line:
            return line
    return 0


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
