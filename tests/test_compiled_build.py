"""The mypyc-compiled hot path gives byte-for-byte the same events as the pure-Python source.

The compiled build is made once per version of the compiled sources (a cache under build/, keyed by a
hash of them, mypy's version and the interpreter) with the same `setup.py` the installer uses; each
session copies today's tree twice and adds the cached extensions to one copy. Both replay the same real captures
through the `replay` command in their own process, and the JSON lines must be identical.
Skipped only where there is no C compiler (CI has one).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import mypy.version
import pytest

from sensor.buildinfo import HOT_MODULES
from tests.conftest import REPO

# The first run of a source version compiles it (~1 min on an idle 2-core machine, several when shared).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

SOURCES = ("sensor", "footfall")
BUILD_FILES = ("setup.py", "pyproject.toml", "README.md")
# What the compiled code depends on: the hot modules and the modules whose types they use.
TYPED_DEPENDENCIES = (
    "sensor/config.py",
    "footfall/events.py",
    "footfall/configfile.py",
    "sensor/buildinfo.py",
)


def source_key() -> str:
    digest = hashlib.sha256(f"{sys.version} mypy {mypy.version.__version__}".encode())
    files = [name.replace(".", "/") + ".py" for name in HOT_MODULES] + list(TYPED_DEPENDENCIES)
    for name in [*files, "setup.py"]:
        digest.update(name.encode() + b"\0" + (REPO / name).read_bytes())
    return digest.hexdigest()[:16]


def copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.so")
    for top in SOURCES:
        shutil.copytree(REPO / top, dest / top, ignore=ignore)
    for name in BUILD_FILES:
        shutil.copy2(REPO / name, dest / name)


def compiled_extensions() -> Path:
    """A tree built with the installer's setup.py, once per version of the compiled sources."""
    root = REPO / "build" / f"mypyc-{source_key()}"
    if not (root / "done").exists():
        shutil.rmtree(root, ignore_errors=True)
        copy_tree(root)
        done = subprocess.run(
            [sys.executable, "setup.py", "build_ext", "--inplace"],
            check=False,
            cwd=root,
            env={**os.environ, "FOOTFALL_COMPILE": "1"},
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        (root / "done").touch()
    return root


@pytest.fixture(scope="session")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"pure": tree, "compiled": tree}: two importable copies of today's source, one with the extensions."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc}): the compiled build cannot be made here")
    built = compiled_extensions()
    base = tmp_path_factory.mktemp("builds")
    pure, compiled = base / "pure", base / "compiled"
    copy_tree(pure)
    copy_tree(compiled)
    for extension in built.rglob("*.so"):
        if "build" not in extension.relative_to(built).parts:
            target = compiled / extension.relative_to(built)
            shutil.copy2(extension, target)
    return {"pure": pure, "compiled": compiled}


def run(tree: Path, *code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [sys.executable, "-c", "\n".join(code)],
        check=False,
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def replay_each(tree: Path, seed: Path, out: Path, captures: list[Path]) -> str:
    """Replay each capture on its own (their dates span years: merged, silence would fill the gaps with
    empty intervals), all in one process; the events of capture i go to out/i.jsonl."""
    out.mkdir()
    calls = [
        f"main(['replay', {str(c)!r}, '--to', 'jsonl', '--out', {str(out / f'{i}.jsonl')!r},"
        f" '--seed', {str(seed)!r}, '--quiet'], standalone_mode=False)"
        for i, c in enumerate(captures)
    ]
    done = run(tree, "from sensor.cli.main import main", *calls)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def test_each_build_reports_itself(builds: dict[str, Path]) -> None:
    for kind, tree in builds.items():
        done = run(tree, "from sensor import buildinfo", "print(buildinfo.build())")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == kind


def test_the_compiled_tree_loads_every_hot_module_from_an_extension(builds: dict[str, Path]) -> None:
    done = run(builds["compiled"], "from sensor import buildinfo", "print(*buildinfo.compiled_modules())")
    assert done.stdout.split() == list(HOT_MODULES)


def test_the_compiled_hot_values_refuse_an_assignment_at_run_time(builds: dict[str, Path]) -> None:
    """The interpreted build's values are immutable by mypy only (tests/test_frames.py); these natively."""
    done = run(
        builds["compiled"],
        "import dataclasses",
        "from sensor.decode import frames",
        "from sensor.estimate.spans import VisitSpan",
        # by field name: compiled, the fields' types are classes, not the strings of the source
        "SAMPLE = dict.fromkeys(['ts_ns', 'linktype', 'orig_len', 'seq', 'start_ns', 'last_ns'], 1)",
        "SAMPLE.update(dict.fromkeys(['data', 'transmitter', 'station', 'bssid'], b'x'), ie_ids=(1,))",
        "SAMPLE.update(dict.fromkeys(['randomized', 'directed', 'from_station', 'inside', 'fixed'], True))",
        "SAMPLE.update(dict.fromkeys(['rssi_dbm', 'freq_mhz', 'channel', 'consent'], None))",
        "for cls in (frames.CaptureRecord, frames.ProbeRequest, frames.Sighting, frames.ConnectedFrame,",
        "            frames.ConnectedSighting, VisitSpan):",
        "    fields = dataclasses.fields(cls)",
        "    value = cls(*(SAMPLE.get(f.name, 's') for f in fields))",
        "    for name in [f.name for f in fields]:",
        "        try:",
        "            setattr(value, name, getattr(value, name))",
        "        except AttributeError:",
        "            print('refused', cls.__name__, name)",
        "        else:",
        "            print('changed', cls.__name__, name)",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4 + 10 + 10 + 10 + 11 + 5
    assert all(line.startswith("refused") for line in lines), done.stdout


def test_compiled_and_pure_builds_replay_real_captures_to_identical_json_lines(
    builds: dict[str, Path], shared_data: Path, tmp_path: Path
) -> None:
    seed = tmp_path / "store.seed"
    made = run(
        builds["pure"],
        "from sensor.cli.main import main",
        f"main(['keys', 'seed', '--store', 'lab', '--out', {str(seed)!r}, '--at', '2000-01-01T00:00'],"
        " standalone_mode=False)",
    )
    assert made.returncode == 0, made.stderr
    captures = [
        *sorted((shared_data / "fryza-lab").glob("*.pcap")),
        *sorted((shared_data / "captures").glob("*.*cap")),
        REPO / "tests" / "data" / "fryza-2022-11-22-head.pcap",
        REPO / "sensor" / "demo" / "demo-store.pcap",
    ]
    summaries = {}
    for kind, tree in builds.items():
        stderr = replay_each(tree, seed, tmp_path / kind, captures)
        # "replayed N frames (M probe requests) in T s: ..." without the time
        summaries[kind] = [
            line.split(" in ")[0] for line in stderr.splitlines() if line.startswith("replayed")
        ]
    assert len(summaries["pure"]) == len(captures)
    assert summaries["compiled"] == summaries["pure"]
    for i, capture in enumerate(captures):
        pure = (tmp_path / "pure" / f"{i}.jsonl").read_bytes()
        compiled = (tmp_path / "compiled" / f"{i}.jsonl").read_bytes()
        assert compiled == pure, f"{capture.name}: the builds' JSON lines differ"
    assert sum(len(path.read_bytes()) > 0 for path in (tmp_path / "pure").iterdir()) >= 10
