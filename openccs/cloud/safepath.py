"""Paths that tenants control, opened inside a root they cannot leave, and handed to a daemon
as a mount that cannot be swapped afterwards.

A machine's disk (`rootfs/`) is written by its tenants' containers, which may put symbolic
links anywhere in it. Every path openccs resolves there on a tenant's behalf (hostPath
volumes, host-log globs) goes through `open_beneath`, with the rule of openat2's
RESOLVE_BENEATH: relative links that stay inside the root are followed; a link with an
absolute target, or a `..` (in the path or in a link's target) that would climb above the
root, is refused with `UnsafePath`. Absolute targets are refused rather than rebased onto
the root because a link names a path of the container that made it, whose mounts the disk
does not share: rebased, it would name some other file than the one its maker saw.

The check and the use cannot be told apart by a racing container: resolution holds file
descriptors (openat2, or a component-by-component walk with O_NOFOLLOW when the kernel has
no openat2), and `stage` bind-mounts the descriptor itself onto a directory openccs owns,
so the daemon is given a path no tenant can write.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fnmatch
import os
import stat
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from openccs.log import get_logger, log_event

log = get_logger("openccs.cloud.safepath")

SYS_OPENAT2 = 437  # the same number on every architecture (added after the unification)
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08
MS_BIND, MS_PRIVATE, MNT_DETACH = 0x1000, 1 << 18, 2
MAX_LINKS = 40  # as the kernel's MAXSYMLINKS
_PATH_FLAGS = os.O_PATH | os.O_CLOEXEC

_libc = ctypes.CDLL(None, use_errno=True)


class UnsafePath(Exception):
    """A path that would leave its root, or that cannot be used; `str()` says why."""


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _openat2(dir_fd: int, path: str, flags: int) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(
        SYS_OPENAT2, dir_fd, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how)
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)


_HAS_OPENAT2: bool | None = None


def has_openat2() -> bool:
    global _HAS_OPENAT2
    if _HAS_OPENAT2 is None:
        try:
            os.close(_openat2(os.open("/", _PATH_FLAGS), ".", os.O_PATH))
            _HAS_OPENAT2 = True
        except OSError as exc:
            _HAS_OPENAT2 = exc.errno not in (errno.ENOSYS, errno.EPERM)
    return _HAS_OPENAT2


def _shown(names: list[str]) -> str:
    return "/" + "/".join(names)


def walk_beneath(root_fd: int, path: str, create: bool = False) -> int:
    """An O_PATH descriptor of `path` resolved below `root_fd`, one component at a time
    with descriptors held (never a path re-read), creating missing directories when
    `create`. Raises `UnsafePath` for a way out of the root, OSError otherwise."""
    stack = [os.dup(root_fd)]
    names: list[str] = []
    todo = deque(path.split("/"))
    links = created = 0
    try:
        while todo:
            part = todo.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if len(stack) == 1:
                    raise UnsafePath(f"'..' at {_shown(names) or '/'} climbs out of the root")
                os.close(stack.pop())
                names.pop()
                continue
            try:
                fd = os.open(part, _PATH_FLAGS | os.O_NOFOLLOW, dir_fd=stack[-1])
            except FileNotFoundError:
                # Bounded: a container deleting what is made here cannot keep us looping.
                if not create or created > 4 * MAX_LINKS:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=stack[-1])
                created += 1
                todo.appendleft(part)
                continue
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                target = os.readlink("", dir_fd=fd)  # the link this descriptor holds
                os.close(fd)
                where = _shown([*names, part])
                links += 1
                if links > MAX_LINKS:
                    raise UnsafePath(f"too many symbolic links at {where}")
                if target.startswith("/"):
                    raise UnsafePath(
                        f"{where} is a symbolic link to {target!r}; absolute link targets"
                        " are not followed"
                    )
                todo.extendleft(reversed(target.split("/")))
                continue
            stack.append(fd)
            names.append(part)
        fd = stack.pop()
        return fd
    finally:
        for held in stack:
            os.close(held)


def open_beneath(root: Path | int, path: str, create: bool = False) -> int:
    """An O_PATH descriptor of `path` inside `root` (a directory or its descriptor), by the
    rule of the module docstring; missing directories are made when `create`."""
    root_fd = root if isinstance(root, int) else os.open(root, _PATH_FLAGS | os.O_DIRECTORY)
    try:
        if has_openat2():
            with contextlib.suppress(OSError):
                return _openat2(root_fd, path.lstrip("/") or ".", os.O_PATH)
        # Missing parts to make, or a way out: the walk makes them, or says which link.
        return walk_beneath(root_fd, path, create)
    finally:
        if root_fd is not root:
            os.close(root_fd)


def open_for_reading(root: Path | int, path: str) -> int:
    """A read-only descriptor of the regular file or directory `path` inside `root`;
    anything else (a FIFO that would block, a device) is refused before it is opened."""
    fd = open_beneath(root, path)
    try:
        return reopen_for_reading(fd, path)
    finally:
        os.close(fd)


def reopen_for_reading(fd: int, path: str = "") -> int:
    """A read-only descriptor of what the O_PATH descriptor `fd` holds, a regular file or a
    directory; anything else (a FIFO that would block, a device) is never opened."""
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UnsafePath(f"{path or 'it'} is not a regular file or a directory")
    # Reopening the held descriptor reaches the same inode, whatever the path is now.
    return os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)


def glob_beneath(root: Path, pattern: str) -> list[str]:
    """Paths (relative, without a leading /) inside `root` whose names match `pattern`
    (glob syntax with `**` for any depth; `*` skips hidden names, as glob does). Directories
    are listed through descriptors and links to directories are not descended into; the
    matches are to be opened with `open_for_reading`."""
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    found: set[str] = set()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _glob(fd, "", parts, found)
    finally:
        os.close(fd)
    return sorted(found)


def _glob(fd: int, prefix: str, parts: list[str], found: set[str]) -> None:
    part, rest = parts[0], parts[1:]
    if part == "**":  # any number of directories, none included
        if rest:
            _glob(fd, prefix, rest, found)
        for name in _names(fd, "*"):
            if not rest:
                found.add(prefix + name)
            if _is_dir(fd, name):
                _descend(fd, prefix, name, parts, found)
        return
    for name in _names(fd, part):
        if rest:
            _descend(fd, prefix, name, rest, found)
        else:
            found.add(prefix + name)


def _names(fd: int, part: str) -> Iterator[str]:
    if part == "..":
        return  # never above where the pattern started
    if not any(c in part for c in "*?["):
        yield part  # a literal name: no listing
        return
    try:
        names = os.listdir(fd)
    except OSError:
        return
    for name in names:
        if name.startswith(".") and not part.startswith("."):
            continue
        if fnmatch.fnmatchcase(name, part):
            yield name


def _is_dir(fd: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _descend(fd: int, prefix: str, name: str, parts: list[str], found: set[str]) -> None:
    try:
        sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except OSError:
        return
    try:
        _glob(sub, f"{prefix}{name}/", parts, found)
    finally:
        os.close(sub)


# -- handing a resolved path to a daemon ----------------------------------------------------
def _mount(source: str | None, target: str, flags: int) -> None:
    src = os.fsencode(source) if source is not None else None
    if _libc.mount(src, os.fsencode(target), None, ctypes.c_ulong(flags), None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def mount_points() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {_unescape(line.split()[4]) for line in f}


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    return field.encode().decode("unicode_escape") if "\\" in field else field


def private_dir(directory: Path) -> None:
    """Make `directory` a private mount of itself, so the mounts made below it appear in no
    other mount namespace (they are for the daemons of this one only)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if str(directory) in mount_points():
        return
    _mount(str(directory), str(directory), MS_BIND)
    _mount(None, str(directory), MS_PRIVATE)


def stage(root: Path, path: str, area: Path, name: str, create: bool = True) -> Path:
    """Resolve `path` inside `root` and bind-mount what was found on `area/name` (made
    here: a directory, or an empty file to match), the path to give the daemon. `area` is
    a directory of openccs's own that no tenant can write. Already mounted: kept as it is
    (it holds what was resolved when the pod started), unless what it holds was deleted
    since (no daemon can mount that again), then resolved anew."""
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise UnsafePath(f"{name!r} is not a plain name below {area}")
    target = area / name
    if str(target) in mount_points():
        if os.stat(target).st_nlink > 0:
            return target
        release(target)
    private_dir(area)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = open_beneath(root, path, create)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISBLK(mode) or stat.S_ISCHR(mode):
            raise UnsafePath(f"{path} is a device node")
        if stat.S_ISDIR(mode):
            target.mkdir(exist_ok=True, mode=0o700)
        else:
            target.touch(mode=0o600, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", str(target), MS_BIND)
    finally:
        os.close(fd)
    return target


def release(directory: Path) -> list[str]:
    """Detach every mount at or below `directory`, then remove what is left there: empty
    directories and empty files only, and never through a mount point, so what a mount
    still shows is never deleted. Returns the mount points detached."""
    prefix = str(directory).rstrip("/")
    points = sorted(
        (p for p in mount_points() if p == prefix or p.startswith(prefix + "/")),
        key=lambda p: (-p.count("/"), p),
    )
    for point in points:
        if _libc.umount2(os.fsencode(point), MNT_DETACH) != 0:
            err = ctypes.get_errno()
            log_event(log, "unmount failed", path=point, error=os.strerror(err))
    _remove_empty(str(directory), mount_points())
    return points


def _remove_empty(path: str, mounted: set[str]) -> None:
    if path in mounted:
        return
    try:
        st = os.lstat(path)
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(OSError):
            for name in os.listdir(path):
                _remove_empty(os.path.join(path, name), mounted)
        with contextlib.suppress(OSError):
            os.rmdir(path)
    elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
        with contextlib.suppress(OSError):
            os.unlink(path)
