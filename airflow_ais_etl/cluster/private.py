"""Private files and directories: everything the project writes under its home is the user's alone.

Directories are created 0700 and files 0600 *at creation* (the mode goes to ``mkdir``/``open``,
then ``fchmod`` pins it exactly), never created wider and narrowed later, and the process umask is
neither read nor changed: an Airflow worker runs other code in the same process. Every writer of
the local backend and the gateway goes through these functions.

:func:`ensure_private_home` is the check at start: a home (or a parent of it) that another user owns
or may write is refused with the command that fixes it; a home left readable by an older version
is tightened in place (see ``docs/security.md``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "PRIVATE_UMASK",
    "UnsafeHomeError",
    "ensure_private_home",
    "locked",
    "open_private",
    "private_dir",
    "write_private",
    "write_private_json",
]

DIR_MODE = 0o700
FILE_MODE = 0o600
PRIVATE_UMASK = 0o077
"""The umask of every process we start (pods, gateways): what they write is private too."""
_OPEN_FLAGS = os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)

log = logging.getLogger(__name__)


class UnsafeHomeError(PermissionError):
    """The home directory (or a parent of it) could be read or swapped by another user."""


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` and its missing parents as 0700 directories; return it (existing ones kept)."""
    p = Path(path)
    missing = []
    cur = p
    while not cur.exists():
        missing.append(cur)
        if cur.parent == cur:
            break
        cur = cur.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)  # the umask can only narrow this
        except FileExistsError:
            continue  # another process made it first: it made it the same way
        os.chmod(d, DIR_MODE)
    return p


def open_private(path: str | os.PathLike[str], mode: str = "ab") -> IO[Any]:
    """Open ``path`` for writing (``"ab"``, ``"wb"``, ``"a"``, ``"w"``, ``"xb"``...) as a 0600 file.

    An existing file is narrowed to 0600 too (a log left by an older version); symlinks are refused.
    """
    flags = _OPEN_FLAGS | (os.O_RDWR if "+" in mode else os.O_WRONLY)
    if "a" in mode:
        flags |= os.O_APPEND
    elif "x" in mode:
        flags |= os.O_EXCL
    else:
        flags |= os.O_TRUNC
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def write_private(path: str | os.PathLike[str], data: str | bytes, *, fsync: bool = False) -> None:
    """Replace ``path`` atomically by a 0600 file holding ``data`` (readers see old or new, never a mix)."""
    p = Path(path)
    private_dir(p.parent)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.")  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_private_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as JSON to ``path`` (see :func:`write_private`)."""
    write_private(path, json.dumps(data, indent=1, sort_keys=True))


def ensure_private_home(home: str | os.PathLike[str]) -> Path:
    """Create ``home`` 0700 if missing; refuse it when others could read its secrets or swap it.

    Refused (:class:`UnsafeHomeError`, with the fixing command): a home owned by another user, a home
    group/others may write, a parent directory others may write (unless sticky, like ``/tmp``) or
    that a user other than root or you owns. A home of yours only *readable* by others (what the
    first versions created) is tightened: group and others lose every bit on everything in it.
    """
    p = Path(home).expanduser().absolute()
    private_dir(p)
    real = Path(os.path.realpath(p))
    uid = os.geteuid()
    st = os.stat(real)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeHomeError(f"AIS_ETL_HOME {p} is not a directory; point AIS_ETL_HOME at a directory")
    if st.st_uid != uid:
        raise UnsafeHomeError(
            f"AIS_ETL_HOME {real} belongs to uid {st.st_uid}, not to you (uid {uid}): its state could be "
            "read or changed by that user. Use a home of your own: export AIS_ETL_HOME=~/.local/share/"
            "airflow-ais-etl (or any directory you own with mode 0700)"
        )
    if st.st_mode & 0o022:
        raise UnsafeHomeError(
            f"AIS_ETL_HOME {real} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o}): "
            f"another user could plant or swap its files. Check its contents, then run: chmod 700 {real}"
        )
    _check_parents(real, uid)
    if st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        log.warning("AIS_ETL_HOME %s was readable by others (mode %o): made private (0700)", real, mode)
        tighten_tree(real)
    return p


def _check_parents(real: Path, uid: int) -> None:
    for parent in real.parents:
        st = os.stat(parent)
        sticky = bool(st.st_mode & stat.S_ISVTX)
        if st.st_uid not in (0, uid):
            raise UnsafeHomeError(
                f"AIS_ETL_HOME {real} is inside {parent}, which belongs to uid {st.st_uid}: that user "
                "could swap your home. Put AIS_ETL_HOME under a directory only you and root own"
            )
        if st.st_mode & 0o022 and not sticky:
            raise UnsafeHomeError(
                f"AIS_ETL_HOME {real} is inside {parent}, which group or others may write (mode "
                f"{stat.S_IMODE(st.st_mode):o}): they could swap your home. Run: chmod go-w {parent} "
                "(or put AIS_ETL_HOME elsewhere)"
            )


def tighten_tree(root: Path) -> None:
    """Take group and others' bits off everything under ``root`` (owner bits kept, symlinks untouched)."""
    os.chmod(root, DIR_MODE)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if not stat.S_ISLNK(st.st_mode):
                    os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)


@contextlib.contextmanager
def locked(path: str | os.PathLike[str], *, shared: bool = False) -> Iterator[None]:
    """Hold a lock on ``path`` (a private file, created if needed) for the block: exclusive, or ``shared``."""
    private_dir(Path(path).parent)
    with open_private(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
