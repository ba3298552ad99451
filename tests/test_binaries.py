"""The byte-level readers in bundler/binaries.py, on real bytes (gcc output, headers written
byte for byte by tests/support/binaries.py), and on garbage."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundler.binaries import inspect_binary, sniff
from tests.support.binaries import elf, elf_needing_glibc, macho, macho_fat, pe_dll


def test_gcc_shared_object_reports_its_glibc_version_need() -> None:
    info = inspect_binary(elf_needing_glibc("2.34"))
    assert info is not None and info.malformed is None
    assert (info.format, info.machine, info.bits) == ("elf", "x86_64", 64)
    assert info.max_glibc == (2, 34)


def test_glibc_needs_are_found_without_section_headers() -> None:
    data = bytearray(elf_needing_glibc("2.34"))
    # Zero e_shoff/e_shnum, as `strip --strip-section-headers` does: the dynamic table remains.
    struct.pack_into("<Q", data, 0x28, 0)
    struct.pack_into("<H", data, 0x3C, 0)
    info = inspect_binary(bytes(data))
    assert info is not None and info.max_glibc == (2, 34)


def test_elf_for_aarch64_and_32_bit_and_big_endian_are_described() -> None:
    assert inspect_binary(elf(machine=183)).machine == "aarch64"  # type: ignore[union-attr]
    i386 = inspect_binary(elf(machine=3, bits=32))
    assert i386 is not None and (i386.bits, i386.machine) == (32, "i386")
    big = inspect_binary(elf(machine=21, little=False))
    assert big is not None and not big.little_endian


def test_pe_managed_assembly_is_told_from_a_native_dll() -> None:
    native = inspect_binary(pe_dll(managed=False))
    managed = inspect_binary(pe_dll(managed=True, machine=0x14C))
    assert native is not None and (native.format, native.machine, native.managed) == (
        "pe", "x86_64", False)
    assert managed is not None and managed.managed and managed.bits == 32


def test_every_mach_o_magic_and_fat_binaries_are_recognised() -> None:
    thin = inspect_binary(macho("arm64"))
    assert thin is not None and (thin.format, thin.machine) == ("macho", "arm64")
    fat = inspect_binary(macho_fat(("x86_64", "arm64")))
    assert fat is not None and fat.format == "macho-fat"
    assert fat.architectures == ("x86_64", "arm64")
    for magic in (b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf",
                  b"\xcf\xfa\xed\xfe"):
        assert sniff(magic + bytes(12)) == "macho"


def test_java_class_files_are_not_taken_for_fat_mach_o() -> None:
    java = b"\xca\xfe\xba\xbe" + struct.pack(">HH", 0, 65) + bytes(32)
    assert sniff(java) is None


def test_text_is_not_a_binary() -> None:
    assert inspect_binary(b"print('hello')\n") is None


def test_truncated_elf_is_malformed_not_an_exception() -> None:
    info = inspect_binary(elf_needing_glibc("2.34")[:200])
    assert info is not None and info.malformed


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_elf_headers_never_raise(data: st.DataObject) -> None:
    original = bytearray(elf_needing_glibc("2.34"))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, min(len(original), 256) - 1))
        original[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(4, len(original)))
    info = inspect_binary(bytes(original[:cut]))
    assert info is None or info.format in ("elf", "pe", "macho", "macho-fat")


@given(st.binary(min_size=0, max_size=512), st.sampled_from(
    [b"\x7fELF", b"MZ", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe"]))
def test_garbage_after_any_magic_never_raises(tail: bytes, magic: bytes) -> None:
    inspect_binary(magic + tail)
