"""The run folder: the one place `archcalc train` writes, and nothing in it is followed or appended to.

- A run folder holds only its own files and fold folders: a symbolic link in it (or the folder itself
  being one), a FIFO or a device is refused before anything is read or written, and again on every
  write, since writing through a link would overwrite whatever it points at.
- Every file is written whole: to a new temporary file in the same folder (O_CREAT|O_EXCL|O_NOFOLLOW,
  so it is always a fresh file of ours), flushed, then renamed over the old name with os.replace,
  which replaces the name and never writes through it. A crash, a full disk or Ctrl-C leaves the
  previous file, never half of one. All names are opened relative to the folder's own descriptor
  (opened O_NOFOLLOW), so swapping the folder for a link mid-run does not redirect the writes either.
- Reads open O_NOFOLLOW|O_NONBLOCK and accept a regular file under a size limit only (a FIFO would
  block, /dev/zero never ends).
- `Lock`: fcntl.flock on RUN/.lock, non-blocking, so a second `train` on a folder in use fails at
  once instead of mixing its files with the first one's. The kernel drops the lock when the process
  ends, also after kill -9.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
import stat
from contextlib import suppress
from pathlib import Path

from archcalc.errors import Loc, SpecError
from archcalc.reader.yaml_source import kind_of

LOCK_NAME = ".lock"
#: Text files of a run (config.yaml, spec.yaml, metrics.jsonl, data.json, summary.json) are small;
#: anything larger is not one of ours.
MAX_TEXT_BYTES = 16 * 2**20
_FOLD = re.compile(r"fold\d+")
_TEMPORARY = re.compile(r"\..+\.\d+\.[0-9a-f]{8}\.tmp")  # what `write` names its temporary files
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def folder_name(label: str) -> str:
    """A spec's `name:` as one safe folder name under runs/: a name is a label, never a path. Every
    character other than letters, digits (any script), '.', '_' and '-' (slashes, spaces, control
    and formatting characters) becomes '_', a leading '.' gets a '_' before it (so no '..' and no
    hidden folder), and the result is at most 100 bytes of UTF-8; an empty name is 'run'."""
    safe = re.sub(r"[^\w.-]", "_", str(label))
    if safe.startswith("."):
        safe = "_" + safe
    return safe.encode("utf-8", "replace")[:100].decode("utf-8", "ignore") or "run"


def _err(path, exc: OSError, doing: str) -> SpecError:
    return SpecError(f"{path}: cannot {doing}: {exc.strerror or exc}")


def _open_dir(folder: Path) -> int:
    if _FOLD.fullmatch(folder.name) and os.path.islink(folder.parent):  # a fold folder's run folder, too
        raise SpecError(f"{folder.parent}: the run folder is a symbolic link; archcalc writes only into a real "
                        "folder (give its target as --output, or another --output)")
    try:
        return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(folder):  # Linux says ENOTDIR here
            raise SpecError(f"{folder}: the run folder is a symbolic link; archcalc writes only into a real "
                            "folder (give its target as --output, or another --output)") from None
        if exc.errno == errno.ENOTDIR:
            raise SpecError(f"{folder}: exists and is not a folder; give --output a folder (new or a run)") from None
        if exc.errno == errno.ENOENT:
            raise SpecError(f"{folder}: no such run folder") from None
        raise _err(folder, exc, "open the run folder") from None


def _refuse_entry(folder: Path, name: str, st) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise SpecError(f"{folder / name}: is a symbolic link; a run folder holds only its own files (archcalc never "
                        "reads or writes through links): remove it")
    raise SpecError(f"{folder / name}: is {kind_of(st.st_mode)}, not a file of a run; remove it")


def check(folder) -> None:
    """SpecError when `folder`, or anything in it or in its fold folders, is a link, a FIFO, a socket or
    a device (a missing folder is fine: nothing to check)."""
    folder = Path(folder)
    try:
        top = os.lstat(folder)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise SpecError(f"{folder}: a part of this path is a file, not a folder") from None
    except OSError as exc:
        raise _err(folder, exc, "examine the run folder") from None
    if not stat.S_ISDIR(top.st_mode):
        _open_dir(folder)  # raises the message for a link or a file
    _check_dir(folder, depth=0)


def _check_dir(folder: Path, depth: int) -> None:
    dfd = _open_dir(folder)
    try:
        for name in os.listdir(dfd):
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                if depth == 0 and _FOLD.fullmatch(name):
                    _check_dir(folder / name, depth + 1)
            elif not stat.S_ISREG(st.st_mode):
                _refuse_entry(folder, name, st)
    except OSError as exc:
        raise _err(folder, exc, "list the run folder") from None
    finally:
        os.close(dfd)


def make(folder, parents: bool = True) -> Path:
    """Create the run folder (and its parents) or accept an existing real folder."""
    folder = Path(folder)
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        try:
            folder.mkdir(parents=parents, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise SpecError(f"{folder}: a part of this path is a file, not a folder") from None
        except OSError as exc:
            raise _err(folder, exc, "create the run folder") from None
        return folder
    except NotADirectoryError:
        raise SpecError(f"{folder}: a part of this path is a file, not a folder") from None
    except OSError as exc:
        raise _err(folder, exc, "examine the run folder") from None
    if not stat.S_ISDIR(st.st_mode):
        os.close(_open_dir(folder))  # the message for a link or a file
    return folder


def write(path, data) -> Path:
    """Write `data` (bytes, str, or a function taking a binary file) as the file `path` of a run folder,
    atomically (see the module's docstring). A failure (disk full, read-only, permissions) is a
    one-line SpecError that says the previous file, if any, was kept."""
    path = Path(path)
    folder, name = path.parent, path.name
    dfd = _open_dir(folder)
    tmp = f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    existed = False
    try:
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            existed = True
            if not stat.S_ISREG(st.st_mode):
                _refuse_entry(folder, name, st)
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o644, dir_fd=dfd)
        try:
            with os.fdopen(fd, "wb") as handle:
                if callable(data):
                    data(handle)
                else:
                    handle.write(data.encode("utf-8") if isinstance(data, str) else data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
    except OSError as exc:
        kept = f"; the previous {name} was kept" if existed else ""
        raise SpecError(f"{path}: cannot write: {exc.strerror or exc}{kept}") from None
    finally:
        os.close(dfd)
    return path


def open_file(path, limit: int | None = None):
    """A run folder's regular file `path`, opened for reading (not through a link, not a FIFO);
    FileNotFoundError when it is absent, SpecError when it is something else or over `limit` bytes."""
    path = Path(path)
    dfd = _open_dir(path.parent)
    try:
        try:
            fd = os.open(path.name, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK | _CLOEXEC, dir_fd=dfd)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise FileNotFoundError(str(path)) from None
            if exc.errno == errno.ELOOP:
                _refuse_entry(path.parent, path.name, os.stat(path.name, dir_fd=dfd, follow_symlinks=False))
            raise _err(path, exc, "read") from None
    finally:
        os.close(dfd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise SpecError(f"{path}: is {kind_of(st.st_mode)}, not a file of a run; remove it")
    if limit is not None and st.st_size > limit:
        os.close(fd)
        raise SpecError(f"{path}: {st.st_size:,} bytes, more than a run's {path.name} can be ({limit:,}); "
                        "this is not archcalc's file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_text(path, limit: int = MAX_TEXT_BYTES) -> str:
    path = Path(path)
    with open_file(path, limit) as handle:
        data = handle.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start + 1}); this run file is damaged") from None


def read_json(path):
    path = Path(path)
    text = read_text(path)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        loc = Loc(str(path), getattr(exc, "lineno", 1), getattr(exc, "colno", 1))
        raise SpecError(f"not valid JSON ({getattr(exc, 'msg', 'nested too deeply')}); this run file is damaged",
                        loc) from None


def exists(path) -> bool:
    """Whether the run folder has an entry `path` (a link counts: `check` refuses it)."""
    return os.path.lexists(path)


def remove_temporaries(folder) -> None:
    """Delete the temporary files a killed writer left in `folder` and its fold folders (kill -9 in
    the middle of a write). Only call it under the lock: then no other writer is at work."""
    folder = Path(folder)
    dfd = _open_dir(folder)
    try:
        for name in os.listdir(dfd):
            if _TEMPORARY.fullmatch(name):
                with suppress(OSError):
                    os.unlink(name, dir_fd=dfd)
            elif _FOLD.fullmatch(name) and stat.S_ISDIR(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode):
                remove_temporaries(folder / name)
    finally:
        os.close(dfd)


class Lock:
    """An exclusive, non-blocking lock on a run folder (RUN/.lock), held until `release()` or the
    process's end. `acquire()` creates the folder when it is missing."""

    def __init__(self, folder):
        self.folder, self.fd = Path(folder), None

    def acquire(self) -> "Lock":
        if self.fd is not None:
            return self
        make(self.folder)
        dfd = _open_dir(self.folder)
        try:
            fd = os.open(LOCK_NAME, os.O_RDONLY | os.O_CREAT | _NOFOLLOW | os.O_NONBLOCK | _CLOEXEC, 0o644, dir_fd=dfd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                _refuse_entry(self.folder, LOCK_NAME, os.stat(LOCK_NAME, dir_fd=dfd, follow_symlinks=False))
            raise _err(self.folder / LOCK_NAME, exc, "create the run's lock file") from None
        finally:
            os.close(dfd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            mode = os.fstat(fd).st_mode
            os.close(fd)
            raise SpecError(f"{self.folder / LOCK_NAME}: is {kind_of(mode)}, not a file of a run; remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise SpecError(f"{self.folder}: another archcalc train is using this run folder; wait for it "
                                "to finish (then --resume it), or choose another --output") from None
            raise _err(self.folder / LOCK_NAME, exc, "lock the run folder") from None
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


__all__ = ["LOCK_NAME", "Lock", "check", "exists", "folder_name", "make", "open_file", "read_json", "read_text",
           "remove_temporaries", "write"]
