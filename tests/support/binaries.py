"""Foreign and versioned binaries, written byte for byte (or compiled) inside the test session.

fbundle recognises binaries by their bytes, not their names, so its tests need real headers:
PE (native DLL vs managed .NET assembly), Mach-O (thin 32/64-bit, either endianness, fat) and
ELF for any machine. Each builder here writes the smallest file a reader may take for the real
thing; the layouts follow the PE/COFF specification, ``<mach-o/loader.h>``/``<mach-o/fat.h>``
and the System V ELF gABI. :func:`elf_needing_glibc` is compiled by gcc so that its symbol
version need is exactly what the loader (and ``readelf -V``) would see.
"""

from __future__ import annotations

import functools
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

# ---------------------------------------------------------------------------------------- PE

IMAGE_FILE_MACHINE_I386 = 0x014C
IMAGE_FILE_MACHINE_AMD64 = 0x8664
IMAGE_FILE_MACHINE_ARM64 = 0xAA64
IMAGE_DIRECTORY_ENTRY_COM_DESCRIPTOR = 14
PE_OFFSET = 0x80
FILE_ALIGNMENT = 0x200
SECTION_ALIGNMENT = 0x1000
TEXT_RVA = 0x2000
CLR_HEADER_RVA = TEXT_RVA + 0x08
METADATA_RVA = TEXT_RVA + 0x50
_COR20 = struct.Struct("<IHHIIII6Q")  # cb, runtime version, metadata dir, flags, token, 6 dirs
_SECTION = struct.Struct("<8sIIIIIIHHI")
COMIMAGE_FLAGS_ILONLY = 0x1


def pe_dll(
    managed: bool = False, machine: int = IMAGE_FILE_MACHINE_AMD64, *, pe32: bool | None = None
) -> bytes:
    """A minimal, well-formed PE DLL: DOS header, ``PE\\0\\0``, COFF header, optional header.

    The DOS header's ``e_lfanew`` (offset 0x3C) points at the PE signature at 0x80. The optional
    header is PE32+ (magic 0x20B) with 16 data directories, or PE32 (0x10B) when ``pe32`` —
    by default PE32 exactly when ``machine`` is i386, as for AnyCPU .NET assemblies. One
    ``.text`` section follows at file offset 0x200 / RVA 0x2000.

    When ``managed``, data directory 14 (CLR runtime header, a.k.a. COM descriptor) points at
    an ``IMAGE_COR20_HEADER`` inside ``.text`` (flags ``ILONLY``, runtime 2.5) whose metadata
    directory points at a ``BSJB`` metadata root: that is how a reader tells a .NET assembly
    from a native DLL. Otherwise every data directory is zero.
    """
    if pe32 is None:
        pe32 = machine == IMAGE_FILE_MACHINE_I386
    text = bytearray(FILE_ALIGNMENT)
    directories = [(0, 0)] * 16
    if managed:
        metadata = b"BSJB" + struct.pack("<HHI", 1, 1, 0) + struct.pack("<I", 12)
        metadata += b"v4.0.30319\0\0" + struct.pack("<HH", 0, 0)
        cor20 = _COR20.pack(
            _COR20.size,
            2,
            5,
            METADATA_RVA,
            len(metadata),
            COMIMAGE_FLAGS_ILONLY,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        )
        start = CLR_HEADER_RVA - TEXT_RVA
        text[start : start + len(cor20)] = cor20
        start = METADATA_RVA - TEXT_RVA
        text[start : start + len(metadata)] = metadata
        directories[IMAGE_DIRECTORY_ENTRY_COM_DESCRIPTOR] = (CLR_HEADER_RVA, _COR20.size)

    size_of_image = TEXT_RVA + SECTION_ALIGNMENT
    data_directories = b"".join(struct.pack("<II", rva, size) for rva, size in directories)
    # Standard fields: magic, linker version, code/data sizes, entry point, base of code.
    standard = struct.pack(
        "<HBBIIIII", 0x10B if pe32 else 0x20B, 14, 0, FILE_ALIGNMENT, 0, 0, 0, TEXT_RVA
    )
    if pe32:
        windows = struct.pack(
            "<IIIIHHHHHHIIIIHHIIIIII",
            TEXT_RVA,  # BaseOfData (PE32 only)
            0x10000000,
            SECTION_ALIGNMENT,
            FILE_ALIGNMENT,
            6,
            0,
            0,
            0,
            6,
            0,
            0,  # OS, image, subsystem versions; Win32VersionValue
            size_of_image,
            FILE_ALIGNMENT,
            0,  # SizeOfImage, SizeOfHeaders, CheckSum
            3,
            0x8560,  # Subsystem (console), DllCharacteristics
            0x100000,
            0x1000,
            0x100000,
            0x1000,  # stack / heap reserve and commit
            0,
            16,  # LoaderFlags, NumberOfRvaAndSizes
        )
    else:
        windows = struct.pack(
            "<QIIHHHHHHIIIIHHQQQQII",
            0x180000000,
            SECTION_ALIGNMENT,
            FILE_ALIGNMENT,
            6,
            0,
            0,
            0,
            6,
            0,
            0,
            size_of_image,
            FILE_ALIGNMENT,
            0,
            3,
            0x8160,
            0x100000,
            0x1000,
            0x100000,
            0x1000,
            0,
            16,
        )
    optional = standard + windows + data_directories
    assert len(optional) == (224 if pe32 else 240), len(optional)
    characteristics = 0x2000 | 0x0002 | (0x0100 if pe32 else 0x0020)  # DLL | EXECUTABLE | 32/LAA
    coff = struct.pack("<HHIIIHH", machine, 1, 0, 0, 0, len(optional), characteristics)
    section = _SECTION.pack(
        b".text",
        FILE_ALIGNMENT,
        TEXT_RVA,
        FILE_ALIGNMENT,
        FILE_ALIGNMENT,
        0,
        0,
        0,
        0,
        0x60000020,  # CODE | EXECUTE | READ
    )
    dos = bytearray(PE_OFFSET)
    dos[0:2] = b"MZ"
    struct.pack_into("<H", dos, 0x02, 0x90)  # bytes on last page, as linkers write it
    struct.pack_into("<I", dos, 0x3C, PE_OFFSET)
    headers = bytes(dos) + b"PE\0\0" + coff + optional + section
    return headers.ljust(FILE_ALIGNMENT, b"\0") + bytes(text)


# ------------------------------------------------------------------------------------- Mach-O

MH_MAGIC, MH_MAGIC_64, FAT_MAGIC = 0xFEEDFACE, 0xFEEDFACF, 0xCAFEBABE
CPU_ARCH_ABI64 = 0x01000000
MH_DYLIB, MH_BUNDLE = 0x6, 0x8
#: kind -> (cputype, cpusubtype, 64-bit, little-endian)
MACHO_KINDS: dict[str, tuple[int, int, bool, bool]] = {
    "x86_64": (7 | CPU_ARCH_ABI64, 3, True, True),
    "arm64": (12 | CPU_ARCH_ABI64, 0, True, True),
    "i386": (7, 3, False, True),
    "arm": (12, 9, False, True),
    "ppc": (18, 0, False, False),
    "ppc64": (18 | CPU_ARCH_ABI64, 0, True, False),
}


def macho(kind: str = "x86_64", *, filetype: int = MH_BUNDLE) -> bytes:
    """A thin Mach-O header with no load commands, as a loadable bundle (``.so``) by default.

    ``kind`` picks the layout from :data:`MACHO_KINDS`: ``x86_64``/``arm64`` (64-bit
    little-endian, magic ``0xFEEDFACF`` stored LE: ``cf fa ed fe``), ``i386``/``arm`` (32-bit
    LE, ``ce fa ed fe``), ``ppc`` (32-bit big-endian, ``fe ed fa ce``) and ``ppc64`` (64-bit
    BE, ``fe ed fa cf``). The 64-bit header carries the reserved word (32 bytes in all).
    """
    try:
        cputype, cpusubtype, is64, little = MACHO_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown Mach-O kind {kind!r}; one of {sorted(MACHO_KINDS)}") from None
    order = "<" if little else ">"
    magic = MH_MAGIC_64 if is64 else MH_MAGIC
    header = struct.pack(f"{order}IiiIIII", magic, cputype, cpusubtype, filetype, 0, 0, 0)
    if is64:
        header += struct.pack(f"{order}I", 0)
    return header


def macho_fat(kinds: tuple[str, str] = ("x86_64", "arm64"), align: int = 12) -> bytes:
    """A universal binary: big-endian ``0xCAFEBABE``, two ``fat_arch`` entries, two thin images.

    Each thin image (from :func:`macho`) starts at a multiple of ``2**align``, as ``lipo``
    lays them out; ``offset``/``size`` in each ``fat_arch`` point at it exactly.
    """
    images = [macho(kind) for kind in kinds]
    step = 1 << align
    header = struct.pack(">II", FAT_MAGIC, len(images))
    body = bytearray()
    offset = step
    for kind, image in zip(kinds, images, strict=True):
        cputype, cpusubtype, _, _ = MACHO_KINDS[kind]
        header += struct.pack(">iiIII", cputype, cpusubtype, offset, len(image), align)
        body += image.ljust(step, b"\0")
        offset += step
    return header.ljust(step, b"\0") + bytes(body)


# ---------------------------------------------------------------------------------------- ELF

EM_386, EM_X86_64, EM_AARCH64 = 3, 62, 183
ET_DYN = 3


def elf(machine: int = EM_X86_64, bits: int = 64, little: bool = True) -> bytes:
    """A well-formed ELF header for a shared object (``ET_DYN``) with no sections or segments.

    ``machine`` is ``e_machine`` (62 x86-64, 183 aarch64, 3 i386, anything else verbatim);
    ``bits`` 64 or 32 picks ELFCLASS64/32 (64- or 52-byte header) and ``little`` the data
    encoding. ``e_phentsize``/``e_shentsize`` hold their class's sizes, all counts are zero.
    """
    if bits not in (32, 64):
        raise ValueError(f"bits must be 32 or 64, not {bits}")
    order = "<" if little else ">"
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1, 0]) + bytes(8)
    if bits == 64:
        rest = struct.pack(
            f"{order}HHIQQQIHHHHHH", ET_DYN, machine, 1, 0, 0, 0, 0, 64, 56, 0, 64, 0, 0
        )
    else:
        rest = struct.pack(
            f"{order}HHIIIIIHHHHHH", ET_DYN, machine, 1, 0, 0, 0, 0, 52, 32, 0, 40, 0, 0
        )
    return ident + rest


#: A libc function per ``GLIBC_<version>`` node, chosen from Debian 12's glibc 2.36 (checked
#: with ``objdump -T``): each is the version the symbol is bound to when referenced as
#: ``name@GLIBC_<version>``. Versions not listed are looked up in the machine's libc.
GLIBC_SYMBOLS: dict[str, str] = {
    "2.2.5": "pthread_mutex_lock",
    "2.14": "memcpy",
    "2.16": "aligned_alloc",
    "2.17": "clock_gettime",
    "2.18": "__cxa_thread_atexit_impl",
    "2.25": "getrandom",
    "2.26": "reallocarray",
    "2.27": "memfd_create",
    "2.28": "fcntl64",
    "2.30": "gettid",
    "2.34": "pthread_create",
    "2.35": "_dl_find_object",
    "2.36": "pidfd_open",
}


def run_gcc(command: list[str], what: str) -> None:
    """Run a gcc command; on failure raise with gcc's own message, which names the cause."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"gcc could not build {what}:\n{done.stderr.strip()}")


def _libc_path() -> str:
    found = subprocess.run(
        ["gcc", "-print-file-name=libc.so.6"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return found if Path(found).is_absolute() else "/lib/x86_64-linux-gnu/libc.so.6"


def glibc_symbol(version: str) -> str:
    """A libc function that carries the symbol version ``GLIBC_<version>`` on this machine."""
    if version in GLIBC_SYMBOLS:
        return GLIBC_SYMBOLS[version]
    table = subprocess.run(
        ["objdump", "-T", _libc_path()], check=True, capture_output=True, text=True
    ).stdout
    pattern = re.compile(rf"\bDF\s+\.text\s+\S+\s+\(?GLIBC_{re.escape(version)}\)?\s+(\w+)$")
    for line in table.splitlines():
        if match := pattern.search(line):
            return match.group(1)
    raise ValueError(f"this machine's glibc has no function versioned GLIBC_{version}")


@functools.cache
def elf_needing_glibc(version: str) -> bytes:
    """A gcc-built x86_64 shared object whose only libc need above 2.2.5 is ``GLIBC_<version>``.

    It references :func:`glibc_symbol` (``version``) through ``.symver name,name@GLIBC_<v>``,
    so ``readelf -V`` lists ``GLIBC_<version>`` under ``.gnu.version_r`` and the loader would
    refuse it on an older glibc. Versions with a known function (see :data:`GLIBC_SYMBOLS`):
    2.2.5, 2.14, 2.16, 2.17 (at the manylinux2014 floor), 2.18, 2.25, 2.26, 2.27, 2.28, 2.30,
    2.34, 2.35, 2.36; any other version this machine's libc defines is found with objdump.
    Cached per version for the session.
    """
    symbol = glibc_symbol(version)
    source = (
        f'__asm__(".symver {symbol},{symbol}@GLIBC_{version}");\n'
        f"extern void {symbol}(void);\n"
        f"void *fbundle_glibc_reference(void) {{ return (void *){symbol}; }}\n"
    )
    gcc = shutil.which("gcc")
    if gcc is None:
        raise FileNotFoundError("gcc is not on PATH; it compiles the glibc-versioned test objects")
    with tempfile.TemporaryDirectory(prefix="fbundle-elf-") as scratch:
        c_file = Path(scratch) / "needs.c"
        so_file = Path(scratch) / "needs.so"
        c_file.write_text(source)
        command = [gcc, "-shared", "-fPIC", "-fno-builtin", "-O1", "-g0", "-Wl,--build-id=none"]
        run_gcc([*command, "-o", str(so_file), str(c_file)], f"{symbol}@GLIBC_{version}")
        return so_file.read_bytes()
