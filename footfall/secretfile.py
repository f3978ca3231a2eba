"""Secret files (store seeds, sensor keys, the token key): owner-only, read into bytearrays, wiped before release.

Reading refuses a file that is group- or world-readable, a symlink, not a regular file or larger than
expected, and names the file in every error. Writing creates the file 0600 whatever the umask (and forces
0600 on an existing one), wipes the old contents in place before truncating (O_TRUNC alone would free the
old blocks without wiping them) and fsyncs the file and its directory.

`replace_private` never leaves a moment without a complete state on disk: the new state goes to
`<file>.tmp` (fsync), the old file is overwritten with zeros (fsync), the temp file is renamed over it and
the directory fsynced. `recover` finishes or discards such a replacement after a crash. `lock` takes
`<file>.lock` (flock) so a second process keeps off a file in use.

Limits: overwriting in place does not reach blocks an SD card's wear levelling or a journal kept, so
encrypt the storage. Contents only ever live in bytearrays the caller owns and wipes with `zero`
(sensor/keys/keystore.py says why: CPython never wipes freed objects).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

MAX_BYTES = 1024  # the largest footfall key file, with room to spare


class KeyFileError(Exception):
    """A seed or key file that cannot be used; the message names the file and says why."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path


class KeyPermissionError(KeyFileError):
    """The file is readable by group or others."""


class KeyFileCorrupt(KeyFileError):
    """Truncated, zeroed, damaged, or not a footfall file."""


class KeyFileBusy(KeyFileError):
    """Another process holds the key file open."""


def zero(buf: bytearray) -> None:
    """Overwrite `buf` with zeros in place."""
    buf[:] = bytes(len(buf))  # same length: written in place, never reallocated


def urandom_into(buf: bytearray) -> None:
    """Fill `buf` from the kernel's CSPRNG without a bytes copy (`os.urandom` would leave one behind)."""
    fd = os.open("/dev/urandom", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if os.readv(fd, [buf]) != len(buf):
            raise OSError(errno.EIO, "short read from /dev/urandom")
    finally:
        os.close(fd)


def read_private(path: Path, *, max_bytes: int = MAX_BYTES) -> bytearray:
    """The whole file, read straight into a bytearray (no buffered copy), if only its owner can read it."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer (it has no effect on
        # a regular file), so a pipe in the key's place is refused below instead of hanging the process.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise KeyFileError(path, "is a symbolic link; name the file itself") from None
        raise KeyFileError(path, exc.strerror or str(exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(path, "not a regular file")
        if st.st_mode & 0o077:
            raise KeyPermissionError(
                path,
                f"mode {stat.S_IMODE(st.st_mode):04o} lets group or others read it; refusing (chmod 600)",
            )
        if st.st_size > max_bytes:
            raise KeyFileCorrupt(path, f"{st.st_size} bytes; a footfall key file has at most {max_bytes}")
        buf = bytearray(st.st_size)
        got = 0
        with memoryview(buf) as view:
            while got < len(buf) and (n := os.readv(fd, [view[got:]])):
                got += n
        if got != len(buf):
            zero(buf)
            raise KeyFileCorrupt(path, f"read {got} of {len(buf)} bytes")
        return buf
    finally:
        os.close(fd)


def write_private(path: Path, data: bytearray, *, exclusive: bool = False) -> None:
    """Write `data` 0600 and fsync; `exclusive` raises FileExistsError rather than replace a file.

    Raw OSError on failure: the caller knows what the file is for and says so.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_EXCL if exclusive else os.O_TRUNC)
    if not exclusive:
        zero_file(path)  # O_TRUNC alone would free the old blocks without wiping them
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with memoryview(data) as view:
            done = 0
            while done < len(data):
                done += os.write(fd, view[done:])
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(path.parent)


def create_private(path: Path, data: bytearray, what: str) -> None:
    """Write `data` to a new file 0600, then wipe `data` (also on failure); never overwrites.

    `what` names the file's kind in the error ("a store seed"): overwriting one would orphan what was made
    from it, so an existing file is a `KeyFileError`, as is any other failure to write.
    """
    try:
        write_private(path, data, exclusive=True)
    except FileExistsError:
        raise KeyFileError(path, f"already exists; refusing to overwrite {what}") from None
    except OSError as exc:
        raise KeyFileError(path, f"cannot write: {exc.strerror or exc}") from None
    finally:
        zero(data)


def replace_private(path: Path, data: bytearray) -> None:
    """New state to `<file>.tmp` (fsync), zero the old file in place (fsync), rename, fsync the directory.

    The new state is durable before the old is wiped, so a crash leaves a complete state on disk at every
    point; `recover` finishes the job on the next open.
    """
    tmp = _tmp_path(path)
    write_private(tmp, data)
    zero_file(path)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def zero_file(path: Path) -> None:
    """Overwrite the file's contents with zeros in place and fsync; a missing file is left missing."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        size = os.fstat(fd).st_size
        done = 0
        while done < size:
            done += os.pwrite(fd, bytes(size - done), done)
        os.fsync(fd)
    finally:
        os.close(fd)


def recover(path: Path, position: Callable[[Path], tuple[int, str]]) -> None:
    """Finish or discard a `replace_private` a crash left behind in `<file>.tmp`.

    `position(file)` reads a file and returns how far its state has come and what to call that state in a
    log line, e.g. (epoch index, "epoch 20261124T0300Z"); it raises `KeyFileError` for a file it cannot
    use. The temp file replaces `path` only if it is usable and ahead of it, or `path` is gone or corrupt;
    otherwise it is wiped and removed. Any other `KeyFileError` for `path` (a bad mode) propagates.
    """
    tmp = _tmp_path(path)
    if not os.path.lexists(tmp):
        return
    try:
        new, label = position(tmp)
    except KeyFileError as exc:
        log.warning("discarding an incomplete rotation: %s", exc)
        zero_file(tmp)
        os.unlink(tmp)
        return
    behind = True  # the file is gone or was zeroed before the crash
    if os.path.lexists(path):
        with contextlib.suppress(KeyFileCorrupt):
            behind = position(path)[0] < new
    if behind:
        log.warning("%s: finishing an interrupted rotation to %s", path, label)
        zero_file(path)
        os.replace(tmp, path)
    else:
        zero_file(tmp)
        os.unlink(tmp)
    _fsync_dir(path.parent)


def lock(path: Path) -> int:
    """An exclusive flock on `<file>.lock` (created 0600); the fd holds it until closed. `KeyFileBusy` if taken."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise KeyFileError(path, f"cannot create the lock {lock_path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise KeyFileBusy(
            path, f"in use by another process (lock {lock_path}); stop the sensor first"
        ) from None
    return fd


def _tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
