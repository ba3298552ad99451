"""FB3xx: binaries the service's Linux x86_64 runtime cannot load, recognised by their bytes.

Names are used only where the name itself is the problem: CPython picks an extension module
by its file name (``.cpython-311-x86_64-linux-gnu.so`` is never imported by 3.13), and a
``.pyd``/``.dylib`` only exists for Windows/macOS whatever its content.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from bundler.binaries import BinaryInfo
from bundler.checks.base import Facts, Finding, finding, rules
from bundler.checks.deps import owners
from bundler.targets import Target

RULES = rules(
    ("FB301", "error", "Windows (PE) binary"),
    ("FB302", "error", "macOS (Mach-O) binary, thin or fat"),
    ("FB303", "error", "ELF for a machine other than x86-64"),
    ("FB304", "error", "ELF that is 32-bit or big-endian"),
    ("FB305", "error", "extension module whose ABI tag does not fit the runtime"),
    ("FB306", "error", ".pyd / .dll / .dylib file in a Python bundle"),
    ("FB307", "error", "ELF that needs a glibc newer than the floor"),
    ("FB308", "error", "binary header that cannot be parsed"),
)

_EXTENSION = re.compile(r"^[^.]+\.(?P<tag>[^.]+)\.(?:so|pyd)$")
_FOREIGN_SUFFIXES = (".pyd", ".dll", ".dylib")
_REBUILD_LINUX = ("install the manylinux x86_64 wheel instead: pip install --platform "
                  "manylinux2014_x86_64 --only-binary=:all: (fbundle build does)")


def extension_tag_problem(basename: str, target: Target) -> str | None:
    """Why CPython on the target would not import an extension module named ``basename``."""
    match = _EXTENSION.match(basename)
    if not match or target.python is None:
        return None
    tag = match["tag"]
    if tag == "abi3":
        return None
    if not tag.startswith(("cpython-", "cp3", "pypy", "graalpy")):
        return None
    want = f"cpython-{target.python[0]}{target.python[1]}-x86_64-linux-gnu"
    if tag == want:
        return None
    return (f"the ABI tag {tag} does not fit {target.runtime} (CPython "
            f"{target.python_version} imports only {want} or abi3)")


def check(facts: Facts) -> Iterator[Finding]:
    owner_of = owners(facts)
    for found in _check(facts):
        owner = owner_of.get(found.path)
        yield replace(found, message=f"{found.message} (from {owner})") if owner else found


def _check(facts: Facts) -> Iterator[Finding]:
    target = facts.target
    for entry in facts.files:
        name = entry.name
        info = facts.scanned.get(name)
        binary = info.binary if info else None
        if binary is not None:
            yield from _binary(name, binary, target)
        if target.is_python:
            base = name.rsplit("/", 1)[-1]
            if problem := extension_tag_problem(base, target):
                yield finding("FB305", name, problem, _REBUILD_LINUX)
            flagged_by_bytes = binary is not None and binary.format in (
                "pe", "macho", "macho-fat") and not binary.managed
            managed_dll = binary is not None and binary.managed and base.endswith(".dll")
            if base.lower().endswith(_FOREIGN_SUFFIXES) and not flagged_by_bytes \
                    and not managed_dll:
                yield finding("FB306", name, f"{base.rsplit('.', 1)[-1]} files are Windows/"
                              "macOS libraries; Linux never loads them", _REBUILD_LINUX)


def _binary(name: str, binary: BinaryInfo, target: Target) -> Iterator[Finding]:
    if binary.malformed and binary.format != "pe":
        yield finding("FB308", name, f"{binary.format} header is malformed: "
                      f"{binary.malformed}", "replace the file with an intact build of it")
        return
    if binary.format == "pe":
        if binary.malformed:
            # "MZ" also starts some data files; only a real PE header is worth an error.
            return
        if binary.managed:
            return  # IL runs anywhere .NET does (dotnet bundles, pythonnet)
        yield finding("FB301", name, f"Windows PE binary ({binary.machine}); the runtime is "
                      "Linux x86_64", _REBUILD_LINUX if target.is_python else
                      "find the package that ships it (obj/project.assets.json) and use its "
                      "Linux build, or exclude it from publish (-r linux-x64 drops the others)")
    elif binary.format in ("macho", "macho-fat"):
        kind = "universal (fat) " if binary.format == "macho-fat" else ""
        yield finding("FB302", name, f"{kind}macOS Mach-O binary ({binary.machine}); the "
                      "runtime is Linux x86_64", _REBUILD_LINUX if target.is_python else
                      "publish with -r linux-x64")
    elif binary.format == "elf":
        if binary.bits != 64 or not binary.little_endian:
            order = "little" if binary.little_endian else "big"
            yield finding("FB304", name, f"{binary.bits}-bit {order}-endian ELF "
                          f"({binary.machine}); the runtime loads only 64-bit little-endian "
                          "x86-64", _REBUILD_LINUX)
        elif binary.machine != "x86_64":
            yield finding("FB303", name, f"ELF for {binary.machine}; the runtime is x86-64",
                          _REBUILD_LINUX)
        elif (need := binary.max_glibc) is not None and need > target.glibc:
            version = f"{need[0]}.{need[1]}"
            yield finding("FB307", name, f"needs GLIBC_{version}, above the "
                          f"{target.glibc_text} floor", f"use a wheel tagged manylinux_2_"
                          f"{target.glibc[1]} or older, or pass --glibc {version} if the "
                          "runtime is known to have it")
