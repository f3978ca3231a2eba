"""Secret files: what tests/test_keys.py and tests/test_consent.py do not already prove through their formats."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from footfall.secretfile import (
    KeyFileCorrupt,
    KeyFileError,
    KeyPermissionError,
    create_private,
    read_private,
    recover,
    write_private,
    zero_file,
)


def counter_position(path: Path) -> tuple[int, str]:
    """A toy format for `recover`: the file holds a decimal counter."""
    text = bytes(read_private(path))
    if not text.isdigit():
        raise KeyFileCorrupt(path, f"{len(text)} bytes, not a counter")
    return int(text), f"counter {int(text)}"


def private(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def test_a_directory_or_fifo_is_refused_as_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    for path in (tmp_path, fifo):
        with pytest.raises(KeyFileError, match=f"^{path}: not a regular file$"):
            read_private(path)


def test_a_missing_file_is_a_key_file_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"absent\.key: No such file or directory"):
        read_private(tmp_path / "absent.key")


def test_a_file_larger_than_allowed_is_refused_with_its_size(tmp_path: Path) -> None:
    path = private(tmp_path / "big.key", bytes(2000))
    with pytest.raises(KeyFileCorrupt, match="2000 bytes; a footfall key file has at most 1024"):
        read_private(path)
    assert read_private(path, max_bytes=2000) == bytes(2000)


def test_writing_never_follows_a_symlink_and_leaves_its_target_alone(tmp_path: Path) -> None:
    target = private(tmp_path / "target", b"keep me")
    link = tmp_path / "link.key"
    link.symlink_to(target)
    with pytest.raises(OSError) as raised:
        write_private(link, bytearray(b"secret"))
    assert raised.value.errno == errno.ELOOP
    assert target.read_bytes() == b"keep me"


def test_writing_over_an_existing_file_forces_it_back_to_0600(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    path.write_bytes(b"old, longer contents")
    path.chmod(0o644)
    write_private(path, bytearray(b"new"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == b"new"


def test_create_private_wipes_the_callers_buffer_whether_or_not_it_wrote(tmp_path: Path) -> None:
    written, refused = bytearray(b"secret"), bytearray(b"second")
    create_private(tmp_path / "a.key", written, "a test key")
    with pytest.raises(KeyFileError, match="already exists; refusing to overwrite a test key"):
        create_private(tmp_path / "a.key", refused, "a test key")
    assert written == bytes(6) and refused == bytes(6)
    assert (tmp_path / "a.key").read_bytes() == b"secret"


def test_zero_file_overwrites_in_place_and_leaves_a_missing_file_missing(tmp_path: Path) -> None:
    path = private(tmp_path / "a.key", b"secret")
    inode = path.stat().st_ino
    zero_file(path)
    assert path.read_bytes() == bytes(6)
    assert path.stat().st_ino == inode
    zero_file(tmp_path / "absent.key")
    assert not (tmp_path / "absent.key").exists()


@pytest.mark.parametrize(
    ("current", "pending", "kept"),
    [
        (b"7", b"8", b"8"),  # the crash came after the temp file was durable: finish the replacement
        (b"8", b"7", b"8"),  # a stale temp file behind the file: discard it
        (b"8", b"8", b"8"),
        (b"\0", b"8", b"8"),  # the file was already wiped: the temp file is the only state left
    ],
    ids=["behind", "ahead", "same", "wiped"],
)
def test_recover_keeps_whichever_state_is_further_on_and_removes_the_temp_file(
    tmp_path: Path, current: bytes, pending: bytes, kept: bytes
) -> None:
    path = private(tmp_path / "a.key", current)
    private(tmp_path / "a.key.tmp", pending)
    recover(path, counter_position)
    assert path.read_bytes() == kept
    assert not (tmp_path / "a.key.tmp").exists()


def test_recover_finishes_a_replacement_whose_file_is_gone(tmp_path: Path) -> None:
    private(tmp_path / "a.key.tmp", b"3")
    recover(tmp_path / "a.key", counter_position)
    assert (tmp_path / "a.key").read_bytes() == b"3"


def test_recover_does_not_overrule_a_file_with_a_bad_mode(tmp_path: Path) -> None:
    path = private(tmp_path / "a.key", b"1")
    path.chmod(0o644)
    private(tmp_path / "a.key.tmp", b"2")
    with pytest.raises(KeyPermissionError):
        recover(path, counter_position)
    assert path.read_bytes() == b"1"
    assert (tmp_path / "a.key.tmp").exists()
