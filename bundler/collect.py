"""A project's sources -> bundle entries, minus what never belongs in a bundle.

Exclusions use gitignore syntax (``pathspec``): the defaults below, then ``.fbundleignore`` and
``.agentignore`` at the project root (a ``!pattern`` there can re-include a default).

Symlinks: a link whose target resolves inside the project is stored as the file (or folder) it
points to, since the service unpacks a plain zip; a link that leads outside the project is an
error, because following it would ship files the project does not own and skipping it would
ship an agent that cannot import them.
"""

from __future__ import annotations

import os
import stat
import struct
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from bundler.errors import UsageError
from bundler.identity import build_outputs
from bundler.model import EXEC_MODE, FILE_MODE, Entry, FileData

IGNORE_FILES = (".fbundleignore", ".agentignore")
DEFAULT_EXCLUDES = (
    ".git/", ".hg/", ".svn/", ".venv/", "venv/", "__pycache__/", "*.pyc", "*.pyo",
    ".env", ".env.*", ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", ".hypothesis/",
    ".tox/", ".nox/", "/dist/", "node_modules/", "*.egg-info/", ".DS_Store", "Thumbs.db",
    ".idea/", ".vscode/", ".ipynb_checkpoints/", ".coverage", "htmlcov/",
    "/metadata.json", "/.fbundleignore", "/.agentignore",
    ".azure/",  # azd's environments: their .env files hold provisioned values and secrets
)


@dataclass
class Collection:
    """What goes in, and what was left out and why (for ``build --list``)."""

    entries: list[Entry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


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


def scan_sources(
    root: Path,
    extra_excludes: Sequence[str] = (),
    *,
    output: Path | None = None,
) -> Collection:
    """Walk ``root`` in a fixed order and decide, file by file, what goes into the bundle."""
    root = root.resolve()
    defaults = _spec([*DEFAULT_EXCLUDES, *extra_excludes])
    # One spec in gitignore order, so a user's ``!pattern`` can re-include a default.
    combined = _spec([*DEFAULT_EXCLUDES, *extra_excludes, *_ignore_lines(root)])
    output = output.resolve() if output else None
    outputs = build_outputs(output) if output else set()
    result = Collection()
    seen_dirs: set[tuple[int, int]] = set()

    def excluded(rel: str) -> str | None:
        if not combined.match_file(rel):
            return None
        return "excluded by default" if defaults.match_file(rel) else "matched an ignore file"

    def walk(directory: Path, prefix: str) -> None:
        st = directory.stat()
        if (st.st_dev, st.st_ino) in seen_dirs:
            return  # a symlink loop back into a folder we are already in
        seen_dirs.add((st.st_dev, st.st_ino))
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
            if is_link:
                target = path.resolve()
                if not target.is_relative_to(root):
                    if excluded(rel) or excluded(rel + "/"):
                        result.skipped.append((rel, "symlink out of the project, excluded"))
                        continue
                    raise UsageError(
                        f"{rel} is a symlink to {target}, outside the project",
                        "copy the file into the project, or list it in .fbundleignore",
                    )
                if not target.exists():
                    raise UsageError(f"{rel} is a broken symlink", "remove it or fix its target")
            if child.is_dir(follow_symlinks=True):
                if reason := excluded(rel + "/"):
                    result.skipped.append((rel + "/", reason))
                    continue
                walk(path, rel + "/")
                continue
            if reason := excluded(rel):
                result.skipped.append((rel, reason))
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
            mode = source_mode(path, rel)
            result.entries.append(Entry(rel, st.st_size, FileData(path), mode, origin="source"))

    walk(root, "")
    refuse_host_dependent_names(result.entries)
    return result


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
    for entry in entries:
        key = entry.name.casefold()
        other = seen.get(key)
        if other is not None:
            what = "are the same name once normalised" if other == entry.name \
                else "differ only in case"
            raise UsageError(f"{other} and {entry.name} {what}: a Windows or macOS checkout "
                             "keeps only one of them, so the bundle would differ by host",
                             "rename one of them")
        seen[key] = entry.name


def _archive_name(name: str, directory: Path) -> str:
    """A file name as stored in the zip: NFC, and refused when it cannot be stored portably."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"{directory / name!r} has a name that is not valid UTF-8",
            "rename it: zip names must be UTF-8",
        ) from None
    if "\\" in name:
        raise UsageError(f"{directory / name}: backslash in a file name",
                         "rename it: backslashes become folder separators on Windows")
    return unicodedata.normalize("NFC", name)


def collect_sources(
    root: Path, extra_excludes: Sequence[str] = (), *, output: Path | None = None
) -> list[Entry]:
    """The entries of ``scan_sources`` (what goes in)."""
    return scan_sources(root, extra_excludes, output=output).entries
