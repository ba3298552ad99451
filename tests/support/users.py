"""Run this interpreter as another user, with a copy of ``bundler`` that user can read.

A checkout may sit in a folder only root can enter (CI clones into a private temporary folder),
so the editable install does not reach another user; a copy in a world-readable folder, first on
``PYTHONPATH``, does. The interpreter and its site-packages must still be readable by them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import bundler


@contextmanager
def as_user(uid: int,
            env: dict[str, str] | None = None) -> Iterator[tuple[list[str], dict[str, str]]]:
    """``(argv prefix, environment)`` running ``sys.executable`` as ``uid`` (root only)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv (util-linux) to run as another user")
    with tempfile.TemporaryDirectory() as tmp:  # pytest's own tmp_path is private to root
        root = Path(tmp)
        root.chmod(0o755)
        shutil.copytree(Path(bundler.__file__).parent, root / "lib" / "bundler",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for folder, _, _ in os.walk(root / "lib"):
            Path(folder).chmod(0o755)
        child_env = dict(os.environ if env is None else env)
        child_env["PYTHONPATH"] = str(root / "lib")
        argv = [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", sys.executable]
        probe = subprocess.run([*argv, "-c", "import bundler, click, httpx"], cwd="/",
                               env=child_env, capture_output=True, text=True, check=False)
        if probe.returncode:
            pytest.skip(f"this interpreter is not usable by another user: {probe.stderr[-200:]}")
        yield argv, child_env
