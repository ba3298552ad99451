"""A real CPython 3.14 for the test suite: Debian's ``python3.14`` from ``sid``, in a debootstrap
root, run through that root's own dynamic loader (no chroot needed).

Why this shape: the service runs python_3_14 bundles under CPython 3.14, pyenv has no 3.14 on
these machines, and sid's package is a real, complete build. Its libraries need a newer glibc
than the host's, so the interpreter is started by the root's ``ld-linux-x86-64.so.2`` with the
root's library folders first; ``/proc`` is the host's, so psutil-style readers work unchanged.

``python tests/support/python314.py`` (what ``.ci/run`` calls, before the test extras exist)
and the ``python314`` fixture call :func:`ensure`: idempotent (a root that is there and answers
is left alone), as root only (debootstrap needs it), the Debian mirror read from this machine's
apt sources (never written here), the result cached at :data:`CACHE` so a machine pays for it
once (~25 s, ~280 MB).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: Where the root and the wrapper live; ``FBUNDLE_PY314_CACHE`` moves it.
CACHE = Path(os.environ.get("FBUNDLE_PY314_CACHE", "/var/cache/fbundle-py314"))
SUITE = "sid"
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
PROBE = ("import os, sys; open('/proc/self/stat').read(); os.getloadavg(); "
         "print('%d.%d' % sys.version_info[:2])")


@dataclass(frozen=True)
class Python314:
    """The wrapper script (usable as ``--python``) or why there is none."""

    wrapper: Path | None
    reason: str = ""


def wrapper_path(cache: Path = CACHE) -> Path:
    return cache / "python3.14"


def works(wrapper: Path) -> bool:
    """The wrapper starts CPython 3.14 and it can read the host's /proc."""
    if not os.access(wrapper, os.X_OK):
        return False
    try:
        probe = subprocess.run([str(wrapper), "-I", "-c", PROBE], capture_output=True,
                               text=True, timeout=60, check=False, env={"PATH": os.defpath})
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and probe.stdout.strip() == "3.14"


def debian_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str | None:
    """The first Debian archive URI apt uses here (deb822 ``.sources`` or one-line ``.list``),
    leaving out the security archive (it has no sid)."""
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files += sorted(p for p in source.iterdir() if p.suffix in (".sources", ".list"))
        elif source.is_file():
            files.append(source)
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for uri, suites in _entries(text, deb822=path.suffix == ".sources"):
            if "security" in uri or not uri.startswith(("http://", "https://", "file:")):
                continue
            if any("-" not in suite for suite in suites):  # a release suite, not -updates
                return uri.rstrip("/")
    return None


def _entries(text: str, *, deb822: bool) -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    if deb822:
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[0].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled") != "no":
                found += [(uri, fields.get("suites", "").split())
                          for uri in fields.get("uris", "").split()]
        return found
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            found.append((words[1], [words[2]]))
    return found


def _debootstrap() -> str | None:
    if found := shutil.which("debootstrap") or (
            "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None):
        return found
    if shutil.which("apt-get") is None:
        return None
    for attempt in ([], ["update"]):
        if attempt:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
        subprocess.run(["apt-get", "install", "-y", "-q", "debootstrap"], capture_output=True,
                       check=False, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if Path("/usr/sbin/debootstrap").exists():
            return "/usr/sbin/debootstrap"
    return None


LOADER_SCRIPT = "python3.14-loader"  # inside the root's usr/bin, beside the real binary


def wrapper_texts(root: Path) -> tuple[str, str]:
    """(the script in the root's usr/bin that starts python3.14 through the root's loader, the
    wrapper in the cache that calls it).

    ``--argv0 "$0"`` makes ``sys.executable`` that script, in the root's usr/bin, so CPython
    finds its standard library beside it (even under ``-I``) and a subprocess the agent starts
    with ``sys.executable`` goes through the loader too.
    """
    libs = f"{root}/lib/x86_64-linux-gnu:{root}/usr/lib/x86_64-linux-gnu"
    loader = (f'#!/bin/sh\nexec "{root}/lib64/ld-linux-x86-64.so.2" --argv0 "$0" '
              f'--library-path "{libs}" "{root}/usr/bin/python3.14" "$@"\n')
    return loader, f'#!/bin/sh\nexec "{root}/usr/bin/{LOADER_SCRIPT}" "$@"\n'


def write_wrapper(root: Path, wrapper: Path) -> None:
    """Write both scripts of :func:`wrapper_texts`, each made beside itself and renamed."""
    loader, outer = wrapper_texts(root)
    for path, text in ((root / "usr/bin" / LOADER_SCRIPT, loader), (wrapper, outer)):
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text)
        partial.chmod(0o755)
        partial.replace(path)


def current(root: Path, wrapper: Path) -> bool:
    """Both scripts are there and say what this version writes (an older wrapper is redone)."""
    loader, outer = wrapper_texts(root)
    try:
        return ((root / "usr/bin" / LOADER_SCRIPT).read_text() == loader
                and wrapper.read_text() == outer)
    except OSError:
        return False


def ensure(cache: Path = CACHE, *, log: bool = False) -> Python314:
    """The cached CPython 3.14, made first if it is missing (as root, from the apt mirror)."""
    wrapper = wrapper_path(cache)
    root = cache / "root"
    if current(root, wrapper) and works(wrapper):
        return Python314(wrapper)
    if (root / "usr/bin/python3.14").exists():
        write_wrapper(root, wrapper)  # the root is there; only the wrapper was lost
        if works(wrapper):
            return Python314(wrapper)
    if os.geteuid() != 0:
        return Python314(None, f"no CPython 3.14 at {wrapper}; making it needs root "
                               "(sudo python tests/support/python314.py)")
    mirror = debian_mirror()
    if mirror is None:
        return Python314(None, "no Debian mirror in /etc/apt/sources.list{,.d}")
    debootstrap = _debootstrap()
    if debootstrap is None:
        return Python314(None, "debootstrap is not installed and apt-get could not install it")
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f"root.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    started = time.monotonic()
    made = subprocess.run(
        [debootstrap, "--variant=minbase", "--include=python3.14", SUITE, str(partial), mirror],
        capture_output=True, text=True, check=False)
    if made.returncode != 0 or not (partial / "usr/bin/python3.14").exists():
        shutil.rmtree(partial, ignore_errors=True)
        tail = (made.stderr or made.stdout).strip().splitlines()[-3:]
        return Python314(None, f"debootstrap {SUITE} failed (exit {made.returncode}): "
                               + " | ".join(tail))
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    write_wrapper(root, wrapper)
    if log:
        size = sum(p.lstat().st_size for p in root.rglob("*") if not p.is_symlink())
        print(f"debootstrap {SUITE} + python3.14: {time.monotonic() - started:.0f} s, "
              f"{size / 1e6:.0f} MB in {root}", file=sys.stderr)
    if not works(wrapper):
        return Python314(None, f"{wrapper} was made but does not start CPython 3.14")
    return Python314(wrapper)


def main() -> int:
    found = ensure(log=True)
    if found.wrapper is None:
        print(f"CPython 3.14: {found.reason}", file=sys.stderr)
        return 1
    print(found.wrapper)
    return 0


if __name__ == "__main__":
    sys.exit(main())
