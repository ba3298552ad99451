"""A project's sources -> bundle entries, minus what never belongs in a bundle.

Exclusions use gitignore syntax (``pathspec``): the defaults below, then ``.fbundleignore`` and
``.agentignore`` at the project root (a ``!pattern`` there can re-include a default).

Symlinks: a link whose target resolves inside the project is stored as the file (or folder) it
points to, since the service unpacks a plain zip; a link that leads outside the project is an
error, because following it would ship files the project does not own and skipping it would
ship an agent that cannot import them.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import logging
import os
import posixpath
import stat
import struct
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pathspec

from bundler.checks.base import Finding, finding
from bundler.checks.layout import secret_finding
from bundler.errors import UsageError
from bundler.gitview import (
    Tracked,
    committed_line_endings,
    git_ignored,
    symlinks_checked_out_as_files,
    tracked,
)
from bundler.identity import BuildInfo, build_outputs
from bundler.model import CHUNK, EXEC_MODE, FILE_MODE, BytesData, Entry, FileData
from bundler.sensitive import SecretScan, judged, name_patterns, secret_by_name
from bundler.write import TEMP_PATTERN

log = logging.getLogger(__name__)

HEAD_BYTES = 64 * 1024  # what the mode is decided from (a shebang, an ELF program header)

IGNORE_FILES = (".fbundleignore", ".agentignore")
DEFAULT_EXCLUDES = (
    ".git/", ".hg/", ".svn/", ".venv/", "venv/", "__pycache__/", "*.pyc", "*.pyo",
    ".env", ".env.*", ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", ".hypothesis/",
    ".tox/", ".nox/", "/dist/", "node_modules/", "*.egg-info/", ".DS_Store", "Thumbs.db",
    ".idea/", ".vscode/", ".ipynb_checkpoints/", ".coverage", "htmlcov/",
    "/metadata.json", "/.fbundleignore", "/.agentignore",
    # azd's: its environment folder (values, sometimes secrets), its project file, the
    # container files of the image-based flow. agent.yaml is added unless the entry point
    # names it (see ``scan_sources``).
    ".azure/", "/azure.yaml", "Dockerfile", ".dockerignore",
    # temps of an interrupted fbundle write (bundler/write.py names them)
    TEMP_PATTERN,
    *name_patterns(),
)
AGENT_YAMLS = ("agent.yaml", "agent.yml")  # azd's agent definition (bundler/azd.py)
_SECRET_HINT = "a `!` pattern in .fbundleignore ships it"


@dataclass
class Collection:
    """What goes in, and what was left out and why (for ``build --list``).

    ``links`` are the symlinks that were followed (bundle path, what it points to, relative to
    the project; folders end in ``/``): each is stored as a copy of its target. ``findings``
    are the warnings collection itself can tell (FB112 for a secret-looking file a ``!``
    pattern shipped, FB114 for files git ignores); ``secrets`` the files left out because they
    look like secrets (for the note ``build`` prints).
    """

    entries: list[Entry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)


def _spec(lines: Iterable[str]) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _ignore_lines(root: Path) -> list[str]:
    lines: list[str] = []
    for name in IGNORE_FILES:
        path = root / name
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8").removeprefix("\ufeff")
                lines.extend(portable_pattern(line) for line in text.splitlines())
            except (OSError, UnicodeDecodeError) as error:
                raise UsageError(f"{path}: cannot be read ({error})", "fix or remove it") from None
    return lines


def entry_point_needs(entry_point: Sequence[str], name: str) -> bool:
    """Whether an argument of the entry point names the root file ``name`` (``agent.yaml``,
    ``./agent.yaml``, ``--config=agent.yaml``)."""
    for arg in entry_point[1:]:
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        if value.removeprefix("./") == name:
            return True
    return False


def scan_sources(
    root: Path,
    extra_excludes: Sequence[str] = (),
    *,
    output: Path | None = None,
    entry_point: Sequence[str] = (),
    git: bool = True,
) -> Collection:
    """Walk ``root`` in a fixed order and decide, file by file, what goes into the bundle.

    Every file taken is read once here: its sha256 travels in the entry (the writer checks the
    bytes it writes against it) and the same pass judges it for secrets
    (``sensitive.SecretScan``, the judge ``validate`` uses on a zip). ``git``: warn
    (FB114) about files git ignores, when ``root`` is in a git work tree.
    """
    root = root.resolve()
    fixed = [*DEFAULT_EXCLUDES, *extra_excludes]
    fixed += [f"/{name}" for name in AGENT_YAMLS if not entry_point_needs(entry_point, name)]
    defaults = _spec(fixed)
    # One spec in gitignore order, so a user's ``!pattern`` can re-include a default.
    combined = _spec([*fixed, *_ignore_lines(root)])
    output = output.resolve() if output else None
    outputs = previous_outputs(output) if output else set()
    result = Collection()
    on_disk: dict[str, tuple[str, int]] = {}  # path relative to root (no link on the way) -> name

    def decide(rel: str) -> tuple[str | None, bool]:
        """(why ``rel`` is left out or None, whether a user's ``!pattern`` decided it)."""
        checked = combined.check_file(rel)
        if checked.include:
            if not defaults.match_file(rel):
                return "matched an ignore file", False
            if kind := secret_by_name(rel):
                return f"looks like a secret: {kind}; {_SECRET_HINT}", False
            if fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], TEMP_PATTERN):
                return "a temp file an interrupted fbundle write left", False
            return "excluded by default", False
        return None, checked.include is False and (checked.index or 0) >= len(fixed)

    def skip(rel: str, reason: str) -> None:
        result.skipped.append((rel, reason))
        if reason.startswith("looks like a secret"):
            result.secrets.append(rel)

    def walk(directory: Path, prefix: str, ancestors: frozenset[tuple[int, int]],
             linked: bool) -> None:
        try:
            children = sorted(os.scandir(directory), key=lambda d: d.name)
        except OSError as error:
            raise UsageError(f"{directory}: cannot be listed ({error})", "fix its permissions") \
                from None
        for child in children:
            name = _archive_name(child.name, directory)
            rel = f"{prefix}{name}"
            path = Path(child.path)
            is_link = child.is_symlink()
            target_rel = ""
            if is_link:
                target = _resolve_link(path)
                if isinstance(target, str):
                    if decide(rel)[0] or decide(rel + "/")[0]:
                        result.skipped.append((rel, f"{target}, excluded"))
                        continue
                    raise UsageError(f"{rel} is {target}", "remove it or point it at a real file")
                if not target.is_relative_to(root) and (decide(rel)[0] or decide(rel + "/")[0]):
                    result.skipped.append((rel, "symlink out of the project, excluded"))
                    continue
                if not target.is_relative_to(root):
                    raise UsageError(
                        f"{rel} is a symlink to {target}, outside the project",
                        "copy the file into the project, or list it in .fbundleignore",
                    )
                target_rel = target.relative_to(root).as_posix()
            if child.is_dir(follow_symlinks=True):
                reason, kept = decide(rel + "/")
                if reason is None and is_link and target_rel != ".":
                    reason = _excluded_target(decide(target_rel + "/")[0], target_rel + "/")
                if reason:
                    skip(rel + "/", reason)
                    continue
                st = path.stat()
                if (st.st_dev, st.st_ino) in ancestors:
                    shown = "the project root" if target_rel == "." else f"{target_rel}/"
                    result.skipped.append((rel + "/", f"symlink loop: points to {shown}, a "
                                           "folder it is inside"))
                    continue
                if not kept and _holds_venv(path):
                    result.skipped.append((rel + "/", "a virtual environment (holds "
                                           "pyvenv.cfg)"))
                    continue
                if is_link:
                    result.links.append((rel + "/", target_rel + "/"))
                walk(path, rel + "/", ancestors | {(st.st_dev, st.st_ino)}, linked or is_link)
                continue
            reason, kept = decide(rel)
            if reason is None and is_link:
                reason = _excluded_target(decide(target_rel)[0], target_rel)
            if reason:
                skip(rel, reason)
                continue
            try:
                st = path.stat()
            except OSError as error:
                raise UsageError(f"{rel}: cannot be read ({error})", "fix its permissions") \
                    from None
            if not stat.S_ISREG(st.st_mode):
                result.skipped.append((rel, "not a regular file"))
                continue
            if output is not None and path.resolve() in outputs:
                result.skipped.append((rel, "the output zip or its identity files"))
                continue
            if not os.access(path, os.R_OK):
                raise UsageError(f"{rel}: cannot be read (permission denied)",
                                 "fix its permissions or exclude it in .fbundleignore")
            scan = SecretScan(rel) if judged(rel) else None
            digest, head, size = _read(path, rel, scan)
            # Not kept, a secret-looking name was already left out by ``decide``; a kept one
            # is judged by its bytes first, as validate does.
            if scan is not None and (kind := scan.verdict()):
                if not kept:
                    skip(rel, f"looks like a secret: {kind}; {_SECRET_HINT}")
                    continue
                result.findings.append(secret_finding(rel, kind))
            if is_link:
                result.links.append((rel, target_rel))
            elif not linked:
                on_disk[os.path.relpath(child.path, root)] = (rel, size)
            mode = EXEC_MODE if head.startswith(b"#!") or elf_executable(head) else FILE_MODE
            result.entries.append(Entry(rel, size, FileData(path), mode, origin="source",
                                        sha256=digest))

    top = root.stat()
    walk(root, "", frozenset({(top.st_dev, top.st_ino)}), False)
    refuse_host_dependent_names(result.entries)
    if git and (found := git_ignored_finding(root, on_disk)):
        result.findings.append(found)
    if git and (index := tracked(root)):
        _as_committed(root, index, on_disk, result)
        _links_as_committed(root, index, on_disk, result)
    return result


def _as_committed(root: Path, index: list[Tracked], on_disk: dict[str, tuple[str, int]],
                  result: Collection) -> None:
    """Files this checkout wrote with CRLF (``core.autocrlf``) ship with the commit's LF, so
    a Windows clone and a Linux one of the same commit give the same zip."""
    committed = committed_line_endings(root, index, on_disk)
    if not committed:
        return
    names = {on_disk[path][0]: data for path, data in committed.items()}
    result.entries = [
        replace(e, size=len(names[e.name]), data=BytesData(names[e.name]),
                sha256=hashlib.sha256(names[e.name]).hexdigest()) if e.name in names else e
        for e in result.entries]
    log.info("%d file(s) have CRLF line endings only in this checkout (git core.autocrlf); "
             "they ship with the LF endings of the commit", len(names))


def _links_as_committed(root: Path, index: list[Tracked], on_disk: dict[str, tuple[str, int]],
                        result: Collection) -> None:
    """A symlink this checkout wrote as a text file (``core.symlinks=false``) is followed as
    a Linux checkout's symlink is: its name ships the file or folder it points to."""
    links = symlinks_checked_out_as_files(root, index, on_disk)
    if not links:
        return
    by_name = {e.name: e for e in result.entries}
    instead: dict[str, list[Entry]] = {}  # the text file's name -> what ships in its place
    for path, text in sorted(links.items()):
        rel = on_disk[path][0]
        target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), text))
        if posixpath.isabs(text) or target == ".." or target.startswith("../"):
            raise UsageError(f"{rel} is a symlink to {text}, outside the project (git "
                             "checked it out as a text file: core.symlinks=false)",
                             "copy the file into the project, or list it in .fbundleignore")
        inside = [e for n, e in by_name.items() if n.startswith(target + "/")]
        if target in by_name and target != rel:
            instead[rel] = [replace(by_name[target], name=rel)]
            result.links.append((rel, target))
        elif inside:
            instead[rel] = [replace(e, name=rel + e.name[len(target):]) for e in inside]
            result.links.append((rel + "/", target + "/"))
        elif (root / target).exists():
            instead[rel] = []
            result.skipped.append((rel, f"symlink to {target}, which is left out"))
        else:
            raise UsageError(f"{rel} is a broken symlink (git checked it out as a text file "
                             f"naming {text})", "remove it or point it at a real file")
    result.entries = [shipped for e in result.entries for shipped in instead.get(e.name, [e])]
    log.info("%d symlink(s) were checked out as text files (git core.symlinks=false); "
             "they ship what they point to, as on Linux", len(links))


def _holds_venv(folder: Path) -> bool:
    try:
        return (folder / "pyvenv.cfg").is_file()
    except OSError:  # a folder that cannot be looked into: walking it says so, in one line
        return False


def rehashed(entry: Entry) -> Entry:
    """A source entry with the size and sha256 of its file now (for a file the build itself
    rewrote after collecting it, such as the lock under ``--update-lock``)."""
    if not isinstance(entry.data, FileData):
        return entry
    digest, _, size = _read(entry.data.path, entry.name)
    return replace(entry, size=size, sha256=digest)


def previous_outputs(zip_path: Path) -> set[Path]:
    """The files an earlier build wrote for ``zip_path``: never sources of this one.

    Only when ``<zip>.json`` says a build wrote them: a project file that merely sits where the
    zip or a file beside it would go is a source (and ``plan.check_outputs`` refuses to
    replace it) — ``-o helper.py`` must not make helper.py vanish from the bundle.
    """
    return build_outputs(zip_path) if BuildInfo.read(zip_path) is not None else set()


def _resolve_link(path: Path) -> Path | str:
    """Where a symlink leads (fully resolved), or what is wrong with it."""
    try:
        return path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 on a loop
        return "a symlink loop (it leads back to itself)"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symlink loop (it leads back to itself)"
        return "a broken symlink"


def _excluded_target(reason: str | None, target_rel: str) -> str | None:
    """A link to a file or folder that is itself left out is left out too: following it
    would ship what the excludes keep out (``cfg -> .env``)."""
    return f"symlink to {target_rel}, which is left out ({reason})" if reason else None


def _read(path: Path, rel: str, scan: SecretScan | None = None) -> tuple[str, bytes, int]:
    """(sha256, the first HEAD_BYTES, size) of a source file, in one read that also feeds
    ``scan`` (as far as it wants)."""
    digest = hashlib.sha256()
    head = b""
    size = 0
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(CHUNK):
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                if scan is not None and not scan.feed(chunk):
                    scan = None
                digest.update(chunk)
                size += len(chunk)
    except OSError as error:
        raise UsageError(f"{rel}: cannot be read ({error.strerror or error})",
                         "fix its permissions or exclude it in .fbundleignore") from None
    return digest.hexdigest(), head, size


def git_ignored_finding(root: Path, on_disk: dict[str, tuple[str, int]]) -> Finding | None:
    """FB114, one for the whole bundle: how many files git ignores would ship, the largest."""
    ignored = git_ignored(root, on_disk)
    if not ignored:
        return None
    shipped = sorted((on_disk[p] for p in ignored if p in on_disk), key=lambda x: (-x[1], x[0]))
    if not shipped:
        return None
    (largest, size), count = shipped[0], len(shipped)
    total = sum(s for _, s in shipped)
    files = "1 file" if count == 1 else f"{count} files"
    return finding("FB114", largest, f"{files} that git ignores would ship ({_mb(total)}); "
                   f"the largest is {largest} ({_mb(size)})",
                   "list what the agent does not need in .fbundleignore (`git check-ignore "
                   "-v PATH` shows which rule ignores a file)")


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size} bytes"


# -- what a Windows or macOS checkout would change --------------------------------------------
# A source entry's mode is a function of its bytes, never of the host's execute bits (a Windows
# checkout has none, a FAT or WSL mount sets them all): 0755 exactly when the file starts with
# "#!" or is an ELF executable, 0644 otherwise. Names are stored NFC (macOS hands out NFD), and
# names that differ only in case or normalisation are refused, because a Windows or macOS
# checkout keeps one of them. Ignore-file patterns are read NFC, and a backslash that does not
# escape a special character is a folder separator, as a Windows user means it.

_ET_EXEC, _ET_DYN, _PT_INTERP = 2, 3, 3
_SPECIAL_AFTER_BACKSLASH = set("\\#! *?[]")


def source_mode(path: Path, rel: str) -> int:
    """0755 when ``path`` starts with ``#!`` or is an ELF executable, else 0644."""
    try:
        with path.open("rb") as stream:
            head = stream.read(4096)
    except OSError as error:
        raise UsageError(f"{rel}: cannot be read ({error.strerror or error})",
                         "fix its permissions or exclude it in .fbundleignore") from None
    return EXEC_MODE if head.startswith(b"#!") or elf_executable(head) else FILE_MODE


def elf_executable(head: bytes) -> bool:
    """An ELF program (ET_EXEC, or ET_DYN with a PT_INTERP: a PIE), not a shared library."""
    if len(head) < 52 or not head.startswith(b"\x7fELF") or head[4] not in (1, 2) \
            or head[5] not in (1, 2):
        return False
    order = "<" if head[5] == 1 else ">"
    (e_type,) = struct.unpack_from(order + "H", head, 16)
    if e_type == _ET_EXEC:
        return True
    if e_type != _ET_DYN:
        return False
    if head[4] == 2:
        if len(head) < 64:
            return False
        (phoff,) = struct.unpack_from(order + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
    else:
        (phoff,) = struct.unpack_from(order + "I", head, 28)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 42)
    for index in range(min(phnum, 64)):
        at = phoff + index * phentsize
        if phentsize < 4 or at + 4 > len(head):
            return False
        if struct.unpack_from(order + "I", head, at)[0] == _PT_INTERP:
            return True
    return False


def portable_pattern(line: str) -> str:
    """An ignore-file line as gitignore reads it on Linux: NFC, and ``\\`` as ``/`` unless it
    escapes a special character (``\\#``, ``\\!``, ``\\ ``, ``\\*``, ...)."""
    line = unicodedata.normalize("NFC", line)
    if "\\" not in line:
        return line
    out: list[str] = []
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\" and index + 1 < len(line) and line[index + 1] in _SPECIAL_AFTER_BACKSLASH:
            out.append(line[index:index + 2])
            index += 2
            continue
        out.append("/" if char == "\\" else char)
        index += 1
    return "".join(out)


def refuse_host_dependent_names(entries: Sequence[Entry]) -> None:
    """Two sources whose names differ only in case (or were NFC-normalised to one name) cannot
    both exist in a Windows or macOS checkout: refuse, naming both."""
    seen: dict[str, str] = {}
    folders: dict[str, str] = {}
    for entry in entries:
        key = entry.name.casefold()
        other = seen.get(key)
        if other is not None:
            _refuse_twins(other, entry.name)
        seen[key] = entry.name
        parts = entry.name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            folders.setdefault(folder.casefold(), folder)
    for key, folder in folders.items():  # a file where another spelling is a folder
        if key in seen:
            _refuse_twins(seen[key], folder + "/")


def _refuse_twins(first: str, second: str) -> None:
    what = "are the same name once normalised" if first.rstrip("/") == second.rstrip("/") \
        else "differ only in case"
    raise UsageError(f"{first} and {second} {what}: a Windows or macOS checkout keeps only one "
                     "of them, so the bundle would differ by host", "rename one of them")


def _archive_name(name: str, directory: Path) -> str:
    """A file name as stored in the zip: NFC, and refused when it cannot be stored portably."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"{directory / name!r} has a name that is not valid UTF-8",
            "rename it: zip names must be UTF-8",
        ) from None
    if control := next((c for c in name if ord(c) < 0x20 or ord(c) == 0x7F), None):
        raise UsageError(
            f"{directory / name!r} has a control character ({control!r}) in its name",
            "rename it: such names are ambiguous in listings, digests and logs",
        )
    if "\\" in name:
        raise UsageError(f"{directory / name}: backslash in a file name",
                         "rename it: backslashes become folder separators on Windows")
    return unicodedata.normalize("NFC", name)


def collect_sources(
    root: Path, extra_excludes: Sequence[str] = (), *, output: Path | None = None
) -> list[Entry]:
    """The entries of ``scan_sources`` (what goes in)."""
    return scan_sources(root, extra_excludes, output=output, git=False).entries
