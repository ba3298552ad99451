"""``--slim`` on the real numpy and pandas from the package index: every module that imports in
the plain bundle imports in the slimmed one, under the real CPython 3.13, and the stack
computes. (numpy 2.2's ``numpy.testing`` and ``numpy.matlib`` import a module from
``numpy/_core/tests/``: a slim that drops test folders whole breaks them.)"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bundler.build import build_project
from bundler.options import BuildOptions
from tests.support.projects import assert_validates_clean, make_project

# Every module of the packages named, imported one by one in one process (their own test
# suites, pytest's conftests and ``__main__`` scripts aside); the result as JSON in argv[2].
WALK = """
import importlib, json, pkgutil, sys, warnings
root, out = sys.argv[1], sys.argv[2]
sys.path[:0] = [root, root + "/packages"]
warnings.simplefilter("ignore")
ok, failed = [], {}
for top in sys.argv[3:]:
    package = importlib.import_module(top)
    found = pkgutil.walk_packages(package.__path__, top + ".", onerror=lambda name: None)
    for name in [top, *(m.name for m in found)]:
        parts = name.split(".")
        if parts[-1] == "__main__" or {"tests", "test", "conftest"} & set(parts[1:]):
            continue
        try:
            importlib.import_module(name)
            ok.append(name)
        except BaseException as error:
            failed[name] = f"{type(error).__name__}: {error}"[:300]
with open(out, "w") as stream:
    json.dump({"ok": ok, "failed": failed}, stream)
"""
COMPUTE = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/packages"]
import importlib.metadata
import numpy as np, numpy.testing, pandas as pd, pandas.testing
frame = pd.DataFrame({"x": np.arange(1000), "y": np.linspace(0.0, 1.0, 1000)})
numpy.testing.assert_allclose(frame["y"].mean(), 0.5)
pandas.testing.assert_series_equal(frame.groupby(frame["x"] % 2)["x"].sum(),
                                   pd.Series([249500, 250000], name="x"), check_names=False)
print(importlib.metadata.version("numpy"), importlib.metadata.version("pandas"))
"""


def _unpack(zip_path: Path, folder: Path) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    return folder


def _walk(python: Path, root: Path, out: Path) -> dict[str, Any]:
    done = subprocess.run([str(python), "-I", "-c", WALK, str(root), str(out), "numpy",
                           "pandas"], capture_output=True, text=True, cwd=root, check=False,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


@pytest.mark.network
def test_slimmed_numpy_and_pandas_import_every_module_the_plain_bundle_does_and_compute(
        tmp_path: Path, python313: Path) -> None:
    project = make_project(tmp_path / "agent", "numpy==2.2.6\npandas==2.3.2\n")
    plain = build_project(project, BuildOptions(output=tmp_path / "plain.zip"))
    slim = build_project(project, BuildOptions(output=tmp_path / "slim.zip", slim=True))
    assert slim.shaped is not None
    saved = slim.shaped.as_json()["slim_saved"]
    # numpy's and pandas' test suites are most of it: MBs, not the benchmark agent's 0.1 MB
    assert saved["unpacked_bytes"] > 15_000_000 and saved["zip_bytes"] > 3_000_000
    assert plain.size - slim.size > 3_000_000
    assert [k["name"] for k in saved["kept_for_imports"]] == [
        "packages/numpy/_core/tests/_natype.py"]
    with zipfile.ZipFile(plain.zip_path) as a, zipfile.ZipFile(slim.zip_path) as b:
        plain_names, slim_names = set(a.namelist()), set(b.namelist())
        dist_info = {n for n in plain_names if ".dist-info/" in n and not n.endswith("RECORD")}
        assert dist_info <= slim_names
        assert all(a.read(n) == b.read(n) for n in dist_info)  # never touched
    assert slim_names < plain_names
    assert_validates_clean(slim.zip_path)  # RECORDs rewritten to what ships

    plain_root = _unpack(plain.zip_path, tmp_path / "plain")
    slim_root = _unpack(slim.zip_path, tmp_path / "slim")
    before = _walk(python313, plain_root, tmp_path / "plain.json")
    after = _walk(python313, slim_root, tmp_path / "slim.json")
    assert len(before["ok"]) > 300
    assert after["ok"] == before["ok"], {k: v for k, v in after["failed"].items()
                                         if k not in before["failed"]}
    done = subprocess.run([str(python313), "-I", "-c", COMPUTE, str(slim_root)],
                          capture_output=True, text=True, cwd=slim_root, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["2.2.6", "2.3.2"]
