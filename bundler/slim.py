"""``--slim``: what no import needs, left out of the laid-out wheels.

Each rule is a pure function of the archive paths (no rule looks inside a dist-info: entry
points and ``importlib.metadata`` read it, and slimming tools that drop it break packages):

- test folders inside a package (``numpy/_core/tests/``, ``pandas/tests/``, ``pkg/x/test/``;
  never ``testing/``, ``test_utils.py`` or a top-level package);
- pytest's ``conftest.py`` inside a package (pytest loads it by path; nothing imports it);
- type stubs, ``x.pyi`` beside the module they describe (``x.py``, ``x/``, an ``x.*.so``); a
  stub with no module beside it may be data (mypy's and jedi's typeshed read theirs) and stays;
- C, C++ and Cython sources and headers in a folder that holds a built binary (``*.so``,
  ``*.so.N``: what it was built from), or in a ``src/`` tree right under one (pyarrow's
  ``src/arrow/python/*.cc`` are the sources of ``libarrow_python.so``). Header trees in
  ``include/`` stay: they are what runtime compilers build against (torch's inductor, triton,
  cupy, cffi), and fbundle cannot tell from the bytes which package compiles at run time.

The rules are by path, so one guard reads the code that stays: a module that a kept module
imports is never dropped (numpy 2.2's ``numpy.testing`` imports ``numpy._core.tests._natype``;
a slim that drops it breaks ``import numpy.testing``). Imports are found with one regular
expression per file (``ast`` over every kept source took a second for pandas and pyarrow),
which errs on the side of keeping: a line inside a string that reads like an import keeps its
module too. Only imports written as statements are seen; ``importlib.import_module`` of a
computed name is not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bundler.records import PACKAGES

TEST_FOLDERS = ("tests", "test")
NATIVE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".hxx", ".pyx", ".pxd",
                   ".pxi")
REASON_TESTS = "slim: a test folder inside a package"
REASON_CONFTEST = "slim: a pytest conftest.py"
REASON_STUB = "slim: a type stub beside its module"
REASON_NATIVE = "slim: a source or header of a built binary"

_BINARY = re.compile(r"\.so(\.\d+)*$")
_EXTENSION = re.compile(r"^([A-Za-z_]\w*)\.(?:[\w-]+\.)?so$")  # x.so, x.cpython-313-...so
_IMPORT = re.compile(
    rb"^[ \t]*(?:from[ \t]+(?P<base>\.*[\w.]*)[ \t]+import[ \t]+(?P<names>\([^)]*\)|[^\n;#]*)"
    rb"|import[ \t]+(?P<modules>[^\n;#]*))", re.MULTILINE)
_DOTTED = re.compile(r"^[A-Za-z_][\w.]*$")
_MENTION = re.compile(rb"\b(?:tests?|conftest)\b")


@dataclass
class Slimming:
    """What ``--slim`` leaves out (archive path -> reason), and what it kept because a kept
    module imports it (archive path, the importer's archive path)."""

    dropped: dict[str, str] = field(default_factory=dict)
    kept_for_imports: list[tuple[str, str]] = field(default_factory=list)


def binary_folders(names: Iterable[str]) -> set[str]:
    """Folders that hold a built binary (an extension module or a shared library) directly."""
    return {name.rsplit("/", 1)[0] for name in names
            if "/" in name and _BINARY.search(name.rsplit("/", 1)[1])}


def slim_reason(name: str, binaries: set[str], modules: set[str]) -> str | None:
    """Why ``--slim`` leaves ``name`` (an archive path under ``packages/``, not in a dist-info)
    out, by its path alone, or None. ``binaries`` are the folders that hold a built binary;
    ``modules`` the module paths present (``packages/a/b`` for ``a/b.py``, ``a/b/`` or an
    ``a/b.*.so``)."""
    parts = name.split("/")
    inner = parts[1:-1]  # folders between packages/ and the file
    if any(part in TEST_FOLDERS for part in inner[1:]):
        return REASON_TESTS
    if inner and parts[-1] == "conftest.py":
        return REASON_CONFTEST
    if name.endswith(".pyi"):
        stem = name[:-len(".pyi")]
        module = stem[:-len("/__init__")] if stem.endswith("/__init__") else stem
        return REASON_STUB if module in modules else None
    if name.endswith(NATIVE_SUFFIXES):
        folder = name.rsplit("/", 1)[0]
        if folder in binaries:
            return REASON_NATIVE
        if "src" in inner[1:]:  # packages/<pkg>/.../src/...: the folder above src
            above = "/".join(parts[:inner.index("src", 1) + 1])
            if above in binaries:
                return REASON_NATIVE
    return None


def module_paths(names: Iterable[str]) -> set[str]:
    """The modules and packages ``names`` provide, as archive paths without a suffix: a folder
    is a package when a module is in it or below it (namespace packages too); one that holds
    only stubs is not (a typeshed)."""
    found: set[str] = set()
    for name in names:
        folder, _, base = name.rpartition("/")
        if base.endswith(".py"):
            found.add(f"{folder}/{base[:-3]}")
        elif match := _EXTENSION.match(base):
            found.add(f"{folder}/{match.group(1)}")
        else:
            continue
        while folder.startswith(PACKAGES) and folder not in found:
            found.add(folder)  # a folder with modules in it or below: a package
            folder = folder.rpartition("/")[0]
    return found


def _module_of(path: str) -> str | None:
    """``a.b.c`` for ``packages/a/b/c.py``, ``packages/a/b/__init__.py`` -> ``a.b``, and the
    extension ``packages/a/b/c.cpython-313-x86_64-linux-gnu.so`` -> ``a.b.c``."""
    if not path.startswith(PACKAGES):
        return None
    folder, _, base = path[len(PACKAGES):].rpartition("/")
    stem = None
    if base == "__init__.py":
        return folder.replace("/", ".") or None
    if base.endswith(".py"):
        stem = base[:-3]
    elif match := _EXTENSION.match(base):
        stem = match.group(1)
    if stem is None:
        return None
    return f"{folder.replace('/', '.')}.{stem}" if folder else stem


def imported_modules(source: bytes, path: str) -> set[str]:
    """The dotted names the module at ``path`` imports, and for ``from M import a`` also
    ``M.a`` (``a`` may be a submodule). Relative imports are resolved against its package."""
    module = _module_of(path) or ""
    package = module if path.endswith("/__init__.py") else module.rpartition(".")[0]
    found: set[str] = set()
    for match in _IMPORT.finditer(source):
        if match.group("modules") is not None:
            for item in _split(match.group("modules")):
                found.add(item)
            continue
        base = match.group("base").decode("ascii", "replace")
        level = len(base) - len(base.lstrip("."))
        if level:
            anchor = package.split(".") if package else []
            if level - 1 > len(anchor):
                continue
            anchor = anchor[:len(anchor) - (level - 1)]
            rest = base[level:]
            base = ".".join([*anchor, *([rest] if rest else [])])
        if not base:
            continue
        found.add(base)
        for item in _split(match.group("names")):
            if item != "*":
                found.add(f"{base}.{item}")
    return found


def _split(text: bytes) -> list[str]:
    """``a.b as c, d`` (parentheses, line continuations) -> ``["a.b", "d"]``."""
    cleaned = text.decode("utf-8", "replace").replace("\\\n", " ").strip().strip("()")
    words = (part.split() for part in cleaned.replace("\n", " ").split(","))
    return [w[0] for w in words if w and (w[0] == "*" or _DOTTED.match(w[0]))]


def by_path(names: list[str]) -> dict[str, str]:
    """What the rules alone drop from ``names`` (archive paths; dist-infos never), before the
    import guard: for a caller that has only names, such as ``audit`` recognising a slimmed
    zip."""
    binaries = binary_folders(names)
    modules = module_paths(names)
    return {n: r for n in names if not in_dist_info(n)
            and (r := slim_reason(n, binaries, modules)) is not None}


def in_dist_info(name: str) -> bool:
    """Inside some ``*.dist-info/`` folder (slim never touches one, a wheel's own or one
    vendored inside a package)."""
    return any(part.endswith(".dist-info") for part in name.split("/")[:-1])


def plan_slim(names: list[str], read: Callable[[str], bytes]) -> Slimming:
    """What ``--slim`` drops from ``names`` (laid-out ``packages/`` paths; nothing in a
    dist-info is ever dropped), minus the modules (and the packages above them) that a kept
    module imports, found by reading kept sources with ``read``, to a fixed point."""
    result = Slimming(by_path(names))
    importable: dict[str, str] = {}  # dotted name -> archive path, for what would be dropped
    for name in result.dropped:
        dotted = _module_of(name)
        if dotted is not None and not name.endswith(".pyi"):
            importable.setdefault(dotted, name)
    if not importable:
        return result
    queue = [n for n in names if n.endswith(".py") and n not in result.dropped]
    scanned: set[str] = set()
    while queue:
        path = queue.pop()
        if path in scanned:
            continue
        scanned.add(path)
        source = read(path)
        # A module outside the test folders can reach into one only by naming it; one rescued
        # from inside may import its neighbours relatively, without the word.
        inside = any(part in TEST_FOLDERS for part in path.split("/")[2:-1])
        if not inside and not _MENTION.search(source):
            continue
        for dotted in imported_modules(source, path):
            parts = dotted.split(".")
            for end in range(1, len(parts) + 1):
                target = importable.pop(".".join(parts[:end]), None)
                if target is None:
                    continue
                del result.dropped[target]
                result.kept_for_imports.append((target, path))
                if target.endswith(".py"):
                    queue.append(target)
    result.kept_for_imports.sort()
    return result

