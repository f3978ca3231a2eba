"""The benchmarks' throwaway Mosquitto: a free loopback port, a config of the caller's settings, its log kept.

One owner for starting it and waiting until it listens, so every benchmark's broker fails the same way
(a one-line exit naming the port) when Mosquitto does not come up.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MOSQUITTO = next((p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).exists()), "mosquitto")


@contextmanager
def mosquitto(work: Path, settings: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """(port, process) of a broker listening on 127.0.0.1 with `settings` (mosquitto.conf lines)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    conf = work / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{settings}")
    with (work / "mosquitto.log").open("ab") as log:
        process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=log)  # limits: inherited
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"mosquitto did not listen on port {port} within 10 s") from None
                time.sleep(0.05)
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=10)
