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
from bundler.checks.base import Finding, finding, rules
from bundler.checks.facts import Facts, owner_folders, tags_fit, wheel_tags
from bundler.provenance import dist_label
from bundler.targets import PythonTarget, Target

RULES = rules(
    ("FB301", "error", "Windows (PE) binary"),
    ("FB302", "error", "macOS (Mach-O) binary, thin or fat"),
    ("FB303", "error", "ELF for a machine other than x86-64"),
    ("FB304", "error", "ELF that is 32-bit or big-endian"),
    ("FB305", "error", "extension module whose ABI tag does not fit the runtime"),
    ("FB306", "error", ".pyd / .dll / .dylib file in a Python bundle"),
    ("FB307", "error", "ELF that needs a glibc newer than the floor"),
    ("FB308", "error", "binary header that cannot be parsed"),
    ("FB309", "warning", "a wheel that fits the target ships a binary for another platform"),
    ("FB310", "warning", "a helper ELF (not an extension module Python imports) needs a "
     "glibc newer than the floor"),
)

_EXTENSION = re.compile(r"^[^.]+\.(?P<tag>[^.]+)\.(?:so|pyd)$")
_FOREIGN_SUFFIXES = (".pyd", ".dll", ".dylib")
_BINARY_SUFFIXES = (*_FOREIGN_SUFFIXES, ".so", ".exe")
_REBUILD_LINUX = ("install the manylinux x86_64 wheel instead: pip install --platform "
                  "manylinux2014_x86_64 --only-binary=:all: (fbundle build does)")


def extension_tag_problem(basename: str, target: Target) -> str | None:
    """Why CPython on the target would not import an extension module named ``basename``."""
    match = _EXTENSION.match(basename)
    if not match or not isinstance(target, PythonTarget):
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


FOREIGN = ("FB301", "FB302", "FB303", "FB304", "FB306")


def check(facts: Facts) -> Iterator[Finding]:
    owner_of = owner_folders(facts)
    target = facts.target
    fitting = {folder for folder in set(owner_of.values()) if isinstance(target, PythonTarget)
               and tags_fit(wheel_tags(facts, folder)[1], target)}
    names = {e.name for e in facts.files}
    found_all = list(_check(facts))
    # Paths FB309 turns into warnings: FB305 about their tag would repeat it as an error.
    helpers: set[str] = set()
    for found in found_all:
        folder = owner_of.get(found.path)
        if found.code in FOREIGN and folder in fitting and isinstance(target, PythonTarget) \
                and not _imported_on_linux(found.path, names, facts):
            helpers.add(found.path)
    for found in found_all:
        folder = owner_of.get(found.path)
        if found.code == "FB305" and found.path in helpers:
            continue  # pydevd_cython.cp39-win_amd64.pyd: FB309 already says it is not loaded
        if folder is None:
            yield found
            continue
        owner = dist_label(folder, facts.texts.get(f"{folder}/METADATA"))
        if found.path in helpers and found.code in FOREIGN:
            # debugpy's universal wheel ships attach helpers for Windows and macOS: a wheel
            # that fits the target and carries them does not load them on Linux.
            yield finding("FB309", found.path, f"shipped by {owner} for other platforms; never "
                          f"loaded on Linux ({found.message.split(';')[0]})",
                          "harmless; to leave it out, add its path to .fbundleignore "
                          f"(e.g. {_pattern(found.path)})")
            continue
        yield replace(found, message=f"{found.message} (from {owner})")


def _pattern(path: str) -> str:
    base = path.rsplit(".", 1)
    return f"/{path.rsplit('/', 1)[0]}/*.{base[1]}" if len(base) == 2 and "/" in path \
        else f"/{path}"


def _imported_on_linux(path: str, names: set[str], facts: Facts) -> bool:
    """Whether ``import M`` on the target would load this file as an extension module where
    the distribution also offers ``M`` for Linux (a module or extension it would shadow), or
    its name claims the target's own ABI tag: then the foreign bytes break the import."""
    target = facts.target
    if not isinstance(target, PythonTarget):
        return False
    folder, _, base = path.rpartition("/")
    specific = f".cpython-{target.python[0]}{target.python[1]}-x86_64-linux-gnu.so"
    # CPython's extension suffixes on Linux, in the order its FileFinder tries them.
    suffixes = [specific, ".abi3.so", ".so"]
    for at, suffix in enumerate(suffixes):
        if not base.endswith(suffix):
            continue
        if suffix == specific:
            return True
        module = base[: -len(suffix)]
        if "." in module:
            return False  # another interpreter's tag (FB305's business), never this one's
        prefix = f"{folder}/{module}" if folder else module
        if any(f"{prefix}/__init__{s}" in names for s in (*suffixes, ".py")):
            return False  # a package of the same name wins over the module
        later = [prefix + s for s in suffixes[at + 1:]] + [prefix + ".py"]
        return any(other in names and _loads_on_linux(other, facts) for other in later)
    return False


def _loads_on_linux(name: str, facts: Facts) -> bool:
    if name.endswith(".py"):
        return True
    scanned = facts.scanned.get(name)
    binary = scanned.binary if scanned else None
    return binary is not None and binary.format == "elf" and binary.machine == "x86_64"


def importable_extension(name: str, names: set[str], target: Target) -> bool:
    """Whether CPython on the target could ``import`` this file as an extension module: its
    name ends in one of the target's extension suffixes (``.cpython-313-x86_64-linux-gnu.so``,
    ``.abi3.so``, ``.so``) after a bare identifier, and it sits on ``sys.path`` (the zip root,
    or ``packages/``) under folders that are identifiers. The tagged suffixes claim to be
    extension modules, so namespace folders (PEP 420: ``google/_upb``) count; a bare ``.so``
    counts only in regular packages (each folder has an ``__init__``), as a helper library
    next to scripts (debugpy's ``pydevd_attach_to_process/attach_linux_amd64.so``, loaded
    into another process, never imported) is far commoner there than a real module."""
    if not isinstance(target, PythonTarget):
        return False
    folder, _, base = name.rpartition("/")
    specific = f".cpython-{target.python[0]}{target.python[1]}-x86_64-linux-gnu.so"
    suffix = next((s for s in (specific, ".abi3.so", ".so") if base.endswith(s)), None)
    if suffix is None or not base[: -len(suffix)].isidentifier():
        return False
    parts = folder.split("/") if folder else []
    for root in ([], ["packages"]):
        if parts[: len(root)] != root:
            continue
        chain = parts[len(root):]
        if not all(p.isidentifier() for p in chain):
            continue
        if suffix != ".so" or all(
                any(n.startswith("/".join(parts[: len(root) + i + 1]) + "/__init__.")
                    for n in names) for i in range(len(chain))):
            return True
    return False


def _entry_binary(facts: Facts) -> str | None:
    """The file the entry point executes when it is not an interpreter (``./server``)."""
    entry = facts.context.entry_point
    return entry[0].removeprefix("./") if entry else None


def _check(facts: Facts) -> Iterator[Finding]:
    target = facts.target
    names = {e.name for e in facts.files}
    entry_binary = _entry_binary(facts)
    for entry in facts.files:
        name = entry.name
        info = facts.scanned.get(name)
        binary = info.binary if info else None
        if binary is not None:
            for found in _binary(name, binary, target):
                if found.code == "FB307" and name != entry_binary \
                        and not importable_extension(name, names, target):
                    found = _helper_glibc(found, binary)
                yield found
            if binary.format == "pe" and binary.malformed and \
                    name.lower().endswith(_BINARY_SUFFIXES):
                # "MZ" also starts some data files; a library's name makes it a broken binary.
                yield finding("FB308", name, f"pe header is malformed: {binary.malformed}",
                              "replace the file with an intact build of it")
        if isinstance(target, PythonTarget):
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


def _helper_glibc(found: Finding, binary: BinaryInfo) -> Finding:
    """FB307 turned into FB310 for an ELF no import loads (claude-agent-sdk's bundled
    ``claude`` executable): the service's glibc is likely newer than the floor, and the file
    fails only when something executes or loads it on an older one."""
    need = binary.max_glibc or (0, 0)
    version = f"{need[0]}.{need[1]}"
    return finding("FB310", found.path, f"{found.message}; it is not an extension module "
                   f"Python imports, so it fails only if executed (or loaded) on a runtime "
                   f"with a glibc older than {version}",
                   f"harmless unless the agent runs it; if it does, pass --glibc {version} "
                   "once the runtime is known to have it (ldd --version there)")


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
                      "Linux x86_64", _REBUILD_LINUX if isinstance(target, PythonTarget) else
                      "find the package that ships it (obj/project.assets.json) and use its "
                      "Linux build, or exclude it from publish (-r linux-x64 drops the others)")
    elif binary.format in ("macho", "macho-fat"):
        kind = "universal (fat) " if binary.format == "macho-fat" else ""
        yield finding("FB302", name, f"{kind}macOS Mach-O binary ({binary.machine}); the "
                      "runtime is Linux x86_64",
                      _REBUILD_LINUX if isinstance(target, PythonTarget) else
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
