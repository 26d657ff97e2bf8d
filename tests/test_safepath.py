"""Paths resolved inside a root (cloud.safepath): links and '..' never lead out of it, a link
swapped in while resolving is never followed out, and staged mounts hold what was resolved."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from openccs.cloud import safepath
from openccs.cloud.safepath import UnsafePath

Resolver = Callable[[Path, str, bool], int]


def _walk(root: Path, path: str, create: bool) -> int:
    fd = os.open(root, os.O_PATH)
    try:
        return safepath.walk_beneath(fd, path, create)
    finally:
        os.close(fd)


def _openat2(root: Path, path: str, create: bool) -> int:
    return safepath.open_beneath(root, path, create)


# The racer: a process of its own (as a container would be), so that it runs beside the
# resolver, not between its bytecodes. It flips a path between a directory and two links out.
FLIP = """
import os, sys
r, out = sys.argv[1], sys.argv[2]
print("racing", flush=True)
steps = ((os.mkdir, os.rmdir), (lambda p: os.symlink(out, p), os.unlink),
         (lambda p: os.symlink("../../outside", p), os.unlink))
while True:
    for make, undo in steps:
        try:
            make(r)
            undo(r)
        except OSError:
            pass
"""


def start_racer(path: Path, outside: Path) -> subprocess.Popen[str]:
    racer = subprocess.Popen(
        [sys.executable, "-c", FLIP, str(path), str(outside)], stdout=subprocess.PIPE, text=True
    )
    assert racer.stdout is not None and racer.stdout.readline() == "racing\n"
    return racer


RESOLVERS = [pytest.param(_walk, id="walk"), pytest.param(_openat2, id="openat2")]


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A root with /a/b/c/d (d holding 'inside') and a secret directory outside it."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a" / "b" / "c" / "d").mkdir(parents=True)
    (root / "a" / "b" / "c" / "d" / "inside").write_text("in")
    outside.mkdir()
    (outside / "secret").write_text("host")
    return root, outside


def _ident(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    os.close(fd)
    return st.st_dev, st.st_ino


def _id_of(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


@pytest.mark.parametrize("resolve", RESOLVERS)
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("kind", ["absolute", "relative", "dotdot-in-target"])
def test_a_link_out_at_any_component_is_refused(
    tree: tuple[Path, Path], resolve: Resolver, depth: int, kind: str
) -> None:
    root, outside = tree
    parts = ["a", "b", "c", "d"]
    link = root.joinpath(*parts[:depth])
    target = {
        "absolute": str(outside),
        "relative": "../" * depth + "../outside",
        "dotdot-in-target": "x/../" + "../" * depth + "../outside",
    }[kind]
    os.rename(link, link.with_name("moved"))
    link.symlink_to(target)
    with pytest.raises(UnsafePath) as err:
        resolve(root, "/" + "/".join(parts), True)
    assert "/" + "/".join(parts[:depth]) in str(err.value) or "'..'" in str(err.value)
    assert sorted(os.listdir(outside)) == ["secret"]  # nothing made outside


@pytest.mark.parametrize("resolve", RESOLVERS)
def test_links_and_dotdot_that_stay_inside_are_followed(
    tree: tuple[Path, Path], resolve: Resolver
) -> None:
    root, _ = tree
    d = root / "a" / "b" / "c" / "d"
    (root / "rel").symlink_to("a/b/c/d")
    (root / "a" / "up").symlink_to("../a/b/./c/../c/d")
    assert _ident(resolve(root, "/rel", False)) == _id_of(d)
    assert _ident(resolve(root, "/a/up/", False)) == _id_of(d)
    assert _ident(resolve(root, "/", False)) == _id_of(root)


@pytest.mark.parametrize("resolve", RESOLVERS)
def test_dotdot_in_the_path_above_the_root_is_refused(
    tree: tuple[Path, Path], resolve: Resolver
) -> None:
    root, _ = tree
    with pytest.raises(UnsafePath):
        resolve(root, "/a/../../outside", False)


@pytest.mark.parametrize("resolve", RESOLVERS)
def test_missing_directories_are_made_inside_only(
    tree: tuple[Path, Path], resolve: Resolver
) -> None:
    root, outside = tree
    assert _ident(resolve(root, "/new/x/y", True)) == _id_of(root / "new" / "x" / "y")
    (root / "to-out").symlink_to(str(outside))
    with pytest.raises(UnsafePath):
        resolve(root, "/to-out/made/here", True)
    assert not (outside / "made").exists()
    with pytest.raises(FileNotFoundError):
        resolve(root, "/absent", False)
    (root / "loop").symlink_to("loop")
    with pytest.raises((UnsafePath, OSError)):
        resolve(root, "/loop", False)


@pytest.mark.parametrize("resolve", RESOLVERS)
def test_a_link_swapped_in_a_loop_while_resolving_never_leads_out(
    tree: tuple[Path, Path], resolve: Resolver
) -> None:
    root, outside = tree
    r = root / "a" / "r"
    racer = start_racer(r, outside)
    seen = {"refused": 0, "missing": 0, "inside": 0}
    deadline = time.monotonic() + 120  # time, not a count of tries: the load decides
    try:
        while time.monotonic() < deadline:
            try:
                fd = resolve(root, "/a/r", False)
            except UnsafePath:
                seen["refused"] += 1
                continue
            except OSError:
                seen["missing"] += 1
                continue
            assert _ident(fd) != _id_of(outside)
            seen["inside"] += 1
            if seen["refused"] >= 20 and seen["inside"] >= 20:
                break
    finally:
        racer.kill()
        racer.wait()
    assert seen["refused"] >= 20 and seen["inside"] >= 20, seen  # the race was on


@pytest.fixture
def area(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "area"
    yield where
    safepath.release(where)


def test_a_staged_mount_holds_what_was_resolved_and_release_keeps_the_data(
    tree: tuple[Path, Path], area: Path
) -> None:
    root, _ = tree
    staged = safepath.stage(root, "/a/b/c/d", area, "pod/v")
    assert str(staged) in safepath.mount_points()
    # Swapping the path afterwards changes nothing of the mount.
    os.rename(root / "a" / "b", root / "a" / "moved")
    (root / "a" / "b").symlink_to("/")
    assert os.listdir(staged) == ["inside"]
    assert safepath.stage(root, "/a/b/c/d", area, "pod/v") == staged  # kept as it was
    file_staged = safepath.stage(root, "/a/moved/c/d/inside", area, "pod/f")
    assert file_staged.read_text() == "in"
    assert sorted(safepath.release(area / "pod")) == [str(file_staged), str(staged)]
    assert not (area / "pod").exists()
    assert (root / "a" / "moved" / "c" / "d" / "inside").read_text() == "in"
    with pytest.raises(UnsafePath):
        safepath.stage(root, "/a/b/c/d", area, "pod/v")
    with pytest.raises(UnsafePath):
        safepath.stage(root, "/a/moved", area, "pod/../../v")
    # What a staged mount holds is deleted: the next stage resolves the path anew.
    gone = safepath.stage(root, "/e", area, "pod/e")
    (root / "e").rmdir()
    assert os.stat(gone).st_nlink == 0
    assert safepath.stage(root, "/e", area, "pod/e") == gone
    assert os.stat(gone).st_ino == os.stat(root / "e").st_ino
    safepath.release(area / "pod")
    assert not any(p.startswith(f"{area}/") for p in safepath.mount_points())


def test_a_staged_mount_under_a_racing_link_never_shows_the_outside(
    tree: tuple[Path, Path], area: Path
) -> None:
    root, outside = tree
    r = root / "r"
    racer = start_racer(r, outside)
    seen = {"refused": 0, "staged": 0}
    # Until both outcomes were seen a few times: how the racer and this loop interleave
    # depends on the machine's load, so the bound is time, not a count of tries.
    deadline = time.monotonic() + 120
    try:
        for i in itertools.count():
            if time.monotonic() > deadline:
                break
            try:
                staged = safepath.stage(root, "/r", area, f"p{i}/v", create=False)
            except UnsafePath:
                seen["refused"] += 1
                continue
            except OSError:
                continue
            assert "secret" not in os.listdir(staged)
            assert os.stat(staged).st_ino != os.stat(outside).st_ino
            seen["staged"] += 1
            safepath.release(area / f"p{i}")
            if min(seen.values()) >= 3:
                break
    finally:
        racer.kill()
        racer.wait()
    assert min(seen.values()) >= 3, seen  # the race was on


def test_globs_stay_inside_and_only_regular_files_are_opened(
    tree: tuple[Path, Path], tmp_path: Path
) -> None:
    root, outside = tree
    logs = root / "var" / "log"
    (logs / "app" / "deep").mkdir(parents=True)
    (logs / "app" / "a.log").write_text("a\n")
    (logs / "app" / "deep" / "b.log").write_text("b\n")
    (logs / "app" / ".hidden.log").write_text("h\n")
    (logs / "app" / "in.log").symlink_to("a.log")
    (logs / "app" / "out.log").symlink_to(str(outside / "secret"))
    (logs / "app" / "outdir").symlink_to(str(outside))
    (logs / "app" / "fifo.log").unlink(missing_ok=True)
    os.mkfifo(logs / "app" / "fifo.log")
    (outside / "x.log").write_text("host\n")

    found = safepath.glob_beneath(root, "/var/log/app/*.log")
    assert found == [f"var/log/app/{n}" for n in ("a.log", "fifo.log", "in.log", "out.log")]
    assert safepath.glob_beneath(root, "/var/log/**/*.log") == [
        "var/log/app/a.log",
        "var/log/app/deep/b.log",
        "var/log/app/fifo.log",
        "var/log/app/in.log",
        "var/log/app/out.log",
    ]  # the link to a directory outside is not descended into
    assert safepath.glob_beneath(root, "/var/log/app/outdir/*.log") == []  # not even listed
    readable = {}
    for rel in [*found, "var/log/app/outdir/x.log"]:
        try:
            fd = safepath.open_for_reading(root, rel)
        except (UnsafePath, OSError):
            continue
        with os.fdopen(fd, "rb") as fh:
            readable[rel] = fh.read()
    assert readable == {"var/log/app/a.log": b"a\n", "var/log/app/in.log": b"a\n"}
