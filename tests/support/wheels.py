"""Wheels made inside the test session: pure ones, and ones holding real compiled extensions.

A wheel is a zip with ``METADATA``, ``WHEEL`` and ``RECORD`` (the binary distribution format
spec); writing one takes a page, so tests never need a checked-in ``.whl``. Extension modules are
compiled with gcc against the headers of the pyenv interpreters, so a bundle built from them can
really be imported by CPython 3.13 — the closest thing to the service's runtime we have.
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Collection, Sequence
from pathlib import Path

from packaging.version import InvalidVersion, Version

from .binaries import elf, macho, pe_dll, run_gcc

ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
GENERATOR = "fbundle-tests (tests/support/wheels.py)"
DEFAULT_LINUX = "manylinux_2_17_x86_64.manylinux2014_x86_64"
PYENV_VERSIONS = Path("/root/.pyenv/versions")
#: The pyenv interpreter whose headers compile an extension for a given ``X.Y``.
HEADERS_FOR = {"3.11": "3.11.7", "3.12": "3.12.1", "3.13": "3.13.0", "3.14": "3.13.0"}

_EXTENSION_SOURCE = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *answer(PyObject *self, PyObject *unused) {
    (void)self; (void)unused;
    return PyLong_FromLong(42);
}

static PyMethodDef methods[] = {
    {"answer", answer, METH_NOARGS, "Return 42, proving the compiled code ran."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef definition = {
    PyModuleDef_HEAD_INIT, "%(name)s", "Built by tests/support/wheels.py.", -1, methods,
};

PyMODINIT_FUNC PyInit_%(name)s(void) { return PyModule_Create(&definition); }
"""


def normalize_name(name: str) -> str:
    """The filename form of a project name: runs of ``-_.`` become ``_``, lowercased."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _filename_version(version: str) -> str:
    try:
        return str(Version(version)).replace("-", "_")
    except InvalidVersion:
        return version.replace("-", "_")


def record_hash(data: bytes) -> str:
    """The RECORD form of a digest: ``sha256=`` + urlsafe base64 without padding."""
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def expand_tag(tag: str) -> list[str]:
    """Every ``interpreter-abi-platform`` triple of a compressed tag set, in written order.

    ``cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64`` gives two tags; the order
    follows the filename so ``WHEEL`` is the same bytes every time.
    """
    parts = tag.split("-")
    if len(parts) != 3:
        raise ValueError(f"not a wheel tag (interpreter-abi-platform): {tag!r}")
    interpreters, abis, platforms = (part.split(".") for part in parts)
    return [f"{i}-{a}-{p}" for i in interpreters for a in abis for p in platforms]


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    tag: str = "py3-none-any",
    files: dict[str, bytes] | None = None,
    requires: Sequence[str] = (),
    data: dict[str, bytes] | None = None,
    entry_points: str | None = None,
    executable: Collection[str] = (),
    requires_python: str | None = None,
    bad_record: bool = False,
) -> Path:
    """Write ``{name}-{version}-{tag}.whl`` into ``directory`` and return its path.

    - The filename and ``.dist-info`` folder use the normalized name (``-``→``_``, lowercase).
    - ``files`` maps archive paths to bytes; ``None`` means one package
      ``{import_name}/__init__.py`` holding ``VALUE = '<name> <version>'``.
    - ``data`` maps ``<scheme>/<path>`` (``purelib/x.py``, ``scripts/tool``,
      ``data/share/x.txt``, ``headers/x.h``) to bytes under ``{dist}.data/``.
    - ``requires`` become ``Requires-Dist`` lines verbatim (markers included);
      ``requires_python`` becomes ``Requires-Python``; ``entry_points`` is the text of
      ``entry_points.txt``.
    - ``executable`` names members (full archive paths, or ``data`` keys) stored with mode 0o755;
      everything else is 0o644.
    - ``RECORD`` lists every member with its sha256 and size, itself with empty fields; with
      ``bad_record`` the first file's hash is wrong, so RECORD validation must fail.
    - Members are DEFLATEd with a fixed 1980-01-01 timestamp: same arguments, same bytes.
    """
    normalized = normalize_name(name)
    file_version = _filename_version(version)
    dist = f"{normalized}-{file_version}"
    dist_info = f"{dist}.dist-info"
    if files is None:
        files = {f"{normalized}/__init__.py": f"VALUE = '{name} {version}'\n".encode()}
    members: dict[str, bytes] = dict(files)
    executable_members = set(executable)
    for key, payload in (data or {}).items():
        member = f"{dist}.data/{key}"
        members[member] = payload
        if key in executable_members:
            executable_members.add(member)

    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python is not None:
        metadata.append(f"Requires-Python: {requires_python}")
    metadata.extend(f"Requires-Dist: {requirement}" for requirement in requires)
    members[f"{dist_info}/METADATA"] = ("\n".join(metadata) + "\n\n").encode()

    purelib = tag.endswith("none-any")
    wheel = [
        "Wheel-Version: 1.0",
        f"Generator: {GENERATOR}",
        f"Root-Is-Purelib: {'true' if purelib else 'false'}",
    ]
    wheel.extend(f"Tag: {expanded}" for expanded in expand_tag(tag))
    members[f"{dist_info}/WHEEL"] = ("\n".join(wheel) + "\n").encode()
    if entry_points is not None:
        members[f"{dist_info}/entry_points.txt"] = entry_points.encode()

    record_path = f"{dist_info}/RECORD"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for index, (member, payload) in enumerate(members.items()):
        digest = record_hash(
            b"not the bytes of " + payload if bad_record and index == 0 else payload
        )
        writer.writerow([member, digest, len(payload)])
    writer.writerow([record_path, "", ""])
    members[record_path] = buffer.getvalue().encode()

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{dist}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, payload in members.items():
            info = zipfile.ZipInfo(member, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if member in executable_members else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.create_system = 3
            archive.writestr(info, payload)
    return path


def headers_dir(python: str) -> Path:
    """The ``include/pythonX.Y`` folder used to compile for ``python`` (``"3.13"``).

    Known versions map through :data:`HEADERS_FOR` (3.14 is not installed: its bytes serve
    name/ABI tests only, so 3.13 headers stand in); other ``X.Y`` use any installed ``X.Y.*``.
    """
    version = HEADERS_FOR.get(python)
    if version is None:
        candidates = sorted(PYENV_VERSIONS.glob(f"{python}.*"))
        version = candidates[-1].name if candidates else HEADERS_FOR["3.13"]
    major_minor = ".".join(version.split(".")[:2])
    return PYENV_VERSIONS / version / "include" / f"python{major_minor}"


@functools.cache
def _build_dir() -> Path:
    # One folder per session; TemporaryDirectory's finalizer removes it at interpreter exit.
    holder = tempfile.TemporaryDirectory(prefix="fbundle-ext-")
    _KEEP.append(holder)
    return Path(holder.name)


_KEEP: list[tempfile.TemporaryDirectory[str]] = []


@functools.cache
def compile_extension(module: str, python: str = "3.13", *, abi3: bool = False) -> bytes:
    """The bytes of a real x86_64 CPython extension ``.so`` exposing ``PyInit_<module>``.

    ``module`` may be dotted (``pkg._native``); its last part names the init function. The
    module has one function, ``answer()``, returning 42. Compiled with ``gcc -shared -fPIC``
    against :func:`headers_dir` (``python``); with ``abi3`` it is built for the limited API of
    that Python (``Py_LIMITED_API`` = ``0x03XY0000``). Cached per arguments for the session.
    """
    leaf = module.rsplit(".", 1)[-1]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", leaf):
        raise ValueError(f"not a C identifier: {leaf!r}")
    include = headers_dir(python)
    if not (include / "Python.h").is_file():
        raise FileNotFoundError(f"no Python.h in {include}; is pyenv {python} installed?")
    gcc = shutil.which("gcc")
    if gcc is None:
        raise FileNotFoundError("gcc is not on PATH; it compiles the test extension modules")
    major, minor = (int(part) for part in python.split(".")[:2])
    stem = f"{leaf}-{python}-{'abi3' if abi3 else 'full'}"
    source = _build_dir() / f"{stem}.c"
    output = _build_dir() / f"{stem}.so"
    source.write_text(_EXTENSION_SOURCE % {"name": leaf})
    command = [gcc, "-shared", "-fPIC", "-O1", "-g0", "-I", str(include)]
    command += ["-Wl,--build-id=none", "-o", str(output), str(source)]
    if abi3:
        command.insert(1, f"-DPy_LIMITED_API=0x{major:02X}{minor:02X}0000")
    run_gcc(command, f"the extension module {module} for Python {python}")
    return output.read_bytes()


def _extension_filename(interpreter: str, abi: str, platform: str) -> str:
    """The suffix CPython's import system looks for, for the wheel's first tag."""
    if platform.startswith("win"):
        return "_native.pyd" if abi == "abi3" else f"_native.{interpreter}-{platform}.pyd"
    digits = interpreter.removeprefix("cp")
    if abi == "abi3":
        return "_native.abi3.so"
    threaded = "t" if abi.endswith("t") else ""
    if platform.startswith("macosx"):
        return f"_native.cpython-{digits}{threaded}-darwin.so"
    arch = "aarch64" if "aarch64" in platform else "x86_64"
    return f"_native.cpython-{digits}{threaded}-{arch}-linux-gnu.so"


def extension_wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    python: str = "3.13",
    tag: str | None = None,
    abi3: bool = False,
) -> Path:
    """A wheel whose package holds a compiled ``_native`` module and re-exports ``answer``.

    Default tag: ``cp3XY-cp3XY-manylinux_2_17_x86_64.manylinux2014_x86_64`` for ``python``, or
    ``cp3XY-abi3-…`` with ``abi3``. The module's filename follows the tag's ABI
    (``.cpython-313-x86_64-linux-gnu.so``, ``.cpython-313t-…``, ``.abi3.so``). For x86_64
    Linux platforms it is a real gcc-compiled extension; for Windows (``win_*``) it is a PE
    DLL, for macOS a Mach-O and for Linux aarch64 an aarch64 ELF header — foreign binaries
    that only their bytes can identify.
    """
    digits = python.replace(".", "")[:3]
    if tag is None:
        tag = f"cp{digits}-{'abi3' if abi3 else f'cp{digits}'}-{DEFAULT_LINUX}"
    interpreter, abi, platform = expand_tag(tag)[0].split("-")
    import_name = normalize_name(name)
    filename = _extension_filename(interpreter, abi, platform)
    if platform.startswith("win"):
        binary = pe_dll(machine=0xAA64 if "arm64" in platform else 0x8664)
    elif platform.startswith("macosx"):
        binary = macho("x86_64" if platform.endswith("x86_64") else "arm64")
    elif "aarch64" in platform:
        binary = elf(machine=183)
    else:
        binary = compile_extension("_native", python, abi3=abi == "abi3")
    files = {
        f"{import_name}/__init__.py": b"from ._native import answer\n\n__all__ = ['answer']\n",
        f"{import_name}/{filename}": binary,
    }
    return make_wheel(directory, name, version, tag=tag, files=files)


#: The standard corpus's wheels, by a short key: what each one is there to exercise.
CORPUS_DESCRIPTION: dict[str, str] = {
    "alpha": "pure alpha 1.0: beta>=1; gamma only if python<3.12; delta only if python>=3.13",
    "beta-1": "pure beta 1.0",
    "beta-2": "pure beta 2.0 (what beta>=1 resolves to)",
    "gamma": "pure gamma 1.0, reached only through a marker false for 3.13 targets",
    "delta": "pure delta 1.0, reached only through a marker true for 3.13 targets",
    "native": "cp313-cp313 manylinux2014 x86_64 wheel with a real gcc-compiled extension",
    "limited": "cp39-abi3 manylinux2014 x86_64 wheel with a real limited-API extension",
    "oldabi": "cp311-cp311 manylinux2014 only: no wheel for 3.13",
    "modern-2": "modern 2.0: manylinux_2_28 only (above the glibc 2.17 floor)",
    "modern-1": "modern 1.0: manylinux2014 (what the floor falls back to)",
    "winonly": "cp313 win_amd64 only, its module a PE DLL",
    "maconly": "cp313 macosx_11_0_arm64 only, its module a Mach-O",
    "freethreaded": "cp313t (free-threaded) manylinux2014 only",
    "withdata": "pure, with .data/purelib, .data/scripts, .data/data and a console script",
}


def standard_corpus(directory: Path) -> dict[str, Path]:
    """Write the standard corpus (see :data:`CORPUS_DESCRIPTION`) into ``directory``.

    Returns key -> wheel path. Every compiled module comes from :func:`compile_extension`,
    so the corpus costs three gcc runs (3.13, 3.11, abi3) the first time in a session.
    """
    linux = DEFAULT_LINUX
    withdata_init = b"def main() -> None:\n    print('withdata main')\n"
    return {
        "alpha": make_wheel(
            directory,
            "alpha",
            "1.0",
            requires=[
                "beta>=1",
                'gamma; python_version < "3.12"',
                'delta; python_version >= "3.13"',
            ],
            requires_python=">=3.9",
        ),
        "beta-1": make_wheel(directory, "beta", "1.0"),
        "beta-2": make_wheel(directory, "beta", "2.0"),
        "gamma": make_wheel(directory, "gamma", "1.0"),
        "delta": make_wheel(directory, "delta", "1.0"),
        "native": extension_wheel(directory, "native", "1.0"),
        "limited": extension_wheel(directory, "limited", "1.0", python="3.9", abi3=True),
        "oldabi": extension_wheel(directory, "oldabi", "1.0", python="3.11"),
        "modern-2": extension_wheel(
            directory, "modern", "2.0", tag="cp313-cp313-manylinux_2_28_x86_64"
        ),
        "modern-1": extension_wheel(directory, "modern", "1.0", tag=f"cp313-cp313-{linux}"),
        "winonly": extension_wheel(directory, "winonly", "1.0", tag="cp313-cp313-win_amd64"),
        "maconly": extension_wheel(
            directory, "maconly", "1.0", tag="cp313-cp313-macosx_11_0_arm64"
        ),
        "freethreaded": extension_wheel(
            directory, "freethreaded", "1.0", tag=f"cp313-cp313t-{linux}"
        ),
        "withdata": make_wheel(
            directory,
            "withdata",
            "1.0",
            files={"withdata/__init__.py": withdata_init},
            data={
                "purelib/withdata_extra.py": b"EXTRA = True\n",
                "scripts/withdata-tool": b"#!python\nprint('withdata tool')\n",
                "data/share/withdata/README.txt": b"installed under sys.prefix/share\n",
            },
            entry_points="[console_scripts]\nwithdata = withdata:main\n",
            executable=["scripts/withdata-tool"],
        ),
    }
