"""How fbundle starts the tools it drives (uv, pip, dotnet, az): one injectable ``Runner``.

Every stage that runs a subprocess takes a ``Runner``, so tests observe the real argv, working
folder and environment of a real process (a stand-in executable on PATH) instead of patching a
module. The default, ``run``, captures text output and never raises on a non-zero exit: the
caller turns the exit code and output into a ``FbundleError`` that says what to do.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from bundler.redact import redact_urls

log = logging.getLogger(__name__)


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


def run_logged(argv: Sequence[str], *, cwd: Path | None = None,
               env: Mapping[str, str] | None = None,
               timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """``run``, with the command line and the whole output logged at DEBUG (``fbundle -v``),
    every URL's credentials redacted: for resolvers and builders, whose output says why.
    (Not for ``az``: its output is the token.)"""
    log.debug("running %s", redact_urls(" ".join(argv)))
    result = run(argv, cwd=cwd, env=env, timeout=timeout)
    for stream in (result.stdout, result.stderr):
        if stream.strip():
            log.debug("%s", redact_urls(stream.rstrip()))
    return result
