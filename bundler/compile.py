"""``build --compile``: bytecode made by the *target* interpreter, byte-identical every time.

The service imports from a zip unpacked with fixed timestamps (1980, or ``SOURCE_DATE_EPOCH``),
so timestamp-based ``.pyc`` files would be stale on arrival; these are PEP 552 hash-based and
*unchecked* (``py_compile``'s ``UNCHECKED_HASH``): the interpreter uses them without reading the
source. Only the target's own CPython can make them (the magic number and the code objects
belong to one minor version), so it is found and run — never the interpreter running fbundle.

Determinism: the same source compiled by the same interpreter gives the same code object,
and what ``marshal`` writes for it depends only on that. The file name stored is the archive
path (never a temp folder; the loader rewrites ``co_filename`` on import anyway). Frozenset
constants came out the same under every hash seed tried on 3.13 and 3.14 (the worker pins
``PYTHONHASHSEED=0`` anyway, as set order follows string hashes). The back-references marshal
writes for shared objects came out the same in every process compared: 1,500 stdlib modules
compiled in two processes, and in a different batch, gave identical bytes. The suite builds
twice in separate processes, with separate caches, and compares the zips.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bundler.cache import cache_root
from bundler.errors import BuildError, UsageError
from bundler.model import BytesData, Entry
from bundler.targets import PythonTarget, Target

log = logging.getLogger(__name__)

_PROBE = ("import importlib.util, json, platform, sys, sysconfig; print(json.dumps({"
          "'implementation': sys.implementation.name, 'version': list(sys.version_info[:2]), "
          "'full': platform.python_version(), 'machine': platform.machine(), "
          "'tag': sys.implementation.cache_tag, 'magic': importlib.util.MAGIC_NUMBER.hex(), "
          "'free_threaded': bool(sysconfig.get_config_var('Py_GIL_DISABLED'))}))")

# Runs inside the target interpreter. Requests on stdin, answers on stdout, each a 4-byte
# big-endian length then bytes: request = name, source; answer = status byte + pyc or error.
_WORKER = r"""
import importlib._bootstrap_external as ext, importlib.util, struct, sys
read, out = sys.stdin.buffer.read, sys.stdout.buffer
def take():
    (n,) = struct.unpack(">I", read(4))
    return read(n)
while True:
    name = take()
    if not name:
        break
    source = take()
    try:
        code = compile(source, name.decode("utf-8"), "exec", dont_inherit=True, optimize=0)
        data = b"\x00" + ext._code_to_hash_pyc(code, importlib.util.source_hash(source), False)
    except Exception as error:
        data = b"\x01" + f"{type(error).__name__}: {error}".encode("utf-8", "replace")
    out.write(struct.pack(">I", len(data)) + data)
    out.flush()
"""


@dataclass(frozen=True)
class Compiler:
    """A target interpreter that answered for itself."""

    path: Path
    version: tuple[int, int]
    full: str  # 3.13.0
    tag: str  # cpython-313: the __pycache__ name tag
    magic: str  # hex of importlib.util.MAGIC_NUMBER
    found_by: str

    @property
    def fingerprint(self) -> str:
        """What decides the bytes: the interpreter's exact version and magic number."""
        return f"cpython-{self.full}-{self.magic}"


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTHON") and k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    env["PYTHONHASHSEED"] = "0"  # frozenset constants are marshalled in hash order
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def probe(path: str | Path) -> dict[str, object] | str:
    """Run ``path`` and ask what it is; a string says why it could not answer."""
    try:
        done = subprocess.run([str(path), "-S", "-c", _PROBE], capture_output=True, text=True,
                              timeout=60, check=False, env=_clean_env())
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"cannot be started ({error})"
    if done.returncode != 0:
        return f"did not start ({(done.stderr.strip().splitlines() or ['?'])[-1]})"
    try:
        data = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return "is not a Python interpreter"
    return data if isinstance(data, dict) else "is not a Python interpreter"


def find_compiler(target: Target, explicit: Path | None = None) -> Compiler:
    """The target's CPython, found as ``fbundle run`` finds it (``--python``, else
    ``python3.X`` on PATH, else ``uv python find``; each run to learn what it is), then asked
    for its bytecode tag and magic number; an error that says how to get one when none fits."""
    from bundler.interpreters import find_interpreter

    if not isinstance(target, PythonTarget):
        raise UsageError(f"--compile is for Python runtimes; {target.runtime} has no bytecode",
                         "drop --compile")
    version = target.python_version
    how = (f"install it (`uv python install {version}`, pyenv, or your OS's python{version}) "
           f"and put python{version} on PATH, or pass --python PATH")
    try:
        found = find_interpreter(target, explicit)
    except UsageError as error:
        raise UsageError(f"--compile needs CPython {version}, the {target.runtime} "
                         f"interpreter, to make its bytecode: {error.message}", how) from None
    data = probe(found.path)
    if isinstance(data, str) or "tag" not in data or "magic" not in data:
        raise UsageError(f"--compile: {found.path} {data if isinstance(data, str) else ''} "
                         "(it answered fbundle run's probe but not the bytecode one)", how)
    return Compiler(found.path, target.python or (0, 0), str(data["full"]), str(data["tag"]),
                    str(data["magic"]), found.found_by)


@dataclass(frozen=True)
class Compiled:
    entries: list[Entry]  # the .pyc entries, named __pycache__/<stem>.<tag>.pyc
    failed: list[tuple[str, str]]  # (source, why) for files the target cannot compile
    from_cache: int


def pyc_name(source: str, tag: str) -> str:
    """``a/b/__pycache__/c.cpython-313.pyc`` for ``a/b/c.py`` (importlib's cache_from_source,
    optimization level 0, as the service runs ``python main.py``)."""
    folder, _, base = source.rpartition("/")
    stem = base[: -len(".py")]
    return f"{folder + '/' if folder else ''}__pycache__/{stem}.{tag}.pyc"


def _cache_key(compiler: Compiler, name: str, digest: str) -> str:
    return hashlib.sha256(f"{compiler.fingerprint}\0{name}\0{digest}".encode()).hexdigest()


def compile_sources(sources: Sequence[Entry], compiler: Compiler, *,
                    origin_of: dict[str, str] | None = None) -> Compiled:
    """Bytecode for each ``.py`` entry of ``sources``, from the cache (``<cache>/pyc``, keyed by
    the interpreter's version and magic, the name and the source's sha256) or compiled by
    ``compiler`` in one worker process, in name order."""
    store = cache_root() / "pyc"
    results: dict[str, bytes] = {}
    pending: list[tuple[Entry, Path]] = []
    hits = 0
    for entry in sorted(sources, key=lambda e: e.name):
        key = _cache_key(compiler, entry.name, entry.digest())
        cached = store / key[:2] / key
        if cached.is_file():
            results[entry.name] = cached.read_bytes()
            hits += 1
        else:
            pending.append((entry, cached))
    failed: list[tuple[str, str]] = []
    if pending:
        for (entry, cached), (ok, data) in zip(pending, _run_worker(compiler, pending),
                                               strict=True):
            if not ok:
                failed.append((entry.name, data.decode("utf-8", "replace")))
                continue
            results[entry.name] = data
            _store(cached, data)
    out = []
    for entry in sources:
        if entry.name not in results:
            continue
        data = results[entry.name]
        origin = (origin_of or {}).get(entry.name, entry.origin)
        out.append(Entry(pyc_name(entry.name, compiler.tag), len(data), BytesData(data),
                         origin=origin, sha256=hashlib.sha256(data).hexdigest()))
    if failed:
        log.info("--compile: %d files do not compile for CPython %s (kept as source): %s",
                 len(failed), compiler.full, ", ".join(n for n, _ in failed[:5]))
    return Compiled(out, failed, hits)


def _run_worker(compiler: Compiler, pending: Iterable[tuple[Entry, Path]]) \
        -> list[tuple[bool, bytes]]:
    request = bytearray()
    for entry, _ in pending:
        name = entry.name.encode("utf-8")
        source = entry.read()
        request += struct.pack(">I", len(name)) + name + struct.pack(">I", len(source)) + source
    request += struct.pack(">I", 0)
    try:
        done = subprocess.run([str(compiler.path), "-S", "-s", "-B", "-c", _WORKER],
                              input=bytes(request), capture_output=True, check=False,
                              env=_clean_env(), timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BuildError(f"--compile: {compiler.path} failed ({error})",
                         "check the interpreter, or build without --compile") from None
    if done.returncode != 0:
        last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["?"])[-1]
        raise BuildError(f"--compile: CPython {compiler.full} stopped ({last})",
                         "build without --compile, or report it")
    answers, at, data = [], 0, done.stdout
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        body = data[at + 4: at + 4 + length]
        answers.append((body[:1] == b"\x00", body[1:]))
        at += 4 + length
    return answers


def _store(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def describe(compiler: Compiler) -> str:
    return f"CPython {compiler.full} ({compiler.path}, {compiler.found_by})"
