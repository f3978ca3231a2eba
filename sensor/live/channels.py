"""The channel plan: listen on one fixed channel, or hop over a list with a dwell time.

Why a plan at all: a phone's active scan sends probe requests on every channel it supports, one
channel after another (a few tens of ms each), so a receiver parked on ONE channel still hears every
full scan of every phone — that is why a fixed channel (1, 6 or 11, whichever is quietest) is the
default. Hopping pays off only for what a fixed channel misses: phones that scan a subset (partial
scans of the channels their known networks use, 5 GHz-only scans); its price is that a burst sent
while the radio sits elsewhere is lost, so each channel hears roughly 1/N of the scans that do not
cover all channels, and counts fluctuate more. Measure both on site before choosing hopping.

Tuning goes through `iw dev IFACE set channel N`; the command runner is injected so tests record the
commands instead of running them, and `ChannelHopper.tick` is driven by the capture loop's clock.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sensor.config import CaptureConfig

log = logging.getLogger(__name__)

RETRY_S = 30.0  # a failed tuning is retried this long after (a missing iw or capability will not fix itself)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command did: its exit code and output, as text."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        detail = (self.stderr or self.stdout).strip().splitlines()
        tail = f": {detail[-1]}" if detail else ""
        return f"`{' '.join(self.argv)}` exited {self.returncode}{tail}"


Runner = Callable[[Sequence[str]], CommandResult]


def run_command(argv: Sequence[str], timeout_s: float = 5.0) -> CommandResult:
    """Run a command without a shell; a missing program is exit code 127, a timeout 124 (as in a shell)."""
    args = tuple(argv)
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        return CommandResult(args, 127, "", f"{args[0]}: command not found")
    except subprocess.TimeoutExpired:
        return CommandResult(args, 124, "", f"no answer within {timeout_s:g} s")
    except OSError as exc:
        return CommandResult(args, 126, "", str(exc))
    return CommandResult(args, done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    channels: tuple[int, ...]
    dwell_s: float

    def __post_init__(self) -> None:
        if not self.channels:
            raise ValueError("a channel plan needs at least one channel, got none")
        if self.dwell_s <= 0:
            raise ValueError(f"dwell time must be positive, got {self.dwell_s} s")

    @classmethod
    def from_config(cls, capture: CaptureConfig) -> ChannelPlan:
        return cls(tuple(capture.channels), capture.dwell_s)

    @property
    def fixed(self) -> bool:
        return len(self.channels) == 1

    def describe(self) -> str:
        if self.fixed:
            return f"fixed channel {self.channels[0]}"
        return f"hopping over {','.join(map(str, self.channels))} every {self.dwell_s:g} s"


def set_channel_argv(interface: str, channel: int) -> tuple[str, ...]:
    return ("iw", "dev", interface, "set", "channel", str(channel))


class ChannelHopper:
    """Keeps the interface on the plan's channel; call `tick(now)` from the capture loop.

    A fixed plan tunes once (and again after `reset`, when the interface was set up anew); a hopping
    plan moves to the next channel every `dwell_s`. Failures are counted and logged, never raised:
    the capture goes on on whatever channel the radio is on, and status reports `channel` as unknown.
    """

    def __init__(self, interface: str, plan: ChannelPlan, runner: Runner = run_command) -> None:
        self.interface = interface
        self.plan = plan
        self._runner = runner
        self._index = -1
        self._due = 0.0
        self.current: int | None = None  # the channel last tuned successfully
        self.hops = 0
        self.failures = 0
        self.last_error = ""

    def reset(self) -> None:
        """The interface was (re)created: tune again at the next tick."""
        self._due = 0.0
        self.current = None

    def tick(self, now: float) -> float:
        """Tune if due; returns the seconds until the next tuning is due (inf for a tuned fixed plan)."""
        if now < self._due:
            return self._due - now
        plan = self.plan
        self._index = 0 if plan.fixed else (self._index + 1) % len(plan.channels)
        channel = plan.channels[self._index]
        result = self._runner(set_channel_argv(self.interface, channel))
        if result.ok:
            if self.current is not None and self.current != channel:
                self.hops += 1
            self.current = channel
            self._due = float("inf") if plan.fixed else now + plan.dwell_s
        else:
            self.failures += 1
            self.current = None
            if result.describe() != self.last_error:
                log.warning("cannot tune %s to channel %d: %s", self.interface, channel, result.describe())
            self.last_error = result.describe()
            self._due = now + (RETRY_S if plan.fixed else max(plan.dwell_s, 1.0))
        return self._due - now
