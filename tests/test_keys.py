"""Store seeds and sensor keys: agreement across sensors, forward-only ratchet, destruction, file hygiene."""

from __future__ import annotations

import errno
import hmac
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

import pytest
from click.testing import CliRunner

from sensor.cli.keys import keys
from sensor.keys.keystore import (
    EPOCH0_INFO,
    RATCHET_INFO,
    EpochGone,
    KeyFileBusy,
    KeyFileCorrupt,
    KeyFileError,
    KeyPermissionError,
    KeyStore,
    StoreSeed,
    ratchet,
)
from sensor.keys.pseudonym import Pseudonymizer
from sensor.keys.salts import SaltSchedule

MAC = bytes.fromhex("3c22fb123456")  # a burned-in (globally administered) address
SECRET = bytes.fromhex("8f1e0c5a7b2d4e6f90a1b2c3d4e5f60718293a4b5c6d7e8f9001122334455667")
PARIS = SaltSchedule.parse("daily@04:00", "Europe/Paris")
H = 3600 * 10**9
DAY = 24 * H


def ns(iso: str) -> int:
    return (
        (datetime.fromisoformat(iso) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
    )


MONDAY = ns("2026-11-23T10:00+01:00")
TUESDAY, WEDNESDAY = MONDAY + DAY, MONDAY + 2 * DAY


def hkdf_sha256(ikm: bytes, info: bytes) -> bytes:
    """RFC 5869 HKDF-SHA256 with no salt and one 32-byte block, written out with the standard library."""
    prk = hmac.digest(bytes(32), ikm, sha256)
    return hmac.digest(prk, info + b"\x01", sha256)


@pytest.fixture
def seed() -> StoreSeed:
    return StoreSeed.create("paris-01", PARIS, MONDAY, secret=SECRET)


@pytest.fixture
def key(tmp_path: Path, seed: StoreSeed) -> Iterator[KeyStore]:
    with KeyStore.provision(seed, tmp_path / "a.key", MONDAY) as store:
        yield store


# --- agreement -------------------------------------------------------------------------------------------


def test_sensor_provisioned_monday_and_ratcheted_to_wednesday_equals_one_provisioned_wednesday(
    tmp_path: Path, seed: StoreSeed
) -> None:
    with (
        KeyStore.provision(seed, tmp_path / "a.key", MONDAY) as a,
        KeyStore.provision(seed, tmp_path / "b.key", WEDNESDAY) as b,
    ):
        a.epoch_at(TUESDAY)
        epoch_a, epoch_b = a.epoch_at(WEDNESDAY), b.epoch_at(WEDNESDAY)
        assert epoch_a.id == epoch_b.id == "20261125T0300Z"
        assert epoch_a.salt == epoch_b.salt
        assert (epoch_a.start_ns, epoch_a.end_ns) == (epoch_b.start_ns, epoch_b.end_ns)


def test_pseudonyms_of_one_device_differ_across_epochs_and_match_across_two_sensors(
    tmp_path: Path, seed: StoreSeed
) -> None:
    with (
        KeyStore.provision(seed, tmp_path / "a.key", MONDAY) as a,
        KeyStore.provision(seed, tmp_path / "b.key", MONDAY) as b,
    ):
        sensor_a, sensor_b = Pseudonymizer(a), Pseudonymizer(b)
        days = [MONDAY, TUESDAY, WEDNESDAY]
        seen_a = [sensor_a.pseudonym(MAC, t) for t in days]
        seen_b = [sensor_b.pseudonym(MAC, t + 3 * H) for t in days]  # other sensor, later the same day
        assert seen_a == seen_b
        assert len(set(seen_a)) == 3
        assert all(len(p) == 16 for p in seen_a)  # 64 bits by default


def test_sensors_agree_across_a_dst_gap_that_swallows_an_hourly_epoch(tmp_path: Path) -> None:
    hourly = SaltSchedule.parse("every:1h", "Europe/Paris")
    store_seed = StoreSeed.create("paris-01", hourly, ns("2026-03-28T12:00+01:00"), secret=SECRET)
    before, after = ns("2026-03-29T01:30+01:00"), ns("2026-03-29T03:30+02:00")  # 02:00-03:00 never happens
    with (
        KeyStore.provision(store_seed, tmp_path / "a.key", before) as a,
        KeyStore.provision(store_seed, tmp_path / "b.key", after) as b,
    ):
        assert a.advance_to(after) == 2  # the 01:00 epoch, the empty 02:00 one, the 03:00 one
        assert a.epoch_at(after).salt == b.epoch_at(after).salt
        assert a.epoch_at(after).id == "20260329T0100Z"


def test_the_first_salt_is_hkdf_of_the_seed_bound_to_store_zone_and_schedule(seed: StoreSeed) -> None:
    info = b"\0".join([EPOCH0_INFO, b"paris-01", b"Europe/Paris", b"daily@04:00"])
    assert seed.salt_for(seed.anchor) == hkdf_sha256(SECRET, info)
    other_store = StoreSeed.create("lyon-01", PARIS, MONDAY, secret=SECRET)
    hourly = StoreSeed.create(
        "paris-01", SaltSchedule.parse("every:1h", "Europe/Paris"), MONDAY, secret=SECRET
    )
    assert len({bytes(s.salt_for(s.anchor)) for s in (seed, other_store, hourly)}) == 3


def test_ratchet_is_rfc5869_hkdf_sha256_over_the_previous_salt_and_deterministic() -> None:
    salt = bytearray(sha256(b"salt 0").digest())
    one = ratchet(salt, 1)
    assert one == hkdf_sha256(bytes(salt), RATCHET_INFO)
    assert ratchet(salt, 3) == ratchet(ratchet(one, 1), 1)
    assert ratchet(salt, 0) == salt
    assert ratchet(salt, 0) is not salt
    assert salt == sha256(b"salt 0").digest()  # the input is left alone


def test_provisioning_before_the_seed_was_created_is_refused(tmp_path: Path, seed: StoreSeed) -> None:
    with pytest.raises(ValueError, match="20261122T0300Z is before the seed's anchor epoch 20261123T0300Z"):
        KeyStore.provision(seed, tmp_path / "a.key", MONDAY - DAY)


# --- the ratchet over time ----------------------------------------------------------------------------


def test_restart_keeps_the_current_epoch(tmp_path: Path, seed: StoreSeed) -> None:
    path = tmp_path / "a.key"
    with KeyStore.provision(seed, path, MONDAY) as first:
        before = bytes(first.epoch_at(MONDAY).salt)
    on_disk = path.read_bytes()
    with KeyStore.open(path) as again:
        epoch = again.epoch_at(MONDAY + 12 * H)  # same epoch, after the restart
        assert (epoch.id, bytes(epoch.salt)) == ("20261123T0300Z", before)
    assert path.read_bytes() == on_disk  # nothing rotated


def test_a_sensor_that_was_off_catches_up_and_persists_the_new_epoch(tmp_path: Path, seed: StoreSeed) -> None:
    path = tmp_path / "a.key"
    KeyStore.provision(seed, path, MONDAY).close()
    later = MONDAY + 40 * DAY
    with KeyStore.open(path) as store:
        assert store.advance_to(later) == 40
        assert store.epoch_at(later).salt == seed.salt_for(PARIS.index_at(later))
    assert KeyStore.inspect(path).current == PARIS.span_at(later)


def test_a_timestamp_before_the_current_epoch_raises_epoch_gone(key: KeyStore) -> None:
    names = Pseudonymizer(key)
    tuesday = names.pseudonym(MAC, TUESDAY)
    with pytest.raises(EpochGone, match=r"64800\.000 s before the current epoch 20261124T0300Z") as gone:
        names.pseudonym(MAC, TUESDAY - DAY)  # a late frame from Monday
    assert gone.value.current.id == "20261124T0300Z"
    assert names.pseudonym(MAC, TUESDAY + H) == tuesday  # the pseudonymiser carries on in the current epoch
    assert key.advance_to(MONDAY) == 0  # and the key never goes back


# --- destruction ---------------------------------------------------------------------------------------


def test_rotation_zeroes_the_bytearray_that_held_the_old_salt(key: KeyStore) -> None:
    monday = key.epoch_at(MONDAY)
    assert any(monday.salt)
    key.epoch_at(TUESDAY)
    assert monday.salt == bytes(32)
    tuesday = key.epoch_at(TUESDAY)
    key.close()
    assert tuesday.salt == bytes(32)
    with pytest.raises(KeyFileError, match="closed"):
        key.epoch_at(TUESDAY)  # never a zeroed salt served as if it were live


def test_rotation_wipes_the_old_key_file_in_place_and_leaves_no_copy(tmp_path: Path, seed: StoreSeed) -> None:
    path = tmp_path / "a.key"
    with KeyStore.provision(seed, path, MONDAY) as store:
        monday = bytes(store.epoch_at(MONDAY).salt)
        assert monday in path.read_bytes()
        old_inode = os.open(path, os.O_RDONLY)  # keeps the replaced file readable after the rename
        try:
            store.epoch_at(TUESDAY)
            old_bytes = os.pread(old_inode, 4096, 0)
        finally:
            os.close(old_inode)
    assert old_bytes and old_bytes == bytes(len(old_bytes))  # overwritten with zeros, not just unlinked
    assert monday not in path.read_bytes()
    assert bytes(seed.salt_for(PARIS.index_at(TUESDAY))) in path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.key", "a.key.lock"]


def test_the_key_file_never_holds_the_seed(tmp_path: Path, seed: StoreSeed) -> None:
    KeyStore.provision(seed, tmp_path / "a.key", MONDAY).close()
    assert SECRET not in (tmp_path / "a.key").read_bytes()


CHILD = """
import sys
from pathlib import Path
from sensor.keys.keystore import KeyStore
from sensor.keys.pseudonym import Pseudonymizer
store = KeyStore.open(Path(sys.argv[1]))
names = Pseudonymizer(store)
for ts in map(int, sys.argv[2:]):
    print(store.epoch_at(ts).id, flush=True)  # rotates, as the first frame of the epoch would
    sys.stdin.readline()  # the parent scans this process's memory now
    for i in range(500):
        names.pseudonym(i.to_bytes(6, "big"), ts)
"""


def occurrences(pid: int, needles: list[bytes]) -> list[int]:
    """How often each needle occurs in the writable memory mappings of process `pid`."""
    regions = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            if "w" in fields[1] and not (
                len(fields) > 5 and fields[5].startswith("[v")
            ):  # [vvar], [vsyscall]
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                regions.append((lo, hi))
    counts = [0] * len(needles)
    overlap = max(map(len, needles)) - 1
    mem = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        for lo, hi in regions:
            tail, pos = b"", lo
            while pos < hi:
                try:
                    chunk = os.pread(mem, min(1 << 24, hi - pos), pos)
                except OSError:
                    break
                if not chunk:
                    break
                data = tail + chunk  # tail is shorter than a needle, so nothing is counted twice
                counts = [c + data.count(n) for c, n in zip(counts, needles, strict=True)]
                tail, pos = data[-overlap:], pos + len(chunk)
    finally:
        os.close(mem)
    return counts


def test_old_salts_are_gone_from_the_sensor_process_memory_after_rotation(tmp_path: Path) -> None:
    """A real sensor process is scanned from outside, so the scanner's own copies cannot pollute it."""
    fresh = StoreSeed.create("paris-01", PARIS, MONDAY, secret=os.urandom(32))  # random: matches no table
    days = [MONDAY + k * DAY for k in range(5)]
    salts = [bytes(fresh.salt_for(PARIS.index_at(t))) for t in days]
    path = tmp_path / "a.key"
    KeyStore.provision(fresh, path, days[0]).close()
    # Monday's salt is read from disk, Tuesday's ratcheted in the process, then a catch-up to Friday
    # passes Wednesday and Thursday without ever serving them.
    stages = [(days[0], 0), (days[1], 1), (days[4], 4)]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), *(str(ts) for ts, _ in stages)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        for ts, current in stages:
            assert child.stdout.readline().strip() == PARIS.span_at(ts).id
            try:
                counts = occurrences(child.pid, salts)
            except PermissionError:
                pytest.skip("this kernel does not let a parent read its child's memory (ptrace restrictions)")
            assert counts[current] >= 1, "the scan finds the live salt"
            assert counts[:current] == [0] * current, f"old salts still in memory at {PARIS.span_at(ts).id}"
            child.stdin.write("\n")
            child.stdin.flush()
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    assert child.returncode == 0


# --- files: modes, damage, crashes, locking ------------------------------------------------------------


def test_seed_and_key_files_are_created_0600_whatever_the_umask(tmp_path: Path, seed: StoreSeed) -> None:
    old = os.umask(0)
    try:
        seed.save(tmp_path / "store.seed")
        KeyStore.provision(seed, tmp_path / "a.key", MONDAY).close()
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"store.seed": 0o600, "a.key": 0o600, "a.key.lock": 0o600}


def test_seed_round_trips_and_is_never_overwritten(tmp_path: Path, seed: StoreSeed) -> None:
    seed.save(tmp_path / "store.seed")
    loaded = StoreSeed.load(tmp_path / "store.seed")
    assert loaded == seed
    assert bytes(loaded.secret) == SECRET
    with pytest.raises(KeyFileError, match=r"store\.seed: already exists; refusing to overwrite"):
        StoreSeed.create("paris-01", PARIS, TUESDAY, secret=bytes(32)).save(tmp_path / "store.seed")


def test_provisioning_over_an_existing_key_needs_replace(tmp_path: Path, seed: StoreSeed) -> None:
    KeyStore.provision(seed, tmp_path / "a.key", MONDAY).close()
    with pytest.raises(KeyFileError, match="already exists"):
        KeyStore.provision(seed, tmp_path / "a.key", TUESDAY)
    KeyStore.provision(seed, tmp_path / "a.key", TUESDAY, replace=True).close()
    assert KeyStore.inspect(tmp_path / "a.key").current.id == "20261124T0300Z"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o606])
def test_a_group_or_world_readable_key_file_is_refused_naming_file_and_mode(
    tmp_path: Path, seed: StoreSeed, mode: int
) -> None:
    KeyStore.provision(seed, tmp_path / "a.key", MONDAY).close()
    seed.save(tmp_path / "store.seed")
    for path in (tmp_path / "a.key", tmp_path / "store.seed"):
        path.chmod(mode)
        with pytest.raises(KeyPermissionError, match=f"^{re.escape(str(path))}: mode {mode:04o} lets group"):
            (KeyStore.open if path.suffix == ".key" else StoreSeed.load)(path)


def test_a_symlinked_key_file_is_refused(tmp_path: Path, seed: StoreSeed) -> None:
    KeyStore.provision(seed, tmp_path / "a.key", MONDAY).close()
    (tmp_path / "link.key").symlink_to(tmp_path / "a.key")
    with pytest.raises(KeyFileError, match=r"link\.key: is a symbolic link"):
        KeyStore.open(tmp_path / "link.key")


DAMAGE: list[tuple[str, Callable[[bytes], bytes], str]] = [
    ("empty", lambda b: b"", "truncated key file: 0 bytes, at least 62 needed"),
    ("cut short", lambda b: b[:10], "truncated key file: 10 bytes"),
    ("last byte lost", lambda b: b[:-1], "checksum"),
    ("one bit flipped", lambda b: b[:40] + bytes([b[40] ^ 1]) + b[41:], "checksum"),
    ("trailing garbage", lambda b: b + b"x", "checksum"),
    ("zeroed", lambda b: bytes(len(b)), r"all \d+ bytes are zero"),
    ("a seed file", lambda b: b"FFSD" + b[4:], "not a footfall key file"),
    (
        "a newer format",
        lambda b: b[:4] + b"\x02\x00" + b[6:],
        "key file format version 2; this footfall reads 1",
    ),
]


@pytest.mark.parametrize(("damage", "message"), [d[1:] for d in DAMAGE], ids=[d[0] for d in DAMAGE])
def test_a_damaged_key_file_gives_a_clear_error_naming_the_file(
    tmp_path: Path, seed: StoreSeed, damage: Callable[[bytes], bytes], message: str
) -> None:
    path = tmp_path / "a.key"
    KeyStore.provision(seed, path, MONDAY).close()
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(KeyFileCorrupt, match=f"^{re.escape(str(path))}: .*{message}"):
        KeyStore.open(path)


def test_every_truncation_and_every_corrupted_byte_is_detected(tmp_path: Path, seed: StoreSeed) -> None:
    path = tmp_path / "a.key"
    KeyStore.provision(seed, path, MONDAY).close()
    good = path.read_bytes()
    damaged = [good[:n] for n in range(len(good))]
    damaged += [good[:i] + bytes([good[i] ^ 0xFF]) + good[i + 1 :] for i in range(len(good))]
    for data in damaged:
        path.write_bytes(data)
        with pytest.raises(KeyFileCorrupt):
            KeyStore.open(path)


def test_a_rotation_interrupted_after_wiping_the_old_file_is_finished_on_next_open(
    tmp_path: Path, seed: StoreSeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.key"
    store = KeyStore.provision(seed, path, MONDAY)

    def power_cut(src: object, dst: object) -> None:
        raise OSError(errno.EIO, "power cut")

    monkeypatch.setattr(os, "replace", power_cut)  # the rename that would finish the rotation
    with pytest.raises(KeyFileError, match=r"a\.key: rotation to epoch 20261124T0300Z failed"):
        store.epoch_at(TUESDAY)
    store.close()
    monkeypatch.undo()
    assert path.read_bytes() == bytes(len(path.read_bytes()))  # the old salt was already wiped
    with KeyStore.open(path) as recovered:
        assert recovered.epoch_at(TUESDAY).salt == seed.salt_for(PARIS.index_at(TUESDAY))
    assert not (tmp_path / "a.key.tmp").exists()


def test_an_incomplete_temp_file_from_a_crash_is_wiped_and_ignored(tmp_path: Path, seed: StoreSeed) -> None:
    path = tmp_path / "a.key"
    KeyStore.provision(seed, path, MONDAY).close()
    tmp = tmp_path / "a.key.tmp"
    tmp.write_bytes(path.read_bytes()[:20])
    tmp.chmod(0o600)
    with KeyStore.open(path) as store:
        assert store.info.current.id == "20261123T0300Z"
    assert not tmp.exists()


def test_a_key_file_in_use_cannot_be_opened_twice(key: KeyStore) -> None:
    with pytest.raises(KeyFileBusy, match=r"a\.key: in use by another process"):
        KeyStore.open(key.path)
    key.close()
    KeyStore.open(key.path).close()


# --- CLI -----------------------------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(keys, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_seed_provision_show_rotate_give_two_sensors_the_same_key(tmp_path: Path) -> None:
    seed_file, a, b = (str(tmp_path / n) for n in ("store.seed", "a.key", "b.key"))
    code, out, err = run("seed", "--store", "paris-01", "--out", seed_file, "--tz", "Europe/Paris",
                         "--at", "2026-11-23T10:00")  # fmt: skip
    assert code == 0, err
    assert "WARNING" in err and "offline" in err
    assert "first epoch 20261123T0300Z" in out
    assert run("provision", "--seed", seed_file, "--out", a, "--at", "2026-11-23T10:00")[0] == 0
    assert run("provision", "--seed", seed_file, "--out", b, "--at", "2026-11-25T10:00+01:00")[0] == 0
    code, out, _ = run("rotate", a, "--at", "2026-11-25T09:00")
    assert code == 0
    assert out.startswith(f"{a}: ratcheted 2 epochs from 20261123T0300Z to epoch 20261125T0300Z until")
    assert Path(a).read_bytes() == Path(b).read_bytes()
    code, out, _ = run("show", a)
    assert code == 0
    assert "paris-01" in out and "daily@04:00 in Europe/Paris" in out and "20261125T0300Z" in out
    assert "2026-11-26T04:00+01:00" in out
    salt = StoreSeed.load(Path(seed_file)).salt_for(PARIS.index_at(ns("2026-11-25T10:00+01:00")))
    assert salt.hex() not in out.lower()


def test_cli_refuses_a_readable_key_with_one_line_and_exit_1(tmp_path: Path, seed: StoreSeed) -> None:
    KeyStore.provision(seed, tmp_path / "a.key", MONDAY).close()
    (tmp_path / "a.key").chmod(0o644)
    code, _, err = run("rotate", str(tmp_path / "a.key"))
    assert code == 1
    assert err.strip().count("\n") == 0
    assert err.startswith(f"Error: {tmp_path / 'a.key'}: mode 0644")


def test_cli_provision_with_a_schedule_other_than_the_seeds_is_refused(
    tmp_path: Path, seed: StoreSeed
) -> None:
    seed.save(tmp_path / "store.seed")
    code, _, err = run("provision", "--seed", str(tmp_path / "store.seed"), "--out", str(tmp_path / "a.key"),
                       "--schedule", "every:6h")  # fmt: skip
    assert code == 1
    assert "rotates daily@04:00 in Europe/Paris, not every:6h in Europe/Paris" in err
    assert not (tmp_path / "a.key").exists()


def test_cli_rejects_a_25_hour_schedule_without_allow_long(tmp_path: Path) -> None:
    code, _, err = run("seed", "--store", "s", "--out", str(tmp_path / "s.seed"), "--schedule", "every:25h")
    assert code == 1
    assert "epoch length 25 h exceeds 24 h" in err
    assert not (tmp_path / "s.seed").exists()
