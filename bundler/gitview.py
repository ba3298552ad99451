"""What git says about a project's work tree: files it ignores, and files this checkout changed.

fbundle reads files from disk, not from git; git is asked only where one checkout of a commit
differs from another. A Windows clone with ``core.autocrlf=true`` (Git for Windows' default)
writes text files with CRLF line endings while the commit holds LF, so the same commit would
give a different zip on Windows and on Linux. Where git itself says a file's only difference
from the commit is that conversion, the committed bytes ship (:func:`committed_line_endings`).
Nothing here needs git: when it is missing, or the project is not in a work tree, the answers
are "nothing known" and the files ship as they are on disk.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

GIT_TIMEOUT = 60


def _git(root: Path, *args: str, data: bytes | None = None) -> bytes | None:
    """``git -C root ARGS`` output, or None when git is absent or ``root`` is no work tree."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], input=data, capture_output=True,
                              timeout=GIT_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode not in (0, 1):  # 128: not a work tree (or git could not tell)
        log.debug("git %s: %s", args[0], done.stderr.decode("utf-8", "replace").strip())
        return None
    return done.stdout


def _is_blob(data: bytes, blob: bytes) -> bool:
    """Whether ``data`` is the git object ``blob`` names (SHA-1, or SHA-256 repositories)."""
    algorithm = hashlib.sha256 if len(blob) == 64 else hashlib.sha1
    return algorithm(b"blob %d\0" % len(data) + data).hexdigest().encode() == blob


def git_ignored(root: Path, paths: Iterable[str]) -> set[str] | None:
    """Which of ``paths`` (relative to ``root``, as on disk) git ignores.

    None when git is not installed or ``root`` is not in a git work tree. Files git tracks
    are never reported (``git check-ignore`` without ``--no-index``): only what git would
    leave out of a commit.
    """
    data = b"".join(os.fsencode(p) + b"\0" for p in paths)
    if not data:
        return set()
    out = _git(root, "check-ignore", "--stdin", "-z", data=data)
    return None if out is None else {os.fsdecode(p) for p in out.split(b"\0") if p}


@dataclass(frozen=True)
class Tracked:
    """One file of git's index, as ``git ls-files --eol -s`` describes it."""

    mode: bytes  # b"100644", b"120000" (a symlink), ...
    blob: bytes
    eol: bytes  # "i/lf w/crlf attr/text eol=crlf"
    path: str  # relative to the folder asked about


def tracked(root: Path) -> list[Tracked]:
    """The files git tracks under ``root``, read once (empty without git or a work tree)."""
    out = _git(root, "ls-files", "--eol", "-s", "-z", "--", ".")
    found = []
    for record in (out or b"").split(b"\0"):
        # "<mode> <blob> <stage>\ti/<eol> w/<eol> attr/<attributes>\t<path>"
        head, _, rest = record.partition(b"\t")
        eol, _, raw_path = rest.partition(b"\t")
        fields = head.split()
        if len(fields) == 3 and raw_path:
            found.append(Tracked(fields[0], fields[1], eol, os.fsdecode(raw_path)))
    return found


def committed_line_endings(root: Path, index: list[Tracked],
                           paths: Iterable[str]) -> dict[str, bytes]:
    """The committed bytes of each of ``paths`` (relative to ``root``) that this checkout
    wrote with CRLF where the commit has LF, and that git calls unchanged.

    A file qualifies when the ``index`` (:func:`tracked`) says LF in the index and CRLF in the
    work tree, its attributes do not ask for CRLF in every checkout (``eol=crlf``: then every
    machine has the same bytes and they ship as they are), ``git diff`` lists no change to it,
    and the work-tree bytes with CRLF turned into LF hash to the very blob the index holds.
    That last test is what makes this safe: an edited file, a file behind a filter (Git LFS
    keeps a pointer in the index) or one with a lone CR differs from the blob and ships as it
    is.
    """
    wanted = set(paths)
    candidates = [t for t in index if t.path in wanted and t.eol.split()[:2] == [b"i/lf", b"w/crlf"]
                  and b"eol=crlf" not in t.eol]
    if not candidates:
        return {}
    changed = _git(root, "diff", "--name-only", "--relative", "-z", "--", ".")
    if changed is None:
        return {}
    edited = {os.fsdecode(p) for p in changed.split(b"\0") if p}  # git sees an edit: as on disk
    found: dict[str, bytes] = {}
    for file in candidates:
        if file.path in edited:
            continue
        try:
            data = (root / file.path).read_bytes().replace(b"\r\n", b"\n")
        except OSError:
            continue  # the walk that listed it will say why it cannot be read
        if _is_blob(data, file.blob):
            found[file.path] = data
    return found


def symlinks_checked_out_as_files(root: Path, index: list[Tracked],
                                  paths: Iterable[str]) -> dict[str, str]:
    """Each of ``paths`` that the commit holds as a symlink but this checkout wrote as a
    plain file holding the link's target (``core.symlinks=false``: Git for Windows without
    the symlink privilege), mapped to that target as written in the link.

    Only files still holding exactly the committed link text qualify (their bytes hash to the
    index blob), so a file the user replaced with real content ships as it is.
    """
    wanted = set(paths)
    found: dict[str, str] = {}
    for file in index:
        if file.mode != b"120000" or file.path not in wanted or (root / file.path).is_symlink():
            continue
        try:
            data = (root / file.path).read_bytes()
        except OSError:
            continue
        if _is_blob(data, file.blob):
            found[file.path] = os.fsdecode(data)
    return found
