"""Which CPython on this machine is the target's: the one ``fbundle run`` boots the bundle
under and ``build --compile`` makes bytecode with — the target's own version, never a host
interpreter that merely happens to be there.

Order: ``--python PATH``, else ``python3.X`` on PATH, else ``uv python find 3.X``. Each candidate
is *run* to learn what it is (a name says nothing: a ``python3.13`` can be a pyenv shim that
fails, or a link to 3.11). uv could install the version; fbundle says so and never does it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bundler.errors import UsageError
from bundler.targets import PythonTarget

PROBE = (
    "import json, platform, sys, sysconfig; print(json.dumps({"
    "'implementation': sys.implementation.name, 'version': list(sys.version_info[:2]), "
    "'full': platform.python_version(), 'machine': platform.machine(), "
    "'platform': sys.platform, 'executable': sys.executable, "
    "'free_threaded': bool(sysconfig.get_config_var('Py_GIL_DISABLED'))}))"
)
PROBE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Probe:
    """What an interpreter said about itself."""

    implementation: str
    version: tuple[int, int]
    full: str
    machine: str
    platform: str
    executable: str
    free_threaded: bool

    @property
    def label(self) -> str:
        name = "CPython" if self.implementation == "cpython" else self.implementation
        return f"{name} {self.full}{' (free-threaded)' if self.free_threaded else ''}"


@dataclass(frozen=True)
class Interpreter:
    """The interpreter to start (``path``) and how it was found."""

    path: Path
    probe: Probe
    found_by: str


def host_problem(system: str | None = None, machine: str | None = None) -> str | None:
    """Why this host cannot run a Linux x86_64 bundle's binaries, or None."""
    system = system or platform.system()
    machine = machine or platform.machine()
    if system == "Linux" and machine.lower() in ("x86_64", "amd64"):
        return None
    return (f"fbundle run starts the bundle's Linux x86_64 binaries; this host is {system} "
            f"{machine}, which cannot — run it on a Linux x86_64 machine (a VM or container)")


def _clean_env() -> dict[str, str]:
    """The caller's environment without the variables that would redirect an interpreter."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("PYTHON") and k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}


def probe(path: Path | str, env: dict[str, str] | None = None) -> Probe | str:
    """Run ``path`` and ask it what it is; a string says why it could not answer."""
    try:
        done = subprocess.run([str(path), "-I", "-c", PROBE], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT, check=False,
                              env=_clean_env() if env is None else env)
    except OSError as error:
        return f"cannot be started ({error.strerror or error})"
    except subprocess.TimeoutExpired:
        return f"did not answer within {PROBE_TIMEOUT:.0f} s"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[0]
        return f"did not start ({last})"
    try:
        data = json.loads(done.stdout.strip().splitlines()[-1])
        return Probe(str(data["implementation"]), (int(data["version"][0]),
                     int(data["version"][1])), str(data["full"]), str(data["machine"]),
                     str(data["platform"]), str(data["executable"]),
                     bool(data["free_threaded"]))
    except (ValueError, KeyError, IndexError, TypeError):
        return "is not a Python interpreter (its answer made no sense)"


def mismatch(found: Probe, target: PythonTarget) -> str | None:
    """Why ``found`` is not the target's interpreter, or None."""
    want = target.python_version
    if found.implementation != "cpython":
        return f"is {found.label}, not CPython {want}"
    if found.version != target.python:
        return f"is {found.label}; {target.runtime} runs CPython {want}"
    if found.free_threaded:
        return f"is {found.label}; the service's CPython {want} is the standard build"
    if found.platform != "linux" or found.machine.lower() not in ("x86_64", "amd64"):
        return f"runs on {found.platform} {found.machine}; the service is Linux x86_64"
    return None


def _startable(path: Path, found: Probe) -> Path:
    """The real executable when it starts by itself in a clean environment (a pyenv shim needs
    its own variables, which the agent will not have); else the path as given (a wrapper
    script, like the CPython 3.14 the tests make, that must stay in front)."""
    real = Path(found.executable)
    if real != path and real.is_file():
        again = probe(real, env={"PATH": os.defpath})
        if isinstance(again, Probe) and again.version == found.version:
            return real
    return path


def uv_find(version: str) -> Path | None:
    """``uv python find X.Y`` (never a download), or None."""
    try:
        from uv import find_uv_bin

        uv = find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            return None
        uv = found
    env = {**_clean_env(), "UV_PYTHON_DOWNLOADS": "never"}
    try:
        done = subprocess.run([uv, "python", "find", "--no-project", version],
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False,
                              env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.strip().splitlines()
    return Path(lines[-1]) if done.returncode == 0 and lines else None


def find_interpreter(target: PythonTarget, explicit: Path | None = None) -> Interpreter:
    """The target's CPython, or a one-line refusal naming what was found instead."""
    want = target.python_version
    if explicit is not None:
        found = probe(explicit)
        if isinstance(found, str):
            raise UsageError(f"--python {explicit} {found}",
                             f"pass the path of a CPython {want} executable")
        if problem := mismatch(found, target):
            raise UsageError(f"--python {explicit} {problem}",
                             f"pass a CPython {want} (uv python find {want})")
        return Interpreter(_startable(explicit, found), found, "--python")
    tried: list[str] = []
    on_path = shutil.which(f"python{want}")
    if on_path is not None:
        found = probe(on_path)
        if isinstance(found, Probe) and (problem := mismatch(found, target)) is None:
            return Interpreter(_startable(Path(on_path), found), found, f"python{want} on PATH")
        why = found if isinstance(found, str) else problem
        tried.append(f"python{want} on PATH ({on_path}) {why}")
    else:
        tried.append(f"no python{want} on PATH")
    from_uv = uv_find(want)
    if from_uv is not None:
        found = probe(from_uv)
        if isinstance(found, Probe) and (problem := mismatch(found, target)) is None:
            return Interpreter(_startable(from_uv, found), found, f"uv python find {want}")
        tried.append(f"uv python find {want} gave {from_uv}, which "
                     f"{found if isinstance(found, str) else problem}")
    else:
        tried.append(f"uv python find {want} found none")
    raise UsageError(
        f"no CPython {want} for {target.runtime}: " + "; ".join(tried),
        f"pass --python PATH, or install one with `uv python install {want}` "
        "(fbundle does not install interpreters)")
