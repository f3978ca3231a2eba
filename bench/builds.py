"""Both builds of the sensor's hot path side by side, and child processes measured whole, for the benches.

`trees(["pure", "compiled"])` gives two importable copies of today's `sensor/` and `footfall/`: one
plain, one with the mypyc extensions the installer's `setup.py` builds (FOOTFALL_COMPILE=1), cached
under bench/.cache by a hash of the sources, mypy's version and the interpreter, so a rerun on the same
code builds nothing (the first build takes about a minute on an idle 2-core machine). `measured(...)`
runs a command with one tree first on the path and returns its output with the CPU seconds (user +
sys) and peak RSS of that whole process as the kernel counted them (wait4), start-up included: the
figure to compare on a shared machine, where wall time mostly measures the other work.
"""

from __future__ import annotations

import compileall
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / ".cache"
SOURCES = ("sensor", "footfall")
BUILD_FILES = ("setup.py", "pyproject.toml", "README.md")
# A child bench script puts this tree first on sys.path instead of the repository.
TREE_ENV = "FOOTFALL_BENCH_TREE"


@dataclass(frozen=True, slots=True)
class Measured:
    stdout: str
    stderr: str
    cpu_s: float  # user + sys of the whole process
    peak_rss_mb: float


def _key() -> str:
    import mypy.version

    # "pyc": trees built before they were byte-compiled are rebuilt.
    digest = hashlib.sha256(f"{sys.version} mypy {mypy.version.__version__} pyc".encode())
    files = [REPO / name for name in BUILD_FILES[:1]]
    for top in SOURCES:
        files += sorted(p for p in (REPO / top).rglob("*.py") if "__pycache__" not in p.parts)
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _copy(dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.so")
    for top in SOURCES:
        shutil.copytree(REPO / top, dest / top, ignore=ignore)
        # Byte-compiled as an install is (pip writes the .pyc files): without them a child run with
        # PYTHONDONTWRITEBYTECODE set (this machine's environment) parsed and compiled the ~30
        # interpreted modules of a replay's start-up from source on every run (~130 M instructions).
        compileall.compile_dir(dest / top, quiet=1)
    for name in BUILD_FILES:
        shutil.copy2(REPO / name, dest / name)


def trees(builds: list[str]) -> dict[str, Path]:
    """{"pure": tree, "compiled": tree} for the builds asked for (the compiled one built if need be)."""
    out: dict[str, Path] = {}
    if "pure" in builds:
        out["pure"] = CACHE / "tree-pure"
        _copy(out["pure"])
    if "compiled" in builds:
        root = CACHE / f"tree-mypyc-{_key()}"
        if not (root / "done").exists():
            for old in CACHE.glob("tree-mypyc-*"):
                shutil.rmtree(old, ignore_errors=True)
            _copy(root)
            print(f"building the compiled tree {root.name} (mypyc, about a minute) ...", file=sys.stderr)
            done = subprocess.run(
                [sys.executable, "setup.py", "build_ext", "--inplace"],
                cwd=root,
                env={**os.environ, "FOOTFALL_COMPILE": "1"},
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"the compiled build failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
            (root / "done").touch()
        out["compiled"] = root
    return out


def measured(argv: list[str], tree: Path | None = None) -> Measured:
    """Run `argv` (with `tree` first on the path) to its end; its output, CPU time and peak RSS."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
        env[TREE_ENV] = str(tree)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        # In the tree: `python -c` puts the working directory first on sys.path, before PYTHONPATH.
        child = subprocess.Popen(argv, stdout=out, stderr=err, env=env, text=True, cwd=tree)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} ... failed ({child.returncode}):\n{stderr[-2000:]}")
    return Measured(stdout, stderr, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def child_path(repo: Path) -> str:
    """What a child bench script puts first on sys.path: its tree, else the repository."""
    return os.environ.get(TREE_ENV) or str(repo)
