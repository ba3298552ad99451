"""The zip reader: the end record, the central directory, local headers, raw member streams and
checked inflate, in one place, with the guards every command gets.

Written by hand rather than on ``zipfile.ZipFile`` because ``zipfile`` believes the central
directory alone: it never compares a local header with its central entry (the bytes ``unzip``
extracts), cuts names at a NUL without saying so, ignores data descriptors, overlaps and the
disk fields, and allocates a ``ZipInfo`` for every record before anyone can count them. Every
reader of a bundle zip (``validate``, ``inspect``, ``diff``, ``audit``, ``deploy``) goes through
:func:`read_archive`, so a zip that unpacks to something else than what fbundle judged is either
refused (exit 2) or named by a rule (``Problem`` -> FB0xx finding); see docs/rules.md.

Members are read from their own offsets (never a ``ZipFile`` per member) and inflated in chunks
of at most :data:`CHUNK` bytes of output, never past the declared size, with the CRC checked at
the end, so a member's bytes are never held whole and a bomb stops at its declared size.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Protocol, cast

from bundler.errors import UsageError

CHUNK = 1 << 20
#: At most this many entries in a bundle, counted from the central directory as parsed (never
#: from the count the end record declares). Build refuses a plan over it, every reader a zip.
MAX_ENTRIES = 200_000
STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
#: The longest path and path segment Linux can create (PATH_MAX including its NUL, NAME_MAX).
MAX_PATH_BYTES = 4095
MAX_SEGMENT_BYTES = 255

_EOCD = struct.Struct("<4sHHHHIIH")  # end of central directory record
_EOCD64 = struct.Struct("<4sQHHIIQQQQ")  # zip64 end record
_LOCATOR64 = struct.Struct("<4sIQI")
_CENTRAL = struct.Struct("<4sBBBBHHHHIIIHHHHHII")
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_SIG_EOCD, _SIG_EOCD64, _SIG_LOCATOR = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07"
_SIG_CENTRAL, _SIG_LOCAL, _SIG_DESCRIPTOR = b"PK\x01\x02", b"PK\x03\x04", b"PK\x07\x08"
_ENCRYPTED, _DESCRIPTOR, _PATCHED, _STRONG, _UTF8, _MASKED = 0x1, 0x8, 0x20, 0x40, 0x800, 0x2000
# Flags that change what the bytes mean; bits 1-2 (deflate options) and the rest do not.
_MEANINGFUL_FLAGS = _ENCRYPTED | _DESCRIPTOR | _PATCHED | _STRONG | _UTF8 | _MASKED
_METHOD_NAMES = {1: "shrink", 6: "implode", 9: "deflate64", 12: "bzip2", 14: "LZMA",
                 93: "zstd", 95: "xz", 98: "PPMd", 99: "AES"}
_REBUILD = "rebuild the zip with a standard tool (fbundle build, zip -r)"


class ZipFormatError(UsageError):
    """The zip cannot be read as a whole (no end record, a broken central directory, too many
    entries): exit 2, before any member is judged."""


class MemberInfo(Protocol):
    """What a member reader needs: the attributes ``zipfile.ZipInfo`` and :class:`Member`
    share, so wheels read by ``zipfile`` and bundles read here go through the same code."""

    @property
    def filename(self) -> str: ...
    @property
    def flag_bits(self) -> int: ...
    @property
    def compress_type(self) -> int: ...
    @property
    def CRC(self) -> int: ...  # noqa: N802 - zipfile's name
    @property
    def compress_size(self) -> int: ...
    @property
    def file_size(self) -> int: ...
    @property
    def header_offset(self) -> int: ...


@dataclass(slots=True, eq=False)
class Member:
    """One central-directory record, checked against its local header.

    The attribute names are ``zipfile.ZipInfo``'s. ``filename`` is what extractors create (cut
    at a NUL, as zipfile and unzip do), ``raw_name`` the bytes as stored; ``header_offset`` is
    absolute in the file (bytes before the zip, as in a self-extractor, already added).
    """

    filename: str
    raw_name: bytes
    name_is_utf8: bool
    flag_bits: int
    compress_type: int
    CRC: int
    compress_size: int
    file_size: int
    header_offset: int
    date_time: tuple[int, int, int, int, int, int]
    create_system: int
    create_version: int
    extract_version: int
    internal_attr: int
    external_attr: int
    extra: bytes
    comment: bytes
    data_offset: int = -1  # first byte of the compressed data; -1: no local header there
    local_extra: bytes = b""

    @property
    def orig_filename(self) -> str:
        return self.raw_name.decode("utf-8" if self.name_is_utf8 else "cp437", "surrogateescape")

    def is_dir(self) -> bool:
        return self.filename.endswith("/")

    @property
    def shown_name(self) -> str:
        """The stored name for messages: a NUL and other control bytes made visible."""
        return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in self.orig_filename)


@dataclass(frozen=True)
class Problem:
    """Something about a zip that extractors disagree on or cannot do, found while reading.
    ``code`` is an FB0xx rule (registered in bundler/checks/archive.py); ``skip`` says the
    member's bytes must not be inflated (they are not what the name says, or cannot be)."""

    code: str
    name: str  # as shown in a finding (the stored name, control bytes made visible)
    message: str
    hint: str = _REBUILD
    skip: bool = False
    member: str | None = None  # the entry's name (Member.filename), for a member's problem


@dataclass
class Archive:
    """A zip as read: its members in central-directory order and what is wrong with it."""

    path: Path
    size: int
    members: list[Member]
    comment: bytes = b""
    declared_entries: int = 0
    problems: list[Problem] = field(default_factory=list)


# --- the end record --------------------------------------------------------------------------


@dataclass(frozen=True)
class _End:
    entries: int
    cd_size: int
    cd_offset: int
    record_at: int  # where the (zip64, if any) end record starts
    comment: bytes
    spanned: bool


def _end_record(stream: BinaryIO, size: int, path: Path) -> _End:
    """The end record (zip64 if there is one), read as zipfile finds it: the last signature in
    the final 64 KiB + 22 bytes."""
    start = max(0, size - (1 << 16) - _EOCD.size)
    stream.seek(start)
    tail = stream.read()
    at = tail.rfind(_SIG_EOCD)
    if at < 0 or at + _EOCD.size > len(tail):
        raise ZipFormatError(f"{path}: not a readable zip (no end of central directory "
                             "record)", "pass a bundle zip (fbundle build writes one)")
    _, disk, cd_disk, here, entries, cd_size, cd_offset, comment_len = _EOCD.unpack_from(
        tail, at)
    comment = tail[at + _EOCD.size: at + _EOCD.size + comment_len]
    spanned = disk != 0 or cd_disk != 0 or here != entries
    record_at = start + at
    locator_at = record_at - _LOCATOR64.size
    if locator_at >= 0:
        stream.seek(locator_at)
        locator = stream.read(_LOCATOR64.size)
        if locator[:4] == _SIG_LOCATOR:
            _, eocd64_disk, _, disks = _LOCATOR64.unpack(locator)
            spanned = spanned or eocd64_disk != 0 or disks > 1
            # As zipfile: the zip64 record sits right before its locator.
            eocd64_at = locator_at - _EOCD64.size
            stream.seek(max(0, eocd64_at))
            record = stream.read(_EOCD64.size)
            if eocd64_at < 0 or len(record) != _EOCD64.size or record[:4] != _SIG_EOCD64:
                raise ZipFormatError(f"{path}: not a readable zip (the zip64 end record is "
                                     "missing or damaged)", "rebuild the bundle")
            (_, _, _, _, disk64, cd_disk64, here64, entries, cd_size,
             cd_offset) = _EOCD64.unpack(record)
            spanned = spanned or disk64 != 0 or cd_disk64 != 0 or here64 != entries
            record_at = eocd64_at
    return _End(entries, cd_size, cd_offset, record_at, comment, spanned)


# --- the central directory -------------------------------------------------------------------


def _zip64_fields(extra: bytes, wanted: list[str]) -> dict[str, int]:
    """The zip64 extra field's values for the fields set to 0xFFFFFFFF, in the spec's order."""
    out: dict[str, int] = {}
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, at)
        if tag == 0x0001:
            body = extra[at + 4: at + 4 + length]
            for i, name in enumerate(wanted):
                if 8 * i + 8 > len(body):
                    break
                out[name] = int.from_bytes(body[8 * i: 8 * i + 8], "little")
            return out
        at += 4 + length
    return out


def _decode_name(raw: bytes, flags: int) -> tuple[str, bool]:
    """(name, is UTF-8). Zips without the UTF-8 flag are cp437 by spec, but tools write UTF-8
    there anyway: decode as UTF-8 when that works, and remember whether it did."""
    if flags & _UTF8:
        return raw.decode("utf-8", "surrogateescape"), True
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("cp437"), False


def _dos_time(time: int, date: int) -> tuple[int, int, int, int, int, int]:
    return ((date >> 9) + 1980, (date >> 5) & 0xF, date & 0x1F,
            time >> 11, (time >> 5) & 0x3F, (time & 0x1F) * 2)


def _central(stream: BinaryIO, path: Path, start: int, size: int, concat: int,
             max_entries: int, other_disks: list[str]) -> list[Member]:
    """Every record of the central directory, counted as parsed: past ``max_entries`` the zip
    is refused before another record is allocated. Names of members said to start on another
    disk are added to ``other_disks``. The directory is read in one piece: it is never larger
    than the file, and a lying size reads no further than the file's end."""
    stream.seek(start)
    data = stream.read(size)
    members: list[Member] = []
    unpack = _CENTRAL.unpack_from
    at, fixed_size, end = 0, _CENTRAL.size, len(data)
    while at < end:
        if at + fixed_size > end or data[at: at + 4] != _SIG_CENTRAL:
            raise ZipFormatError(f"{path}: not a readable zip (the central directory is "
                                 f"damaged after {len(members)} entries)", "rebuild the bundle")
        if len(members) >= max_entries:
            raise ZipFormatError(f"{path}: holds more than {max_entries} entries",
                                 "a bundle this large cannot be an agent; rebuild it")
        (_, create_version, create_system, extract_version, _, flags, method, time, date, crc,
         csize, usize, name_len, extra_len, comment_len, disk, internal, external,
         offset) = unpack(data, at)
        at += fixed_size
        name_end, extra_end = at + name_len, at + name_len + extra_len
        next_at = extra_end + comment_len
        if next_at > end:
            raise ZipFormatError(f"{path}: not a readable zip (the central directory is "
                                 "truncated)", "rebuild the bundle")
        raw_name = data[at:name_end]
        extra = data[name_end:extra_end]
        if 0xFFFFFFFF in (usize, csize, offset) or disk == 0xFFFF:
            wanted = [n for n, v in (("usize", usize), ("csize", csize), ("offset", offset))
                      if v == 0xFFFFFFFF] + (["disk"] if disk == 0xFFFF else [])
            big = _zip64_fields(extra, wanted)
            usize, csize = big.get("usize", usize), big.get("csize", csize)
            offset, disk = big.get("offset", offset), big.get("disk", disk)
        name, is_utf8 = _decode_name(raw_name, flags)
        members.append(Member(
            name.split("\0", 1)[0] if "\0" in name else name, raw_name, is_utf8, flags, method,
            crc, csize, usize, offset + concat, _dos_time(time, date), create_system,
            create_version, extract_version, internal, external, extra,
            data[extra_end:next_at]))
        if disk != 0:
            other_disks.append(name)
        at = next_at
    return members


# --- local headers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalHeader:
    """A member's local header, as ``unzip`` reads it when it extracts."""

    flags: int
    method: int
    crc: int
    compress_size: int
    file_size: int
    raw_name: bytes
    extra: bytes
    data_offset: int


def local_header(stream: BinaryIO, info: MemberInfo) -> LocalHeader:
    """The local header at ``info.header_offset``; BadZipFile when there is none."""
    stream.seek(info.header_offset)
    fixed = stream.read(_LOCAL.size)
    if len(fixed) != _LOCAL.size or fixed[:4] != _SIG_LOCAL:
        raise zipfile.BadZipFile(f"no local header for {info.filename}")
    (_, _, flags, method, _, _, crc, csize, usize, name_len, extra_len) = _LOCAL.unpack(fixed)
    variable = stream.read(name_len + extra_len)
    if len(variable) != name_len + extra_len:
        raise zipfile.BadZipFile(f"the local header of {info.filename} is truncated")
    extra = variable[name_len:]
    wanted = [n for n, v in (("usize", usize), ("csize", csize)) if v == 0xFFFFFFFF]
    if wanted:
        big = _zip64_fields(extra, wanted)
        usize, csize = big.get("usize", usize), big.get("csize", csize)
    return LocalHeader(flags, method, crc, csize, usize, variable[:name_len], extra,
                       info.header_offset + _LOCAL.size + name_len + extra_len)


def local_extra_and_start(stream: BinaryIO, info: MemberInfo) -> tuple[bytes, int]:
    """A member's local extra field and where its compressed bytes start."""
    if isinstance(info, Member) and info.data_offset >= 0:
        return info.local_extra, info.data_offset
    header = local_header(stream, info)
    return header.extra, header.data_offset


def _descriptor(stream: BinaryIO, member: Member, end: int) -> tuple[int, str | None]:
    """(length, problem) of the data descriptor flag bit 3 promises at ``end``."""
    stream.seek(end)
    data = stream.read(24)
    body = data[4:] if data[:4] == _SIG_DESCRIPTOR else data
    header = len(data) - len(body)
    for width in (4, 8):  # zip64 descriptors carry 8-byte sizes
        need = 4 + 2 * width
        if len(body) < need:
            continue
        crc = int.from_bytes(body[:4], "little")
        csize = int.from_bytes(body[4: 4 + width], "little")
        usize = int.from_bytes(body[4 + width: need], "little")
        if (crc, csize, usize) == (member.CRC, member.compress_size, member.file_size):
            return header + need, None
    return 0, ("flag bit 3 says a data descriptor follows the data, but none that matches "
               "the central directory does")


def _check_local(stream: BinaryIO, member: Member, size: int) -> tuple[Member, list[Problem],
                                                                         int]:
    """The member with its data offset, what its local header contradicts, and where its
    bytes (data descriptor included) end."""
    name = member.shown_name
    problems: list[Problem] = []
    try:
        local = local_header(stream, member)
    except zipfile.BadZipFile as error:
        return member, [Problem("FB001", name, f"cannot be read: {error}", skip=True,
                             member=member.filename)], \
            member.header_offset + _LOCAL.size
    if local.raw_name != member.raw_name:
        shown = _decode_name(local.raw_name, local.flags)[0]
        problems.append(Problem(
            "FB005", name, f"its local header names {shown!r}: unzip extracts that name, "
            "zipfile refuses the member", skip=True, member=member.filename))
    differ = []
    if local.method != member.compress_type:
        differ.append(f"method {_method(member.compress_type)} in the central directory, "
                      f"{_method(local.method)} in the local header")
    meaningful = _MEANINGFUL_FLAGS if not member.raw_name.isascii() else \
        _MEANINGFUL_FLAGS & ~_UTF8  # the UTF-8 flag says nothing about an ASCII name
    if (local.flags ^ member.flag_bits) & meaningful:
        differ.append(f"flags {member.flag_bits:#06x} vs {local.flags:#06x}")
    if not member.flag_bits & _DESCRIPTOR and not local.flags & _DESCRIPTOR:
        for what, central, here in (("CRC", member.CRC, local.crc),
                                    ("compressed size", member.compress_size,
                                     local.compress_size),
                                    ("size", member.file_size, local.file_size)):
            if central != here:
                differ.append(f"{what} {central} vs {here}")
    if differ:
        problems.append(Problem(
            "FB006", name, "the central directory and the local header disagree ("
            + "; ".join(differ) + "): unzip and zipfile extract different bytes", skip=True,
            member=member.filename))
    end = local.data_offset + member.compress_size
    if member.flag_bits & _DESCRIPTOR and end <= size:
        length, why = _descriptor(stream, member, end)
        end += length
        if why:
            problems.append(Problem("FB007", name, why, member=member.filename))
    member.data_offset, member.local_extra = local.data_offset, local.extra
    return member, problems, end


def _method(method: int) -> str:
    return {STORED: "stored", DEFLATED: "deflated"}.get(method) or \
        f"{_METHOD_NAMES.get(method, 'method')} ({method})"


def _member_problems(member: Member) -> list[Problem]:
    """What extractors cannot do with a member, judged from its central record alone."""
    name = member.shown_name
    found = []
    if not member.raw_name:
        found.append(Problem(
            "FB017", "", "an entry has an empty name: unzip extracts it under the name of the "
            "entry before it, zipfile cannot extract it", skip=True, member=member.filename))
    if "\0" in member.orig_filename:
        found.append(Problem(
            "FB004", name, f"the name holds a NUL byte: unzip and zipfile cut it there and "
                           f"extract it as {member.filename!r}", member=member.filename))
    if member.compress_type not in (STORED, DEFLATED):
        found.append(Problem(
            "FB012", name, f"compressed with {_method(member.compress_type)}; unzip 6.0 "
            "extracts only stored and deflated members",
            "rebuild the zip with deflate (fbundle build, zip -r)", skip=True,
            member=member.filename))
    flags = member.flag_bits & (_PATCHED | _STRONG | _MASKED)
    if flags:
        what = ", ".join(label for bit, label in ((_PATCHED, "bit 5, patched data"),
                                                  (_STRONG, "bit 6, strong encryption"),
                                                  (_MASKED, "bit 13, masked headers"))
                         if flags & bit)
        found.append(Problem("FB016", name, f"flagged with {what}; neither unzip nor zipfile "
                             "can extract it", "rebuild the zip without encryption", skip=True,
                             member=member.filename))
    return found


def _overlaps(members: list[Member], ends: list[int], cd_start: int) -> list[Problem]:
    """Members whose bytes (local header to data descriptor) run into another member or into
    the central directory: several names for one member, or a quoted-overlap zip bomb."""
    order = sorted(range(len(members)), key=lambda i: (members[i].header_offset, i))
    problems = []
    previous: int | None = None
    hosts: set[int] = set()
    for i in order:
        member = members[i]
        if previous is not None and member.header_offset < ends[previous]:
            host = members[previous]
            problems.append(Problem(
                "FB008", member.shown_name, f"its bytes overlap those of {host.shown_name!r}: "
                "one member's data is read under two names (overlapping entries, the "
                "quoted-overlap zip bomb)", skip=True, member=member.filename))
            if previous not in hosts:
                hosts.add(previous)
                problems.append(Problem(
                    "FB008", host.shown_name, f"the bytes of {member.shown_name!r} lie inside "
                    "it: one member's data is read under two names", skip=True,
                    member=host.filename))
        if previous is None or ends[i] > ends[previous]:
            previous = i
    if previous is not None and ends[previous] > cd_start:
        problems.append(Problem(
            "FB008", members[previous].shown_name, "its bytes run into the central directory",
            skip=True, member=members[previous].filename))
    return problems


def read_archive(path: Path, *, max_entries: int | None = None) -> Archive:
    """Read ``path``'s central directory and check every local header against it.

    Raises :class:`ZipFormatError` (exit 2) when the zip as a whole cannot be read or holds
    more than ``max_entries`` (default :data:`MAX_ENTRIES`) entries; everything else wrong is
    a :class:`Problem` in the result, for validate to report and for the other readers to
    refuse.
    """
    try:
        stream = open(path, "rb")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file", "pass the path of a bundle zip") from None
    except PermissionError:
        raise UsageError(f"{path}: cannot be read (permission denied)",
                         "make it readable, or pass another zip") from None
    with stream:
        size = stream.seek(0, io.SEEK_END)
        end = _end_record(stream, size, path)
        concat = end.record_at - end.cd_size - end.cd_offset
        if concat < 0:
            raise ZipFormatError(f"{path}: not a readable zip (the end record points "
                                 "outside the file)", "rebuild the bundle")
        cd_start = end.cd_offset + concat
        other_disks: list[str] = []
        members = _central(stream, path, cd_start, end.cd_size, concat,
                           MAX_ENTRIES if max_entries is None else max_entries, other_disks)
        problems: list[Problem] = []
        if end.spanned or other_disks:
            problems.append(Problem("FB015", str(path), "the end record says the zip spans "
                                    "several disks; unzip refuses it",
                                    "rebuild it as one zip file"))
        if end.entries != len(members):
            problems.append(Problem(
                "FB010", str(path), f"the end record declares {end.entries} entries, the "
                f"central directory holds {len(members)}: tools that trust the count see "
                "other files"))
        checked: list[Member] = []
        ends: list[int] = []
        for member in members:
            problems.extend(_member_problems(member))
            member, found, member_end = _check_local(stream, member, size)
            problems.extend(found)
            checked.append(member)
            ends.append(member_end)
        problems.extend(_overlaps(checked, ends, cd_start))
    return Archive(path, size, checked, end.comment, end.entries, problems)


# --- member bytes ----------------------------------------------------------------------------


def raw_chunks(stream: BinaryIO, info: MemberInfo) -> Iterator[bytes]:
    """A member's stored (compressed) bytes as they are in the zip, read in chunks."""
    _, start = local_extra_and_start(stream, info)
    stream.seek(start)
    left = info.compress_size
    while left:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            raise zipfile.BadZipFile(f"{info.filename} is truncated")
        left -= len(chunk)
        stream.seek(start + info.compress_size - left)
        yield chunk


def inflate(stream: BinaryIO, info: MemberInfo) -> Iterator[bytes]:
    """A stored or deflated member's bytes, at most :data:`CHUNK` at a time, checked as zipfile
    checks them: never more than the declared size (a bomb stops there), then the declared
    size and the CRC. Other methods and encrypted members raise BadZipFile."""
    if info.flag_bits & _ENCRYPTED:
        raise zipfile.BadZipFile(f"{info.filename} is encrypted (a password is required)")
    if info.compress_type not in (STORED, DEFLATED):
        raise zipfile.BadZipFile(f"{info.filename}: compression method {info.compress_type} "
                                 "is not supported")
    inflater = zlib.decompressobj(-15) if info.compress_type == DEFLATED else None
    produced = crc = 0
    for chunk in raw_chunks(stream, info):
        pending = chunk
        while pending:
            if inflater is None:
                out, pending = pending, b""
            else:
                out = inflater.decompress(pending, min(CHUNK, info.file_size - produced + 1))
                pending = inflater.unconsumed_tail
            produced += len(out)
            if produced > info.file_size:
                raise zipfile.BadZipFile(f"{info.filename} holds more than its declared size")
            crc = zlib.crc32(out, crc)
            if out:
                yield out
            elif pending:
                break  # no progress: the stream is corrupt; the checks below say so
    if produced != info.file_size:
        raise zipfile.BadZipFile(f"{info.filename} is shorter than its declared size")
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")


def readable_raw(info: MemberInfo) -> bool:
    """Whether :func:`inflate` can read the member (stored or deflated, not encrypted)."""
    return info.compress_type in (STORED, DEFLATED) and not info.flag_bits & _ENCRYPTED


def open_member(archive: Path, info: MemberInfo) -> BinaryIO:
    """A member's bytes as a stream, checked (size, then CRC at the end).

    Stored and deflated members are inflated from their own offset. Other methods (bzip2,
    LZMA: valid for zipfile and pip, refused in a bundle by FB012) are read through zipfile,
    whose record for the member is the one at the same offset.
    """
    if readable_raw(info):
        raw = open(archive, "rb")
        return cast(BinaryIO, io.BufferedReader(_ChunkStream(inflate(raw, info), raw), CHUNK))
    opened = zipfile.ZipFile(archive)
    try:
        zinfo = info if isinstance(info, zipfile.ZipInfo) else next(
            (z for z in opened.infolist() if z.header_offset == info.header_offset), None)
        if zinfo is None:
            raise zipfile.BadZipFile(f"{info.filename}: no such member")
        stream = opened.open(zinfo)
    except BaseException:
        opened.close()
        raise
    return cast(BinaryIO, _ClosingStream(stream, opened))


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
    """A zipfile member stream that also closes the archive it came from."""

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


def name_problems(name: str) -> list[tuple[str, str]]:
    """(code, message) for a name Linux cannot create: too long a path or segment. Names come
    from zips, folders and plans alike, so build and validate share this."""
    found = []
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) > MAX_PATH_BYTES:
        found.append(("FB013", f"the name is {len(encoded)} bytes; Linux paths hold at most "
                      f"{MAX_PATH_BYTES} (unzip and zipfile cannot create it)"))
    longest = max(encoded.split(b"/"), key=len)
    if len(longest) > MAX_SEGMENT_BYTES:
        found.append(("FB014", f"a path segment is {len(longest)} bytes; Linux file names hold "
                      f"at most {MAX_SEGMENT_BYTES}"))
    return found
