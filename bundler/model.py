"""The bundle model: what is in a bundle, whatever it was read from.

One model, many readers: the zip writer, ``validate``, ``inspect``, ``diff`` and ``audit`` all
take a :class:`Bundle`. A bundle comes from a build plan (``build``), a zip (``Bundle.from_zip``)
or a folder about to be zipped (``Bundle.from_dir``), so build and validate cannot disagree.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from bundler.errors import UsageError
from bundler.zipformat import CHUNK as CHUNK
from bundler.zipformat import Member, MemberInfo, Problem, open_member, read_archive

FILE_MODE = 0o644
EXEC_MODE = 0o755
MAX_BUNDLE_BYTES = 250 * 1000 * 1000  # the article's 250 MB limit, read strictly (decimal)

EntryKind = Literal["file", "dir", "symlink"]


class Data(Protocol):
    """Where an entry's uncompressed bytes come from."""

    def open(self) -> BinaryIO: ...


@dataclass(frozen=True)
class BytesData:
    data: bytes

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data)


@dataclass(frozen=True)
class FileData:
    path: Path

    def open(self) -> BinaryIO:
        return open(self.path, "rb")


@dataclass(frozen=True)
class RawMember:
    """A member's compressed bytes inside a zip, for copying without recompressing."""

    archive: Path
    header_offset: int
    compress_type: int
    compress_size: int
    crc: int


@dataclass(frozen=True)
class ZipMemberData:
    """A member of a zip (a wheel read by zipfile, or a bundle read by bundler.zipformat)."""

    archive: Path
    info: MemberInfo

    def open(self) -> BinaryIO:
        """The member's bytes, checked like zipfile checks them (size, then CRC at the end),
        inflated from the member's own offset (see :func:`bundler.zipformat.open_member`)."""
        return open_member(self.archive, self.info)

    @property
    def raw(self) -> RawMember:
        return RawMember(
            self.archive,
            self.info.header_offset,
            self.info.compress_type,
            self.info.compress_size,
            self.info.CRC,
        )


@dataclass(frozen=True)
class Entry:
    """One archive member.

    ``name`` is the archive path as stored (forward slashes, directories end in ``/``); ``mode``
    the Unix permission bits; ``origin`` says where it came from (``source``, ``wheel:<name>
    <version>``, ``dotnet-publish``, ``generated``) for ``inspect --provenance``.
    """

    name: str
    size: int
    data: Data
    mode: int = FILE_MODE
    kind: EntryKind = "file"
    origin: str = "source"
    sha256: str | None = None  # known digest of the uncompressed bytes, if computed already
    raw_name: bytes | None = None  # undecoded name bytes, for zips read back
    name_is_utf8: bool = True
    compress_size: int | None = None  # for zips read back

    def open(self) -> BinaryIO:
        return self.data.open()

    def read(self) -> bytes:
        with self.open() as stream:
            return stream.read()

    def digest(self) -> str:
        """sha256 of the uncompressed bytes (computed once if not known)."""
        if self.sha256 is not None:
            return self.sha256
        digest = hashlib.sha256()
        with self.open() as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    @property
    def is_file(self) -> bool:
        return self.kind == "file"


@dataclass
class Bundle:
    """The entries of a bundle plus where they were read from."""

    entries: list[Entry]
    location: str = "<plan>"
    read_from: Literal["plan", "zip", "dir"] = "plan"
    archive_size: int | None = None  # bytes of the zip file, when read from one
    notes: list[str] = field(default_factory=list)
    #: What the zip reader found wrong (FB0xx), for validate to report and the others to refuse.
    problems: list[Problem] = field(default_factory=list)
    comment: bytes = b""  # the zip comment, when read from one

    def files(self) -> Iterator[Entry]:
        return (e for e in self.entries if e.is_file)

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def by_name(self) -> dict[str, Entry]:
        return {e.name: e for e in self.entries}

    def member(self) -> Callable[[str], bytes | None]:
        """A reader of this bundle's files by name (None: no such file), for what a bundle
        names inside itself (``requirements.txt``'s ``-r`` files)."""
        files = {e.name: e for e in self.files()}

        def read(name: str) -> bytes | None:
            entry = files.get(name)
            return None if entry is None else entry.read()

        return read

    @property
    def total_size(self) -> int:
        return sum(e.size for e in self.files())

    def sorted(self) -> Bundle:
        """The same bundle with entries in canonical order (by UTF-8 bytes of the name)."""
        entries = sorted(self.entries, key=lambda e: e.name.encode("utf-8", "surrogateescape"))
        return Bundle(entries, self.location, self.read_from, self.archive_size, self.notes,
                      self.problems, self.comment)

    @classmethod
    def from_zip(cls, path: Path) -> Bundle:
        return read_zip(path)

    @classmethod
    def from_dir(cls, path: Path) -> Bundle:
        return read_dir(path)

    @classmethod
    def load(cls, path: Path) -> Bundle:
        """A zip or a folder, by what is at ``path``."""
        if is_folder(path):
            return read_dir(path)
        if path.is_file():
            return read_zip(path)
        raise UsageError(f"{path}: no such file or folder", "pass a bundle zip or a folder")


def is_folder(path: Path) -> bool:
    """``path.is_dir()``, with a path that cannot even be looked at as unusable input."""
    try:
        return path.is_dir()
    except PermissionError:
        raise UsageError(f"{path}: cannot be read (permission denied)",
                         "make it readable, or pass another bundle") from None


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def content_digest(entries: Iterable[Entry]) -> str:
    """The content digest of a bundle's files (see :func:`content_digest_of`)."""
    return content_digest_of((e.name, e.digest()) for e in entries if e.is_file)


def digest_line(name: str, sha256: str) -> str:
    r"""One line of the content digest, in ``sha256sum``'s own format.

    ``<sha256>  <name>\n``, except that a name holding a backslash, CR or LF is escaped as
    GNU ``sha256sum`` does: the line starts with ``\``, and in the name ``\`` becomes ``\\``,
    LF ``\n`` and CR ``\r``. No line then holds a raw newline, and an escaped line never
    equals an unescaped one (those start with a hex digit), so two different lists of files
    never join to the same text. Names without those characters are unchanged.
    """
    if "\\" in name or "\n" in name or "\r" in name:
        escaped = name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return f"\\{sha256}  {escaped}\n"
    return f"{sha256}  {name}\n"


def content_digest_of(files: Iterable[tuple[str, str]]) -> str:
    """sha256 over the sorted :func:`digest_line` of every ``(name, sha256 of its bytes)``.

    Unlike the zip's own sha256 this does not depend on the compressor, so it is what an audit
    compares first. The writer feeds it the sha256 of the bytes it actually wrote.
    """
    lines = sorted(digest_line(name, sha) for name, sha in files)
    return hashlib.sha256("".join(lines).encode("utf-8", "surrogateescape")).hexdigest()


def read_zip(path: Path) -> Bundle:
    """Read a zip's central directory into a bundle (nothing is extracted), through the one zip
    reader: too many entries or a broken directory is a UsageError (exit 2), anything the
    local headers contradict is in ``Bundle.problems``."""
    if is_folder(path):
        return read_dir(path)
    archive = read_archive(path)
    entries = [_entry_from_member(path, member) for member in archive.members]
    return Bundle(entries, str(path), "zip", archive.size, problems=archive.problems,
                  comment=archive.comment)


def _entry_from_member(path: Path, member: Member) -> Entry:
    unix_mode = member.external_attr >> 16
    kind: EntryKind = "file"
    if member.is_dir():
        kind = "dir"
    elif stat.S_ISLNK(unix_mode):
        kind = "symlink"
    return Entry(
        name=member.filename,
        size=member.file_size,
        data=ZipMemberData(path, member),
        mode=stat.S_IMODE(unix_mode) or FILE_MODE,
        kind=kind,
        origin="zip",
        raw_name=member.raw_name,
        name_is_utf8=member.name_is_utf8,
        compress_size=member.compress_size,
    )


def read_dir(root: Path) -> Bundle:
    """A folder as the bundle its contents would make (symlinks reported, not followed)."""
    if not is_folder(root):
        raise UsageError(f"{root}: not a folder", "pass a bundle zip or a folder")
    entries: list[Entry] = []

    def unreadable(error: OSError) -> None:
        raise UsageError(f"{error.filename}: cannot be read ({error.strerror or error})",
                         "make every file and folder readable, or pass a zip") from None

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(full).encode("utf-8", "surrogateescape")
                entries.append(Entry(rel, len(target), BytesData(target), 0o777, "symlink"))
            elif stat.S_ISREG(st.st_mode):
                mode = EXEC_MODE if st.st_mode & 0o111 else FILE_MODE
                entries.append(Entry(rel, st.st_size, FileData(full), mode))
    return Bundle(entries, str(root), "dir")
