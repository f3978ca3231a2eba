"""The optional compiled build of the sensor's hot path (metadata lives in pyproject.toml).

    FOOTFALL_COMPILE=1     compile sensor.buildinfo.HOT_MODULES with mypyc; fail if that cannot be done
    FOOTFALL_COMPILE=auto  compile if mypyc and a C compiler are present, else install the pure build
    unset or 0             the pure-Python build (the dev editable install, CI's bootstrap)

mypyc type-checks with the project's mypy configuration, so the build needs the runtime dependencies
installed (pip install --no-build-isolation, after the package itself: see scripts/install).
`FOOTFALL_COMPILE=1 python setup.py build_ext --inplace` puts the extensions next to the sources,
which makes an editable install run compiled (`footfall-sensor doctor` says which build runs).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

from setuptools import setup

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sensor.buildinfo import HOT_MODULES  # standard library only


def _compiler() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


def ext_modules() -> list[Any]:
    mode = os.environ.get("FOOTFALL_COMPILE", "0").strip().lower()
    if mode in ("", "0", "no"):
        return []
    if mode not in ("1", "yes", "auto"):
        raise SystemExit(f"FOOTFALL_COMPILE={mode!r}: expected 1, auto or 0")
    try:
        from mypyc.build import mypycify
    except ImportError:
        if mode == "auto":
            print("footfall: mypyc not installed: pure-Python build", file=sys.stderr)
            return []
        raise SystemExit("FOOTFALL_COMPILE=1 needs mypyc: pip install mypy") from None
    if not _compiler():
        if mode == "auto":
            print("footfall: no C compiler: pure-Python build", file=sys.stderr)
            return []
        raise SystemExit("FOOTFALL_COMPILE=1 needs a C compiler: apt-get install gcc python3-dev")
    paths = [name.replace(".", "/") + ".py" for name in HOT_MODULES]
    return list(mypycify(paths, opt_level="3"))


setup(ext_modules=ext_modules())
