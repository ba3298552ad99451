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
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Literal, Protocol, cast

from bundler.errors import UsageError

FILE_MODE = 0o644
EXEC_MODE = 0o755
CHUNK = 1 << 20
MAX_BUNDLE_BYTES = 250 * 1000 * 1000  # the article's 250 MB limit, read strictly (decimal)

Kind = Literal["file", "dir", "symlink"]


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


_LOCAL_HEADER = 30  # bytes before a member's name in its local header


def local_extra_and_start(stream: BinaryIO, info: zipfile.ZipInfo) -> tuple[bytes, int]:
    """A member's local extra field and where its compressed bytes start, from its header."""
    stream.seek(info.header_offset)
    header = stream.read(_LOCAL_HEADER)
    if len(header) != _LOCAL_HEADER or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"no local header for {info.filename}")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    stream.seek(info.header_offset + _LOCAL_HEADER + name_len)
    extra = stream.read(extra_len)
    return extra, info.header_offset + _LOCAL_HEADER + name_len + extra_len


def compressed_chunks(stream: BinaryIO, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """A member's stored (compressed) bytes as they are in the zip, read in chunks."""
    _, start = local_extra_and_start(stream, info)
    stream.seek(start)
    left = info.compress_size
    while left:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            raise zipfile.BadZipFile(f"{info.filename} is truncated")
        left -= len(chunk)
        yield chunk


def inflate_member(stream: BinaryIO, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """A stored or deflated member's bytes inflated from its raw stream (callers check the
    method), checked as zipfile checks them: never more than the declared size (a bomb stops
    there), then the declared size and the CRC."""
    inflater = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    produced = crc = 0
    for chunk in compressed_chunks(stream, info):
        pending = chunk
        while pending:
            if inflater is None:
                out, pending = pending, b""
            else:
                out = inflater.decompress(pending, info.file_size - produced + 1)
                pending = inflater.unconsumed_tail
            produced += len(out)
            if produced > info.file_size:
                raise zipfile.BadZipFile(f"{info.filename} holds more than its declared size")
            crc = zlib.crc32(out, crc)
            yield out
            if inflater is not None and not out and pending:
                break  # no progress: the stream is corrupt; the checks below say so
    if produced != info.file_size:
        raise zipfile.BadZipFile(f"{info.filename} is shorter than its declared size")
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")


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
    """A member of a zip (a wheel, or a bundle read back)."""

    archive: Path
    info: zipfile.ZipInfo

    def open(self) -> BinaryIO:
        """The member's bytes, checked like zipfile checks them (size, then CRC at the end).

        Stored and deflated members are inflated from the member's own offset: a ZipFile here
        would parse the whole central directory for every member read (quadratic on bundles of
        thousands of files). Other methods and encrypted members go through zipfile.
        """
        info = self.info
        if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) \
                and not info.flag_bits & 0x1:
            raw = open(self.archive, "rb")
            return cast(BinaryIO, io.BufferedReader(_ChunkStream(inflate_member(raw, info), raw),
                                                    CHUNK))
        archive = zipfile.ZipFile(self.archive)
        stream = archive.open(info)
        return cast(BinaryIO, _ClosingStream(stream, archive))

    @property
    def raw(self) -> RawMember:
        return RawMember(
            self.archive,
            self.info.header_offset,
            self.info.compress_type,
            self.info.compress_size,
            self.info.CRC,
        )


class _ChunkStream(io.RawIOBase):
    """A readable stream over an iterator of chunks; closes ``owner`` when closed."""

    def __init__(self, chunks: Iterator[bytes], owner: IO[bytes]) -> None:
        self._chunks = chunks
        self._owner = owner
        self._pending = memoryview(b"")  # a view: handing out a large chunk copies nothing

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        self._owner.close()
        super().close()


class _ClosingStream(io.RawIOBase):
    """A member stream that also closes the archive it came from."""

    def __init__(self, stream: IO[bytes], archive: zipfile.ZipFile) -> None:
        self._stream = stream
        self._archive = archive

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def close(self) -> None:
        self._stream.close()
        self._archive.close()
        super().close()


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
    kind: Kind = "file"
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

    def files(self) -> Iterator[Entry]:
        return (e for e in self.entries if e.is_file)

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def by_name(self) -> dict[str, Entry]:
        return {e.name: e for e in self.entries}

    @property
    def total_size(self) -> int:
        return sum(e.size for e in self.files())

    def sorted(self) -> Bundle:
        """The same bundle with entries in canonical order (by UTF-8 bytes of the name)."""
        entries = sorted(self.entries, key=lambda e: e.name.encode("utf-8", "surrogateescape"))
        return Bundle(entries, self.location, self.read_from, self.archive_size, self.notes)

    @classmethod
    def from_zip(cls, path: Path) -> Bundle:
        return read_zip(path)

    @classmethod
    def from_dir(cls, path: Path) -> Bundle:
        return read_dir(path)

    @classmethod
    def load(cls, path: Path) -> Bundle:
        """A zip or a folder, by what is at ``path``."""
        if path.is_dir():
            return read_dir(path)
        if path.is_file():
            return read_zip(path)
        raise UsageError(f"{path}: no such file or folder", "pass a bundle zip or a folder")


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def content_digest(entries: Iterable[Entry]) -> str:
    """sha256 over the sorted lines ``<sha256 of entry bytes>  <entry name>``.

    Unlike the zip's own sha256 this does not depend on the compressor, so it is what an audit
    compares first.
    """
    lines = sorted(f"{e.digest()}  {e.name}\n" for e in entries if e.is_file)
    return hashlib.sha256("".join(lines).encode("utf-8", "surrogateescape")).hexdigest()


def read_zip(path: Path) -> Bundle:
    """Read a zip's central directory into a bundle (nothing is extracted)."""
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file", "pass the path of a bundle zip") from None
    except IsADirectoryError:
        return read_dir(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise UsageError(f"{path}: not a readable zip ({error})", "rebuild the bundle") from None
    with archive:
        entries = [_entry_from_info(path, info) for info in archive.infolist()]
    return Bundle(entries, str(path), "zip", path.stat().st_size)


def _entry_from_info(path: Path, info: zipfile.ZipInfo) -> Entry:
    is_utf8 = bool(info.flag_bits & 0x800)
    raw_name = info.orig_filename.encode("utf-8" if is_utf8 else "cp437", "surrogateescape")
    if not is_utf8:
        # Zips without the UTF-8 flag are cp437 by spec, but tools write UTF-8 there anyway;
        # decode as UTF-8 when that works, and remember whether it did.
        try:
            name = raw_name.decode("utf-8")
            is_utf8 = True
        except UnicodeDecodeError:
            name = info.orig_filename
    else:
        name = info.orig_filename
    unix_mode = info.external_attr >> 16
    kind: Kind = "file"
    if info.is_dir():
        kind = "dir"
    elif stat.S_ISLNK(unix_mode):
        kind = "symlink"
    return Entry(
        name=name,
        size=info.file_size,
        data=ZipMemberData(path, info),
        mode=stat.S_IMODE(unix_mode) or FILE_MODE,
        kind=kind,
        origin="zip",
        raw_name=raw_name,
        name_is_utf8=is_utf8,
        compress_size=info.compress_size,
    )


def read_dir(root: Path) -> Bundle:
    """A folder as the bundle its contents would make (symlinks reported, not followed)."""
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder", "pass a bundle zip or a folder")
    entries: list[Entry] = []
    for dirpath, dirnames, filenames in os.walk(root):
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
