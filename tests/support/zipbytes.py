"""A tiny zip byte writer for hostile-zip tests: every field of every header is the test's.

``zipfile`` cannot write the zips these tests need (a local header that disagrees with its
central record, two records for one local header, a patched entry count, a spanned end record),
so the bytes are laid out here field by field, following APPNOTE 4.3. A member is a
:class:`Member`; fields left ``None`` take the honest value.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

LOCAL = struct.Struct("<IHHHHHIIIHH")
CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
END = struct.Struct("<IHHHHIIH")
STORED, DEFLATED, LZMA = 0, 8, 14


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def lzma_member(data: bytes) -> bytes:
    """``data`` as a zip LZMA stream (method 14): version, properties, raw LZMA1, as APPNOTE
    5.8.8 and CPython's zipfile lay it out."""
    props = lzma._encode_filter_properties({"id": lzma.FILTER_LZMA1})  # type: ignore[attr-defined]
    filters = [lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)]  # type: ignore[attr-defined]
    packer = lzma.LZMACompressor(lzma.FORMAT_RAW, filters=filters)
    header: bytes = struct.pack("<BBH", 9, 4, len(props)) + props
    return header + packer.compress(data) + packer.flush()


@dataclass
class Member:
    """One entry: its name and bytes, and any header field a test wants to lie about."""

    name: bytes
    data: bytes = b""
    method: int = STORED
    compressed: bytes | None = None  # the bytes stored (default: ``data`` stored or deflated)
    flags: int = 0
    crc: int | None = None
    size: int | None = None
    compress_size: int | None = None
    external_attr: int = 0o100644 << 16
    local_name: bytes | None = None  # the local header's name, if it differs from the central
    local_method: int | None = None
    local_flags: int | None = None
    local_crc: int | None = None
    local_size: int | None = None
    local_compress_size: int | None = None
    descriptor: bytes = b""  # written after the data (a data descriptor, or nothing)
    share: int | None = None  # point the central record at member ``share``'s local header
    header_offset: int | None = None  # point the central record here (no local header written)
    disk: int = 0

    def body(self) -> bytes:
        if self.compressed is not None:
            return self.compressed
        return deflate(self.data) if self.method == DEFLATED else self.data


def local_header(name: bytes, data: bytes) -> bytes:
    """A stored member's local header and data, for tests that hide one inside another."""
    return LOCAL.pack(0x04034B50, 20, 0, STORED, 0, 0x21, zlib.crc32(data), len(data),
                      len(data), len(name), 0) + name + data


@dataclass
class Layout:
    """Where each member's local header landed, for tests that patch the bytes further."""

    offsets: list[int] = field(default_factory=list)
    central_at: int = 0


def build_zip(members: Sequence[Member], *, entries: int | None = None, disk: int = 0,
              comment: bytes = b"", prefix: bytes = b"",
              layout: Layout | None = None) -> bytes:
    """The zip holding ``members``: local headers and data in order, then the central
    directory, then the end record (``entries`` patches its count; ``disk`` its disk fields)."""
    out = bytearray(prefix)
    offsets: list[int] = []
    for m in members:
        if m.share is not None or m.header_offset is not None:
            offsets.append(offsets[m.share] if m.share is not None else m.header_offset or 0)
            continue
        body = m.body()
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        size = len(m.data) if m.size is None else m.size
        csize = len(body) if m.compress_size is None else m.compress_size
        name = m.name if m.local_name is None else m.local_name
        offsets.append(len(out) - len(prefix))
        out += LOCAL.pack(0x04034B50, 20, m.flags if m.local_flags is None else m.local_flags,
                          m.method if m.local_method is None else m.local_method, 0, 0x21,
                          crc if m.local_crc is None else m.local_crc,
                          csize if m.local_compress_size is None else m.local_compress_size,
                          size if m.local_size is None else m.local_size, len(name), 0)
        out += name + body + m.descriptor
    central_at = len(out) - len(prefix)
    for m, offset in zip(members, offsets, strict=True):
        body = members[m.share].body() if m.share is not None else m.body()
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        size = len(m.data) if m.size is None else m.size
        csize = len(body) if m.compress_size is None else m.compress_size
        out += CENTRAL.pack(0x02014B50, (3 << 8) | 20, 20, m.flags, m.method, 0, 0x21, crc,
                            csize, size, len(m.name), 0, 0, m.disk, 0, m.external_attr, offset)
        out += m.name
    count = len(members) if entries is None else entries
    out += END.pack(0x06054B50, disk, disk, count, count, len(out) - len(prefix) - central_at,
                    central_at, len(comment)) + comment
    if layout is not None:
        layout.offsets, layout.central_at = offsets, central_at
    return bytes(out)
