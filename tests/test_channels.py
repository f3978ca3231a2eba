"""The channel plan and the hopper: which `iw` commands run when, and what a failure does."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from footfall.configfile import ConfigError, validate_model
from sensor.config import CaptureConfig, SensorConfig
from sensor.live.channels import ChannelHopper, ChannelPlan, CommandResult, run_command


class Recorder:
    """A command runner that records argv and answers from a script (default: success)."""

    def __init__(self, fail: set[int] | None = None, stderr: str = "") -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail = fail or set()
        self.stderr = stderr

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        args = tuple(argv)
        self.calls.append(args)
        failed = len(self.calls) in self.fail
        return CommandResult(args, 1 if failed else 0, "", self.stderr if failed else "")


def channels_tuned(calls: list[tuple[str, ...]]) -> list[int]:
    return [int(c[-1]) for c in calls if c[:2] == ("iw", "dev") and c[3:5] == ("set", "channel")]


def test_fixed_plan_tunes_once_and_then_never_again() -> None:
    runner = Recorder()
    hopper = ChannelHopper("mon0", ChannelPlan((6,), 0.25), runner)
    assert hopper.tick(0.0) == float("inf")
    for t in range(1, 100):
        hopper.tick(float(t))
    assert runner.calls == [("iw", "dev", "mon0", "set", "channel", "6")]
    assert hopper.current == 6 and hopper.hops == 0


def test_hopping_plan_cycles_through_the_channels_every_dwell() -> None:
    runner = Recorder()
    hopper = ChannelHopper("mon0", ChannelPlan((1, 6, 11), 0.5), runner)
    t = 0.0
    for _ in range(7):
        t += hopper.tick(t)
    assert channels_tuned(runner.calls) == [1, 6, 11, 1, 6, 11, 1]
    assert hopper.hops == 6 and hopper.current == 1


def test_hopper_does_nothing_before_the_dwell_is_over() -> None:
    runner = Recorder()
    hopper = ChannelHopper("mon0", ChannelPlan((1, 6), 1.0), runner)
    hopper.tick(10.0)
    assert hopper.tick(10.4) == pytest.approx(0.6)
    assert channels_tuned(runner.calls) == [1]


def test_a_failed_tuning_is_counted_reported_and_retried_later() -> None:
    runner = Recorder(fail={1}, stderr="command failed: Operation not permitted (-1)")
    hopper = ChannelHopper("mon0", ChannelPlan((11,), 0.25), runner)
    wait = hopper.tick(0.0)
    assert hopper.failures == 1 and hopper.current is None
    assert "Operation not permitted" in hopper.last_error and "exited 1" in hopper.last_error
    assert 1.0 <= wait < float("inf")
    hopper.tick(wait)
    assert hopper.current == 11 and channels_tuned(runner.calls) == [11, 11]


def test_reset_tunes_a_fixed_plan_again_after_the_interface_was_recreated() -> None:
    runner = Recorder()
    hopper = ChannelHopper("mon0", ChannelPlan((1,), 0.25), runner)
    hopper.tick(0.0)
    hopper.reset()
    hopper.tick(5.0)
    assert channels_tuned(runner.calls) == [1, 1]


def test_plan_from_config_and_its_description() -> None:
    capture = CaptureConfig.model_validate({"channels": [1, 6, 11], "dwell_s": 0.3})
    plan = ChannelPlan.from_config(capture)
    assert not plan.fixed
    assert plan.describe() == "hopping over 1,6,11 every 0.3 s"
    assert ChannelPlan((36,), 1).describe() == "fixed channel 36"


@pytest.mark.parametrize(
    ("capture", "message"),
    [
        ({"channels": [15]}, "unknown channel(s) [15]"),
        ({"channels": [1, 6, 1]}, "repeat a channel"),
        ({"channels": []}, "at least 1 item"),
        ({"dwell_s": 0.01}, "greater than or equal to 0.05"),
        ({"interface": "a/b"}, "should match pattern"),
    ],
)
def test_config_rejects_a_bad_channel_plan_with_the_key_named(
    capture: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        validate_model(SensorConfig, {"capture": capture})
    assert message in str(err.value) and "capture." in str(err.value)


def test_plan_refuses_an_empty_channel_list() -> None:
    with pytest.raises(ValueError, match="at least one channel"):
        ChannelPlan((), 1.0)


def test_a_missing_program_is_exit_127_with_a_readable_message() -> None:
    result = run_command(("footfall-no-such-program-xyz", "dev"))
    assert result.returncode == 127 and not result.ok
    assert "command not found" in result.describe()


def test_a_real_command_reports_its_exit_code_and_last_line() -> None:
    result = run_command(("sh", "-c", "echo first >&2; echo 'last line' >&2; exit 3"))
    assert result.describe() == "`sh -c echo first >&2; echo 'last line' >&2; exit 3` exited 3: last line"
