"""The deterministic zip writer.

Written by hand rather than with ``zipfile.ZipFile`` because zipfile decides bytes we must own:
it adds extended-timestamp/zip64 extra fields depending on sizes, takes timestamps from the
clock or the file, writes data descriptors when streaming, and cannot copy a member's deflate
stream from another zip without recompressing it. Every byte here is a function of the entries.
Output is parsed back with ``zipfile`` in the tests.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from bundler.errors import BuildError
from bundler.model import EXEC_MODE, FILE_MODE, Entry, ZipMemberData, content_digest_of
from bundler.zipformat import CHUNK, raw_chunks

COMPRESS_LEVEL = 6
STORED, DEFLATED = 0, 8
DOS_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip can hold
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_END64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<IIQI")
_MADE_BY_UNIX = (3 << 8) | 20
_NEEDS = 20
_UTF8_FLAG = 0x800
_MAX_16 = 0xFFFF


def compressor_fingerprint() -> str:
    """Identifies the deflate bytes this writer produces: zlib build and level."""
    return f"zlib-{zlib.ZLIB_RUNTIME_VERSION}-level{COMPRESS_LEVEL}"


def fixed_timestamp() -> tuple[int, int]:
    """(dos_time, dos_date) of ``SOURCE_DATE_EPOCH`` if set, else 1980-01-01 00:00."""
    epoch = DOS_EPOCH
    if value := os.environ.get("SOURCE_DATE_EPOCH"):
        try:
            epoch = max(DOS_EPOCH, int(value))
        except ValueError:
            raise BuildError(
                f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds",
                "unset it or set it to a Unix timestamp",
            ) from None
    t = time.gmtime(epoch)
    dos_time = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    dos_date = ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    return dos_time, min(dos_date, 0xFFFF)


@dataclass(frozen=True)
class Member:
    """An entry ready to be written: its compressed bytes and the facts of its headers."""

    name: bytes
    mode: int
    method: int
    crc: int
    size: int
    compressed: bytes | Callable[[], Iterator[bytes]]
    compress_size: int
    sha256: str | None = None  # of the uncompressed bytes read to compress it (None: raw copy)


@dataclass(frozen=True)
class WriteResult:
    """The zip written: its sha256 and size, and the content digest of the bytes in it."""

    path: Path
    sha256: str
    size: int
    entries: int
    content_digest: str = ""


def normal_mode(entry: Entry) -> int:
    """0755 if any execute bit is set, else 0644: nothing else about a file's mode survives."""
    return EXEC_MODE if entry.mode & 0o111 else FILE_MODE


def _raw_copy(entry: Entry) -> Member | None:
    """The member as stored in its source zip, if that can be copied byte for byte."""
    data = entry.data
    if not isinstance(data, ZipMemberData) or data.info.compress_type not in (STORED, DEFLATED):
        return None
    if data.info.flag_bits & 0x1:  # encrypted
        return None
    raw = data.raw

    def chunks() -> Iterator[bytes]:
        with open(raw.archive, "rb") as stream:
            try:
                yield from raw_chunks(stream, data.info)
            except zipfile.BadZipFile as error:
                raise BuildError(f"{raw.archive}: {error}", "delete it and rebuild") from None

    return Member(
        entry.name.encode("utf-8"),
        normal_mode(entry),
        raw.compress_type,
        raw.crc,
        entry.size,
        chunks,
        raw.compress_size,
    )


SPOOL_OVER = 8 << 20  # entries larger than this are compressed through a temp file


def compress(entry: Entry) -> Member:
    """Deflate an entry at the pinned level (stored when deflate would not make it smaller).

    Small entries are compressed in memory; larger ones stream through a temporary file, so a
    bundle holding a 200 MB model file never holds it in memory. zlib's output does not depend
    on how its input is chunked, so both ways give the same bytes.
    """
    if entry.size > SPOOL_OVER:
        return _compress_spooled(entry)
    data = entry.read()
    crc = zlib.crc32(data)
    packer = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
    deflated = packer.compress(data) + packer.flush()
    if len(deflated) < len(data):
        method, body = DEFLATED, deflated
    else:
        method, body = STORED, data
    return Member(entry.name.encode("utf-8"), normal_mode(entry), method, crc, len(data), body,
                  len(body), hashlib.sha256(data).hexdigest())


def _compress_spooled(entry: Entry) -> Member:
    spool = tempfile.TemporaryFile()
    packer = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
    crc = size = 0
    digest = hashlib.sha256()
    with entry.open() as stream:
        while chunk := stream.read(CHUNK):
            crc = zlib.crc32(chunk, crc)
            digest.update(chunk)
            size += len(chunk)
            spool.write(packer.compress(chunk))
    spool.write(packer.flush())
    deflated = spool.tell()

    def from_spool() -> Iterator[bytes]:
        with spool:
            spool.seek(0)
            while chunk := spool.read(CHUNK):
                yield chunk

    def from_source() -> Iterator[bytes]:
        again = 0
        with entry.open() as stream:
            while chunk := stream.read(CHUNK):
                again = zlib.crc32(chunk, again)
                yield chunk
        if again != crc:
            raise changed(entry)

    name = entry.name.encode("utf-8")
    sha = digest.hexdigest()
    if deflated < size:
        return Member(name, normal_mode(entry), DEFLATED, crc, size, from_spool, deflated, sha)
    spool.close()
    return Member(name, normal_mode(entry), STORED, crc, size, from_source, size, sha)


def changed(entry: Entry) -> BuildError:
    return BuildError(f"{entry.name} changed while it was being read",
                      "build again once nothing is writing to the project")


def _written_digest(entry: Entry, member: Member) -> str:
    """The sha256 of the bytes written for ``entry``, checked against what the plan knew.

    A source's sha256 is known from collection (the input key is made of it): bytes that
    differ now mean the file changed during the build, and the zip, its identities and the
    input key would disagree, so the build fails before the zip replaces the old one.
    """
    if member.sha256 is None:  # a raw copy: its bytes are the source zip's, as verified
        return entry.digest()
    if entry.sha256 is not None and entry.sha256 != member.sha256:
        raise changed(entry)
    return member.sha256


# -- the size of the zip before it is written -------------------------------------------------
# Every byte of a member's headers is fixed by its name (no extra fields, no comment), so the
# zip's size is the headers plus each member's compressed bytes: known for members copied from a
# wheel, and at most the entry's size for the rest (deflate is kept only when it is smaller).

def member_overhead(name: str) -> int:
    """Bytes a member costs besides its compressed data: local header + central record."""
    return _LOCAL.size + _CENTRAL.size + 2 * len(name.encode("utf-8"))


def directory_overhead(count: int) -> int:
    """The end records: zip64 ones too past 65,535 entries (as ``_write_directory`` does)."""
    return _END.size + (_END64.size + _LOCATOR64.size if count > _MAX_16 else 0)


def raw_compress_size(entry: Entry) -> int | None:
    """The compressed size the writer will copy for ``entry``, or None if it will deflate it."""
    data = entry.data
    if not isinstance(data, ZipMemberData) or data.info.compress_type not in (STORED, DEFLATED):
        return None
    if data.info.flag_bits & 0x1:
        return None
    return data.info.compress_size


def deflated_size(entry: Entry) -> int:
    """What ``compress`` will store for ``entry`` (counted, not kept): deflate or the size."""
    packer = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
    out = size = 0
    with entry.open() as stream:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            out += len(packer.compress(chunk))
    out += len(packer.flush())
    return out if out < size else size


def stored_size(entry: Entry) -> int:
    """The bytes ``entry`` will take in the zip, headers included (exact)."""
    raw = raw_compress_size(entry)
    return member_overhead(entry.name) + (raw if raw is not None else deflated_size(entry))


@dataclass(frozen=True)
class SizeBounds:
    """The zip's size before writing: ``low`` counts deflated members as empty, ``high`` as
    stored; both equal the exact size when every member is copied raw."""

    low: int
    high: int

    @property
    def exact(self) -> bool:
        return self.low == self.high


def size_bounds(entries: Iterable[Entry]) -> SizeBounds:
    """Bounds on the size ``write_zip(entries)`` will produce, without compressing anything."""
    files = [e for e in entries if e.is_file]
    low = high = directory_overhead(len(files))
    for entry in files:
        fixed = member_overhead(entry.name)
        raw = raw_compress_size(entry)
        low += fixed + (raw if raw is not None else 0)
        high += fixed + (raw if raw is not None else entry.size)
    return SizeBounds(low, high)


def predicted_size(entries: Iterable[Entry]) -> int:
    """The exact size ``write_zip(entries)`` will produce: raw copies are counted, the rest is
    deflated once and counted (nothing kept), as the writer will deflate it."""
    files = [e for e in entries if e.is_file]
    return directory_overhead(len(files)) + sum(stored_size(e) for e in files)


def prepare(entry: Entry) -> Member:
    return _raw_copy(entry) or compress(entry)


TEMP_SUFFIX = ".fbundle-tmp"
#: What :func:`atomic_output` names its temps: ``.<name>.<8 random chars>.fbundle-tmp`` (the
#: random part is mkstemp's alphabet). ``collect`` never takes such a file as a source.
TEMP_PATTERN = "*" + TEMP_SUFFIX
STALE_TEMP_SECONDS = 3600  # a temp this old is no write in progress: its writer was killed


def _temp_name(name: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}{re.escape(TEMP_SUFFIX)}")


def remove_stale_temps(path: Path, *, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete the temps a killed write of ``path`` left beside it; returns what was removed.

    Only files named exactly as :func:`atomic_output` names temps *for this path*, owned by
    this user and untouched for ``older_than`` seconds (a write in progress keeps its temp's
    mtime fresh), so a concurrent build's temp and other people's files are never touched.
    """
    pattern = _temp_name(path.name)
    now = time.time()
    removed: list[Path] = []
    try:
        children = list(os.scandir(path.parent))
    except OSError:
        return removed
    for child in children:
        if not pattern.fullmatch(child.name):
            continue
        try:
            st = child.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < older_than:
                continue
            if hasattr(os, "getuid") and st.st_uid != os.getuid():
                continue
            os.unlink(child.path)
        except OSError:
            continue  # someone else's problem, or already gone
        removed.append(Path(child.path))
    return removed


_WHY = {
    errno.ENOSPC: ("the disk is full", "free some space there, or write somewhere else"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space, or write somewhere else"),
    errno.EFBIG: ("the file is larger than the file system (or a ulimit) allows",
                  "raise the limit, or write somewhere else"),
    errno.EROFS: ("the file system is read-only", "write somewhere writable"),
    errno.EACCES: ("permission denied", "make the folder writable for you, or write "
                   "somewhere else"),
    errno.EPERM: ("operation not permitted", "make the folder writable for you, or write "
                  "somewhere else"),
    errno.EISDIR: ("a folder is in the way", "remove or rename that folder, or write "
                   "somewhere else"),
    errno.ENOTDIR: ("a file is in the way of its folder", "remove or rename that file, or "
                    "write somewhere else"),
}


class OutputError(BuildError):
    """Writing an output failed; ``cause`` is the OS error, for callers to which a failed write
    is not fatal (the resolution memo and the session state in a read-only folder)."""

    def __init__(self, message: str, hint: str, cause: OSError) -> None:
        super().__init__(message, hint)
        self.cause = cause


def output_error(path: Path, error: OSError) -> OutputError:
    """An OSError writing ``path`` as one line: the path, what happened, what to do."""
    why, hint = _WHY.get(error.errno or 0, (error.strerror or str(error),
                                            "check the folder, or write somewhere else"))
    return OutputError(f"cannot write {path}: {why}", hint, error)


class _Output:
    """The temp file's stream: a failed write names the output, not a bare errno."""

    def __init__(self, stream: BinaryIO, path: Path,
                 explain: Callable[[Path, OSError], BuildError] = output_error) -> None:
        self._stream = stream
        self._path = path
        self._explain = explain

    def write(self, data: bytes) -> int:
        try:
            return self._stream.write(data)
        except OSError as error:
            raise self._explain(self._path, error) from None


@contextmanager
def atomic_output(path: Path, explain: Callable[[Path, OSError], BuildError] = output_error
                  ) -> Iterator[BinaryIO]:
    """A temp file beside ``path``, renamed over it only when the block finishes.

    The temp is named by :data:`TEMP_PATTERN` (never collected as a source); stale ones a
    killed write left are removed first (:func:`remove_stale_temps`). Failures to create,
    write or rename name ``path`` and say what to do (:func:`output_error`; the wheel cache
    passes its own ``explain``, whose advice is FBUNDLE_CACHE_DIR, not another ``-o``).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where a folder must be
        raise explain(path, OSError(errno.ENOTDIR, "not a folder")) from None
    except OSError as error:
        raise explain(path, error) from None
    try:
        remove_stale_temps(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as error:
        raise explain(path, error) from None
    try:
        with os.fdopen(fd, "wb") as stream:
            yield cast(BinaryIO, _Output(stream, path, explain))
            try:
                stream.flush()
                os.fsync(stream.fileno())
            except OSError as error:
                raise explain(path, error) from None
        try:
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except OSError as error:
            raise explain(path, error) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _HashingWriter:
    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.offset = 0

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.digest.update(data)
        self.offset += len(data)


class ZipTooLarge(BuildError):
    """The finished zip is over the limit; nothing was written at the destination."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the bundle is {size / 1e6:.1f} MB; the service accepts at most "
                         f"{limit / 1e6:.0f} MB")
        self.size = size
        self.limit = limit


def write_zip(entries: Iterable[Entry], path: Path, *, threads: int | None = None,
              limit: int | None = None) -> WriteResult:
    """Write ``entries`` (files only, sorted by UTF-8 name bytes) to ``path`` atomically.

    Members that come from another zip (wheels) keep their compressed bytes; the rest are
    compressed in a thread pool (zlib releases the GIL) and written in canonical order.
    """
    files = sorted((e for e in entries if e.is_file), key=lambda e: e.name.encode("utf-8"))
    names = [e.name for e in files]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise BuildError(f"two files would be stored as {dupes[0]}", "rename one of them")
    dos_time, dos_date = fixed_timestamp()
    workers = threads or min(8, os.cpu_count() or 1)
    with atomic_output(path) as stream, ThreadPoolExecutor(workers) as pool:
        out = _HashingWriter(stream)
        central: list[bytes] = []
        # Raw copies cost nothing to prepare; only members that need deflating go to the pool.
        pending = [_raw_copy(e) or pool.submit(compress, e) for e in files]
        digests: list[tuple[str, str]] = []
        for entry, prepared in zip(files, pending, strict=True):
            member = prepared if isinstance(prepared, Member) else prepared.result()
            digests.append((entry.name, _written_digest(entry, member)))
            flags = _UTF8_FLAG if not member.name.isascii() else 0
            offset = out.offset
            out.write(_LOCAL.pack(0x04034B50, _NEEDS, flags, member.method, dos_time, dos_date,
                                  member.crc, member.compress_size, member.size,
                                  len(member.name), 0))
            out.write(member.name)
            if isinstance(member.compressed, bytes):
                out.write(member.compressed)
            else:
                for chunk in member.compressed():
                    out.write(chunk)
            if offset > 0xFFFFFFFF or member.size > 0xFFFFFFFF:
                raise BuildError(f"{path}: over 4 GiB", "bundles must stay under 250 MB")
            central.append(
                _CENTRAL.pack(0x02014B50, _MADE_BY_UNIX, _NEEDS, flags, member.method, dos_time,
                              dos_date, member.crc, member.compress_size, member.size,
                              len(member.name), 0, 0, 0, 0, (0o100000 | member.mode) << 16,
                              offset)
                + member.name
            )
        _write_directory(out, central)
        size = out.offset
        digest = out.digest.hexdigest()
        if limit is not None and size > limit:
            raise ZipTooLarge(size, limit)  # before the rename: the old zip stays
    return WriteResult(path, digest, size, len(files), content_digest_of(digests))


def _write_directory(out: _HashingWriter, central: list[bytes]) -> None:
    start = out.offset
    for record in central:
        out.write(record)
    length = out.offset - start
    count = len(central)
    if count > _MAX_16:
        end64 = out.offset
        out.write(_END64.pack(0x06064B50, _END64.size - 12, _MADE_BY_UNIX, 45, 0, 0, count,
                              count, length, start))
        out.write(_LOCATOR64.pack(0x07064B50, 0, end64, 1))
        count = _MAX_16
    out.write(_END.pack(0x06054B50, 0, 0, count, count, length, start, 0))
