"""Helpers for tests that build projects: scaffold a project, check a bundle validates clean and
imports under the real CPython 3.13."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

from bundler.project import example_metadata
from bundler.validate import check_bundle, context_for, load_bundle

MAIN = "import sys\nprint('hello from', sys.version_info[:2])\n"


def make_project(
    root: Path,
    requirements: str | None = "",
    *,
    mode: str = "bundled",
    runtime: str = "python_3_13",
    files: dict[str, str | bytes] | None = None,
) -> Path:
    """A project folder with main.py, metadata.json, requirements.txt (None: no file)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "metadata.json").write_text(json.dumps(example_metadata(runtime, mode)))
    (root / "main.py").write_text(MAIN)
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements)
    for name, content in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def assert_validates_clean(zip_path: Path, runtime: str = "python_3_13",
                           mode: str = "bundled") -> None:
    """Build and validate share one model: what build writes, validate must pass."""
    bundle = load_bundle(zip_path)
    findings = check_bundle(bundle, context_for(bundle, None, runtime=runtime, mode=mode))
    assert findings == [], findings


def import_under(python: Path, zip_path: Path, workdir: Path, code: str) -> str:
    """Unzip like the service does and run ``code`` with only the root and packages/ on the
    path (``-I``: no user site, no environment variables)."""
    root = workdir / "unzipped"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(root)
    script = (
        "import sys\n"
        f"sys.path[:0] = [{str(root)!r}, {str(root / 'packages')!r}]\n"
        "sys.path = [p for p in sys.path if 'site-packages' not in p]\n"
        + code
    )
    result = subprocess.run([str(python), "-I", "-c", script], capture_output=True, text=True,
                            cwd=root, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout
