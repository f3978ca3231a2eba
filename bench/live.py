"""Live sensor cost: CPU and memory of `footfall-sensor run` at a given probe-request rate, and its drops.

    sudo .venv/bin/python -m bench.live                  # 200/s and 5,000/s, 20 s each
    sudo .venv/bin/python -m bench.live --rates 200,1000,5000 --seconds 30

The whole sensor runs as in production (capture, pipeline, spool, MQTT to a local Mosquitto, metrics)
in a child process; this process creates a radiotap TAP device (a stand-in monitor interface) and
writes real probe requests from ../shared/data/fryza-lab into it at the requested rate. CPU is the
child's user+system time over the injection window (% of one core), RSS its peak (VmHWM); frames and
drops come from its metrics endpoint: kernel drops (the socket buffer overflowed) and app drops
(frames that reached Python but were not processed). Targets: <= 1 % of a core and <= 60 MB RSS at
200/s; no drops at 5,000/s. Needs root (TAP) and mosquitto.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from footfall.mqtt import BrokerSettings, MqttClient
from sensor.decode.capture import read_capture
from sensor.keys.keystore import KeyStore, StoreSeed
from sensor.keys.salts import DEFAULT_SPEC, SaltSchedule
from sensor.live.iface import RadiotapTap

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "fryza-lab" / "2022-11-22.pcap"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Result:
    rate: int
    seconds: float
    injected: int
    received: int
    kernel_drops: int
    app_drops: int
    cpu_pct: float
    rss_mb: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def thread_cpu(pid: int) -> dict[str, float]:
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        out[task.name] = (int(fields[11]) + int(fields[12])) / TICKS
    return out


def peak_rss_mb(pid: int) -> float:
    m = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m[1]) / 1024 if m else float("nan")


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    m = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(m[1]) if m else float("nan")


def wait_for(condition: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def inject(tap: RadiotapTap, frames: list[bytes], rate: int, seconds: float) -> int:
    """Write frames at `rate` per second for `seconds` (in 2 ms steps); returns how many were written."""
    start, sent, n = time.monotonic(), 0, len(frames)
    write = tap.write
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            write(frames[sent % n])
            sent += 1
        time.sleep(0.002)
    return sent


def run_one(rate: int, seconds: float, frames: list[bytes], work: Path, mosquitto: str) -> Result:
    broker_port, metrics_port = free_port(), free_port()
    (work / "mosquitto.conf").write_text(f"listener {broker_port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen([mosquitto, "-c", str(work / "mosquitto.conf")], stderr=subprocess.DEVNULL)
    # A collector stand-in, so the broker passes events on (the sensor keeps refused ones and retries).
    collector = MqttClient(BrokerSettings("127.0.0.1", broker_port, client_id=f"bench-collector-{rate}"))
    wait_for(lambda: listening(broker_port), 10)
    collector.connect()
    collector.subscribe("footfall/v1/#", lambda message: None, wait_s=5)
    now = time.time_ns()
    seed = StoreSeed.create("bench", SaltSchedule.parse(DEFAULT_SPEC, "UTC"), now)
    key = work / f"sensor-{rate}.key"
    KeyStore.provision(seed, key, now).close()
    seed.destroy()
    name = f"ffbench{rate % 10000}"
    with RadiotapTap(name) as tap:
        config = work / f"sensor-{rate}.yaml"
        config.write_text(
            f"site: {{store: bench}}\nmqtt: {{port: {broker_port}}}\nprivacy: {{key_file: {key}}}\n"
            f"capture: {{interface: {name}, recreate: false}}\n"
            f"health: {{metrics_port: {metrics_port}}}\nspool: {{path: {work / f'spool-{rate}.db'}}}\n"
        )
        code = "import sys; from sensor.cli.live import run; run(sys.argv[1:])"
        child = subprocess.Popen(
            [sys.executable, "-c", code, "--config", str(config)], stderr=(work / "sensor.log").open("ab")
        )
        try:
            if not wait_for(lambda: metric(metrics_port, "footfall_sensor_capture_up") == 1, 30):
                raise SystemExit(
                    "the sensor did not start capturing within 30 s:\n" + (work / "sensor.log").read_text()
                )
            cpu0, t0 = cpu_s(child.pid), time.monotonic()
            threads0 = thread_cpu(child.pid)
            injected = inject(tap, frames, rate, seconds)
            wait_for(lambda: metric(metrics_port, "footfall_sensor_frames_total") >= injected, 10)
            cpu1, t1 = cpu_s(child.pid), time.monotonic()
            if os.environ.get("BENCH_THREADS"):  # where the CPU went, per thread
                for tid, used in thread_cpu(child.pid).items():
                    print(f"  thread {tid}: {used - threads0.get(tid, 0.0):.3f} s", file=sys.stderr)
            time.sleep(1.2)  # one more tick: the kernel drop counter is read once a second
            received = int(metric(metrics_port, "footfall_sensor_frames_total"))
            kernel = int(metric(metrics_port, "footfall_sensor_kernel_drops_total"))
            app = int(metric(metrics_port, "footfall_sensor_app_drops_total"))
            rss = peak_rss_mb(child.pid)
        finally:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
            collector.close()
            broker.terminate()
            broker.wait(10)
    return Result(rate, seconds, injected, received, kernel, app, 100 * (cpu1 - cpu0) / (t1 - t0), rss)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="200,5000", help="probe requests per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="injection time per rate")
    args = parser.parse_args()
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not DATA.exists() or not Path(mosquitto).exists():
        raise SystemExit(f"needs {DATA} and mosquitto")
    try:
        RadiotapTap("ffbenchprobe").close()
    except OSError as exc:
        raise SystemExit(f"cannot create a TAP device (run as root): {exc}") from None
    frames = [r.data for r in read_capture(DATA)]
    results = []
    with tempfile.TemporaryDirectory(prefix="ffbench-") as tmp:
        for rate in (int(r) for r in args.rates.split(",")):
            results.append(run_one(rate, args.seconds, frames, Path(tmp), mosquitto))
    print(
        f"live sensor, {len(frames)} real probe requests (fryza-lab 2022-11-22) cycled, {args.seconds:g} s per rate"
    )
    print(
        "| rate (/s) | injected | received | kernel drops | app drops | CPU (% of one core) | peak RSS (MB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.rate:,} | {r.injected:,} | {r.received:,} | {r.kernel_drops} | {r.app_drops} | "
            f"{r.cpu_pct:.1f} | {r.rss_mb:.0f} |"
        )


if __name__ == "__main__":
    main()
