"""What a file's bytes say it is: ELF, PE or Mach-O, for which machine, needing which glibc.

Binaries are recognised by their headers, never by their names (a ``.so`` can be a text file
and a Windows DLL can be called ``_speedups.so``). Every reader here takes bytes and is bounded:
a malformed or truncated header gives :class:`BinaryInfo` with ``malformed`` set, never an
exception. Written by hand because the field's ELF/PE readers (pyelftools, pefile) are large
dependencies for the few fields validation needs, and packaging's own ELF reader
(``packaging._elffile``) is private and reads no version needs.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

Format = Literal["elf", "pe", "macho", "macho-fat"]

ELF_MAGIC = b"\x7fELF"
EM_X86_64 = 62
ELF_MACHINES = {
    3: "i386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm", 62: "x86_64",
    183: "aarch64", 243: "riscv", 258: "loongarch",
}
PE_MACHINES = {
    0x14C: "i386", 0x8664: "x86_64", 0xAA64: "arm64", 0x1C4: "arm", 0x200: "ia64", 0x0: "any",
}
MACHO_MAGICS = {
    b"\xfe\xed\xfa\xce": (">", 32), b"\xce\xfa\xed\xfe": ("<", 32),
    b"\xfe\xed\xfa\xcf": (">", 64), b"\xcf\xfa\xed\xfe": ("<", 64),
}
FAT_MAGICS = (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf")
MACHO_CPUS = {7: "i386", 0x01000007: "x86_64", 12: "arm", 0x0100000C: "arm64", 18: "ppc",
              0x01000012: "ppc64"}
# Enough bytes to tell the formats apart and read PE/Mach-O headers.
HEAD_SIZE = 4096

_SHT_GNU_VERNEED = 0x6FFFFFFE
_DT_STRTAB, _DT_STRSZ, _DT_VERNEED, _DT_VERNEEDNUM = 5, 10, 0x6FFFFFFE, 0x6FFFFFFF
_PT_LOAD, _PT_DYNAMIC = 1, 2
_GLIBC = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.\d+)?$")
# Version needs that are not GLIBC_x.y but only exist from a given glibc on.
_GLIBC_SPECIAL = {"GLIBC_ABI_DT_RELR": (2, 36)}


@dataclass(frozen=True)
class BinaryInfo:
    """The facts validation needs about one binary."""

    format: Format
    machine: str = "unknown"
    bits: int = 0
    little_endian: bool = True
    managed: bool = False  # PE with a .NET CLI header (data directory 14)
    glibc_needs: tuple[tuple[int, int], ...] = ()
    architectures: tuple[str, ...] = field(default=())  # Mach-O fat slices
    malformed: str | None = None

    @property
    def max_glibc(self) -> tuple[int, int] | None:
        return max(self.glibc_needs) if self.glibc_needs else None


class _Bad(Exception):
    """A header field points outside the file or makes no sense."""


def sniff(head: bytes) -> Format | None:
    """The format a file's first bytes announce, if any."""
    if head.startswith(ELF_MAGIC):
        return "elf"
    if head.startswith(b"MZ"):
        return "pe"
    if head[:4] in MACHO_MAGICS:
        return "macho"
    if head[:4] in FAT_MAGICS and len(head) >= 8:
        # Java class files share 0xCAFEBABE; there the next word is the class version (>= 45).
        if 0 < struct.unpack(">I", head[4:8])[0] < 45:
            return "macho-fat"
    return None


def needs_whole_file(fmt: Format | None) -> bool:
    """ELF version needs live anywhere in the file; the other formats need only the head."""
    return fmt == "elf"


def inspect_binary(data: bytes) -> BinaryInfo | None:
    """Describe ``data`` if it is a binary; ``None`` for anything else."""
    fmt = sniff(data[:8])
    if fmt is None:
        return None
    reader = {"elf": _elf, "pe": _pe, "macho": _macho, "macho-fat": _fat}[fmt]
    try:
        return reader(data)
    except (_Bad, struct.error, IndexError, ValueError, OverflowError) as error:
        return BinaryInfo(fmt, malformed=str(error) or "truncated header")


def _unpack(fmt: str, data: bytes, offset: int) -> tuple[Any, ...]:
    size = struct.calcsize(fmt)
    if offset < 0 or offset + size > len(data):
        raise _Bad(f"header field at offset {offset} lies beyond the end of the file")
    return struct.unpack_from(fmt, data, offset)


# ---- ELF -------------------------------------------------------------------------------------

def _elf(data: bytes) -> BinaryInfo:
    if len(data) < 52:
        raise _Bad("truncated ELF header")
    ei_class, ei_data = data[4], data[5]
    if ei_class not in (1, 2):
        raise _Bad(f"unknown ELF class {ei_class}")
    if ei_data not in (1, 2):
        raise _Bad(f"unknown ELF byte order {ei_data}")
    bits = 32 if ei_class == 1 else 64
    e = "<" if ei_data == 1 else ">"
    (machine_id,) = _unpack(e + "H", data, 18)
    machine = ELF_MACHINES.get(machine_id, f"e_machine {machine_id}")
    info = BinaryInfo("elf", machine, bits, ei_data == 1)
    if bits != 64 or ei_data != 1 or machine_id != EM_X86_64:
        return info  # already unloadable on the service; no need to read further
    needs = _elf_version_needs(data, e)
    glibc = sorted({v for name in needs if (v := glibc_version(name)) is not None})
    return BinaryInfo("elf", machine, bits, True, glibc_needs=tuple(glibc))


def glibc_version(name: str) -> tuple[int, int] | None:
    """``GLIBC_2.34`` -> (2, 34); None for ``GLIBC_PRIVATE`` and non-glibc versions."""
    if name in _GLIBC_SPECIAL:
        return _GLIBC_SPECIAL[name]
    match = _GLIBC.match(name)
    return (int(match[1]), int(match[2])) if match else None


def _elf_version_needs(data: bytes, e: str) -> list[str]:
    """Names of every version this 64-bit ELF needs (section headers, else the dynamic table)."""
    shoff, = _unpack(e + "Q", data, 0x28)
    shentsize, shnum = _unpack(e + "HH", data, 0x3A)
    if shoff and shnum:
        if shentsize < 64 or shnum > 65535 or shoff + shnum * shentsize > len(data):
            raise _Bad("section header table lies beyond the end of the file")
        sections = [_unpack(e + "IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        for _name, sh_type, _f, _a, offset, _size, link, count, _al, _es in sections:
            if sh_type == _SHT_GNU_VERNEED:
                if link >= shnum:
                    raise _Bad("version-needs section links to no string table")
                str_off, str_size = sections[link][4], sections[link][5]
                return _verneed(data, e, offset, count, str_off, str_size)
        return []
    return _elf_version_needs_dynamic(data, e)


def _elf_version_needs_dynamic(data: bytes, e: str) -> list[str]:
    """Stripped of section headers: follow PT_DYNAMIC's DT_VERNEED through the PT_LOADs."""
    phoff, = _unpack(e + "Q", data, 0x20)
    phentsize, phnum = _unpack(e + "HH", data, 0x36)
    if not phnum:
        return []
    if phnum > 65535 or phentsize < 56:
        raise _Bad("program header table is malformed")
    loads: list[tuple[int, int, int]] = []
    dynamic: tuple[int, int] | None = None
    for i in range(phnum):
        p_type, _fl, p_offset, p_vaddr, _pa, p_filesz, _ms, _al = _unpack(
            e + "IIQQQQQQ", data, phoff + i * phentsize)
        if p_type == _PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == _PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return []
    tags: dict[int, int] = {}
    offset, size = dynamic
    for pos in range(offset, offset + min(size, len(data)), 16):
        tag, value = _unpack(e + "qQ", data, pos)
        if tag == 0:
            break
        tags.setdefault(tag, value)
    if _DT_VERNEED not in tags or _DT_STRTAB not in tags:
        return []

    def to_offset(vaddr: int) -> int:
        for start, file_offset, filesz in loads:
            if start <= vaddr < start + filesz:
                return vaddr - start + file_offset
        raise _Bad(f"address {vaddr:#x} is in no loaded segment")

    return _verneed(data, e, to_offset(tags[_DT_VERNEED]), tags.get(_DT_VERNEEDNUM, 0),
                    to_offset(tags[_DT_STRTAB]), tags.get(_DT_STRSZ, len(data)))


def _verneed(data: bytes, e: str, offset: int, count: int, str_off: int,
             str_size: int) -> list[str]:
    names: list[str] = []
    if count > 4096:
        raise _Bad("implausible number of version needs")
    for _ in range(count):
        _version, aux_count, _file, aux, next_ = _unpack(e + "HHIII", data, offset)
        aux_offset = offset + aux
        for _ in range(min(aux_count, 4096)):
            _hash, _flags, _other, name, aux_next = _unpack(e + "IHHII", data, aux_offset)
            names.append(_cstring(data, str_off, str_size, name))
            if not aux_next:
                break
            aux_offset += aux_next
        if not next_:
            break
        offset += next_
    return names


def _cstring(data: bytes, table: int, table_size: int, index: int) -> str:
    start = table + index
    if index >= table_size or start >= len(data):
        raise _Bad("version name lies outside the string table")
    end = data.find(b"\0", start, min(len(data), table + table_size))
    if end < 0:
        raise _Bad("unterminated version name")
    return data[start:end].decode("ascii", "replace")


# ---- PE --------------------------------------------------------------------------------------

def _pe(data: bytes) -> BinaryInfo:
    (pe_offset,) = _unpack("<I", data, 0x3C)
    if _unpack("<4s", data, pe_offset)[0] != b"PE\0\0":
        # An MZ stub without a PE header is still a DOS/Windows executable.
        return BinaryInfo("pe", "dos", malformed="MZ header without a PE signature")
    machine_id, _sections, _ts, _sym, _nsym, opt_size, _chars = _unpack(
        "<HHIIIHH", data, pe_offset + 4)
    machine = PE_MACHINES.get(machine_id, f"machine {machine_id:#x}")
    opt = pe_offset + 24
    if opt_size == 0:
        return BinaryInfo("pe", machine, 0)
    (magic,) = _unpack("<H", data, opt)
    if magic == 0x10B:
        bits, count_at, dirs_at = 32, 92, 96
    elif magic == 0x20B:
        bits, count_at, dirs_at = 64, 108, 112
    else:
        raise _Bad(f"unknown PE optional header magic {magic:#x}")
    (count,) = _unpack("<I", data, opt + count_at)
    managed = False
    if count > 14 and dirs_at + 15 * 8 <= opt_size:
        rva, size = _unpack("<II", data, opt + dirs_at + 14 * 8)
        managed = bool(rva and size)
    return BinaryInfo("pe", machine, bits, managed=managed)


# ---- Mach-O ----------------------------------------------------------------------------------

def _macho(data: bytes) -> BinaryInfo:
    order, bits = MACHO_MAGICS[data[:4]]
    (cpu,) = _unpack(order + "i", data, 4)
    machine = MACHO_CPUS.get(cpu & 0xFFFFFFFF, f"cputype {cpu}")
    return BinaryInfo("macho", machine, bits, order == "<", architectures=(machine,))


def _fat(data: bytes) -> BinaryInfo:
    is64 = data[:4] == FAT_MAGICS[1]
    (count,) = _unpack(">I", data, 4)
    stride = 32 if is64 else 20
    archs = []
    for i in range(count):
        (cpu,) = _unpack(">i", data, 8 + i * stride)
        archs.append(MACHO_CPUS.get(cpu & 0xFFFFFFFF, f"cputype {cpu}"))
    return BinaryInfo("macho-fat", "+".join(archs) or "none", 64 if is64 else 32,
                      False, architectures=tuple(archs))
