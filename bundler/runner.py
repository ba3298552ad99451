"""How fbundle starts the tools it drives (uv, pip, dotnet, az): one injectable ``Runner``.

Every stage that runs a subprocess takes a ``Runner``, so tests observe the real argv, working
folder and environment of a real process (a stand-in executable on PATH) instead of patching a
module. The default, ``run``, captures text output and never raises on a non-zero exit: the
caller turns the exit code and output into a ``FbundleError`` that says what to do.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol


class Runner(Protocol):
    """Runs ``argv`` to completion in ``cwd`` with exactly ``env`` (None: inherit)."""

    def __call__(self, argv: Sequence[str], *, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None,
                 timeout: float | None = None) -> subprocess.CompletedProcess[str]: ...


def run(argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """The default runner: a real subprocess, stdin closed, output captured as text."""
    return subprocess.run(list(argv), cwd=cwd, env=dict(env) if env is not None else None,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          encoding="utf-8", errors="replace", timeout=timeout, check=False)
