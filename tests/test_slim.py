"""``--slim``'s rules on the layouts real packages have (numpy, pandas, pyarrow, mypy, triton):
each rule as a pure function of the paths, then one generated wheel with every case built with
``--slim`` by real uv from a loopback index and imported under the real CPython 3.13."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bundler.slim import (
    REASON_CONFTEST,
    REASON_NATIVE,
    REASON_STUB,
    REASON_TESTS,
    imported_modules,
    plan_slim,
)
from tests.support import RunCli
from tests.support.index import SimpleIndex
from tests.support.projects import assert_validates_clean, import_under, make_project
from tests.support.wheels import compile_extension, make_wheel

LINUX = "cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64"
SO = ".cpython-313-x86_64-linux-gnu.so"


def slim(files: dict[str, bytes]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """plan_slim over ``packages/<name>`` for each file: (dropped -> reason, kept for imports)."""
    names = [f"packages/{n}" for n in files]
    result = plan_slim(names, lambda n: files[n[len("packages/"):]])
    return ({n[len("packages/"):]: r for n, r in result.dropped.items()},
            [(a[len("packages/"):], b[len("packages/"):]) for a, b in result.kept_for_imports])


# ---- each rule by its paths ------------------------------------------------------------------

def test_a_test_module_a_kept_module_imports_is_kept_with_what_it_imports() -> None:
    # numpy 2.2: numpy/testing/_private/utils.py does `from numpy._core.tests._natype import
    # pd_NA`; dropping numpy/_core/tests whole breaks `import numpy.testing`.
    files = {
        "np/__init__.py": b"",
        "np/testing/__init__.py": b"from .utils import *\n",
        "np/testing/utils.py": b"import os\nfrom np._core.tests._natype import pd_NA\n",
        "np/_core/__init__.py": b"",
        "np/_core/tests/__init__.py": b"",
        "np/_core/tests/_natype.py": b"from ._base import Base\nclass pd_NA(Base): pass\n",
        "np/_core/tests/_base.py": b"class Base: pass\n",
        "np/_core/tests/test_core.py": b"import np\ndef test(): pass\n",
        "np/_core/tests/data/x.csv": b"1,2\n",
        "pd/__init__.py": b"",
        "pd/io/__init__.py": b"from .tests import (\n    helper,\n)\n",
        "pd/io/tests/helper.py": b"H = 1\n",
        "pd/io/tests/test_io.py": b"def test(): pass\n",
        "pd/util.py": b'"""Run the tests: see pd/tests."""\nimport os\n',
    }
    dropped, kept = slim(files)
    assert dropped == {n: REASON_TESTS for n in (
        "np/_core/tests/test_core.py", "np/_core/tests/data/x.csv", "pd/io/tests/test_io.py")}
    assert kept == [("np/_core/tests/__init__.py", "np/testing/utils.py"),
                    ("np/_core/tests/_base.py", "np/_core/tests/_natype.py"),
                    ("np/_core/tests/_natype.py", "np/testing/utils.py"),
                    ("pd/io/tests/helper.py", "pd/io/__init__.py")]


def test_imports_are_read_in_every_statement_form() -> None:
    source = (b"import a.b as c, d\nfrom . import sib\nfrom ..up import (x,\n    y as z)\n"
              b"    from .tests.deep import *  # lazily\nif 1: pass\nx = 'import not_this'\n"
              b"from e import f; import g\n")
    assert imported_modules(source, "packages/pkg/sub/mod.py") == {
        "a.b", "d", "pkg.sub", "pkg.sub.sib", "pkg.up", "pkg.up.x", "pkg.up.y",
        "pkg.sub.tests.deep", "e", "e.f"}
    assert imported_modules(b"from . import x\n", "packages/pkg/__init__.py") == {"pkg", "pkg.x"}


def test_conftest_inside_a_package_goes_a_top_level_one_stays() -> None:
    dropped, _ = slim({"pkg/__init__.py": b"", "pkg/conftest.py": b"import pytest\n",
                       "pkg/sub/conftest.py": b"", "conftest.py": b"", "pkg/conftest_x.py": b""})
    assert dropped == {"pkg/conftest.py": REASON_CONFTEST, "pkg/sub/conftest.py": REASON_CONFTEST}


def test_a_stub_goes_only_beside_its_module() -> None:
    dropped, _ = slim({
        "pkg/__init__.py": b"", "pkg/__init__.pyi": b"", "pkg/mod.py": b"", "pkg/mod.pyi": b"",
        f"pkg/_ext{SO}": b"\x7fELF", "pkg/_ext.pyi": b"", "pkg/sub/helper.py": b"",
        "pkg/sub.pyi": b"", "pkg/_typing.pyi": b"",  # no module: may be read as data
        "checker/typeshed/stdlib/os/__init__.pyi": b"", "checker/__init__.py": b""})
    assert dropped == {n: REASON_STUB for n in (
        "pkg/__init__.pyi", "pkg/mod.pyi", "pkg/_ext.pyi", "pkg/sub.pyi")}


def test_native_sources_go_beside_a_binary_or_in_its_src_tree_include_trees_stay() -> None:
    dropped, _ = slim({
        f"arrow/lib{SO}": b"", "arrow/libarrow_python.so.2000": b"",
        "arrow/lib.pyx": b"", "arrow/table.pxi": b"", "arrow/lib.pxd": b"", "arrow/lib.h": b"",
        "arrow/src/arrow/python/common.cc": b"", "arrow/src/arrow/python/common.h": b"",
        "arrow/src/arrow/python/CMakeLists.txt": b"",  # not a C/C++ file
        "arrow/include/arrow/api.h": b"", "arrow/includes/libarrow.pxd": b"",
        "np/_core/_umath.so": b"", "np/_core/umath.cpp": b"", "np/_core/include/np.h": b"",
        "np/f2py/src/fortranobject.c": b"",  # no binary above it: f2py compiles it
        "jit/backends/driver.c": b"", "jit/_C/libjit.so": b"",  # compiled at run time
        "vendor/libz.so.1.2.13": b"", "vendor/zconf.hpp": b""})
    assert dropped == {n: REASON_NATIVE for n in (
        "arrow/lib.pyx", "arrow/table.pxi", "arrow/lib.pxd", "arrow/lib.h",
        "arrow/src/arrow/python/common.cc", "arrow/src/arrow/python/common.h",
        "np/_core/umath.cpp", "vendor/zconf.hpp")}


# ---- the rules in a real build -----------------------------------------------------------------

def _numpyish(directory: Path) -> None:
    """One cp313 wheel laid out like numpy + pyarrow, with every case slim meets."""
    make_wheel(directory, "numpyish", "1.0", tag=LINUX, files={
        "numpyish/__init__.py": b"from numpyish._core import _umath\n"
                                b"from numpyish._core.core import total\n",
        "numpyish/__init__.pyi": b"def total(n: int) -> int: ...\n",
        "numpyish/_typing.pyi": b"Shape = tuple[int, ...]\n",  # no module beside it: stays
        "numpyish/conftest.py": b"from numpyish._core.tests.test_core import *\n",
        "numpyish/_core/__init__.py": b"",
        f"numpyish/_core/_umath{SO}": compile_extension("_umath"),
        "numpyish/_core/_umath.pyx": b"# cython source\n" * 400,
        "numpyish/_core/_umath.pxd": b"cdef int answer()\n",
        "numpyish/_core/umath.cpp": b"// C++ source\n" * 400,
        "numpyish/_core/include/numpyish/api.h": b"/* for building against numpyish */\n",
        "numpyish/_core/core.py": b"def total(n):\n    return sum(range(n))\n",
        "numpyish/_core/tests/__init__.py": b"",
        "numpyish/_core/tests/_natype.py": b"from ._base import Base\n"
                                           b"class NAType(Base):\n    pass\npd_NA = NAType()\n",
        "numpyish/_core/tests/_base.py": b"class Base:\n    pass\n",
        "numpyish/_core/tests/test_core.py": b"def test_total():\n    pass\n" * 300,
        "numpyish/testing/__init__.py": b"from numpyish._core.tests._natype import pd_NA\n",
        "numpyish/src/wrap/glue.cc": b"// the sources of libglue\n" * 200,
        "numpyish/libglue.so.1": compile_extension("glue"),
        "numpyish/_vendor/vend-2.0.dist-info/tests/METADATA.pyi": b"a vendored dist-info\n",
    })


@pytest.fixture(scope="module")
def numpyish_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleIndex]:
    directory = tmp_path_factory.mktemp("slim-wheels")
    _numpyish(directory)
    with SimpleIndex(directory) as index:
        yield index


def test_slim_build_drops_each_kind_keeps_what_is_imported_and_the_bundle_runs(
        tmp_path: Path, numpyish_index: SimpleIndex, monkeypatch: pytest.MonkeyPatch,
        run_cli: RunCli, python313: Path) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", numpyish_index.url)
    project = make_project(tmp_path / "agent", "numpyish\n")
    result = run_cli("build", project, "--slim", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["shaped"]
    zip_path = project / "dist" / "agent.zip"
    with zipfile.ZipFile(zip_path) as archive:
        listed = set(archive.namelist())
        record = archive.read("packages/numpyish-1.0.dist-info/RECORD").decode()
    reasons = {r["name"][len("packages/"):]: r["reason"] for r in report["removed"]}
    assert reasons == {
        "numpyish/__init__.pyi": REASON_STUB,
        "numpyish/conftest.py": REASON_CONFTEST,
        "numpyish/_core/_umath.pyx": REASON_NATIVE,
        "numpyish/_core/_umath.pxd": REASON_NATIVE,
        "numpyish/_core/umath.cpp": REASON_NATIVE,
        "numpyish/src/wrap/glue.cc": REASON_NATIVE,
        "numpyish/_core/tests/test_core.py": REASON_TESTS}
    assert not listed & {f"packages/{n}" for n in reasons}
    for stays in ("numpyish/_typing.pyi", "numpyish/_core/include/numpyish/api.h",
                  "numpyish/_core/tests/__init__.py", "numpyish/_core/tests/_natype.py",
                  "numpyish/_core/tests/_base.py",
                  "numpyish/_vendor/vend-2.0.dist-info/tests/METADATA.pyi"):
        assert f"packages/{stays}" in listed, stays
        assert f"{stays},sha256=" in record  # RECORD lists exactly what ships
    assert "numpyish/_core/umath.cpp," not in record
    assert [k["name"] for k in report["slim_saved"]["kept_for_imports"]] == [
        "packages/numpyish/_core/tests/__init__.py", "packages/numpyish/_core/tests/_base.py",
        "packages/numpyish/_core/tests/_natype.py"]
    listing = run_cli("build", project, "--slim", "--list")
    assert ("--slim kept 3 files a kept module imports (numpyish/_core/tests/__init__.py, "
            "imported by numpyish/testing/__init__.py, and 2 more)") in listing.stdout
    assert_validates_clean(zip_path)
    out = import_under(python313, zip_path, tmp_path, (
        "import numpyish, numpyish.testing\n"
        "print(numpyish.total(10), numpyish._umath.answer(), type(numpyish.testing.pd_NA)"
        ".__name__)\n"))
    assert out.split() == ["45", "42", "NAType"]


def test_audit_of_a_slimmed_zip_says_to_pass_slim_and_reproduces_with_it(
        tmp_path: Path, numpyish_index: SimpleIndex, monkeypatch: pytest.MonkeyPatch,
        run_cli: RunCli) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", numpyish_index.url)
    project = make_project(tmp_path / "agent", "numpyish\n")
    assert run_cli("lock", project).exit_code == 0
    assert run_cli("build", project, "--slim").exit_code == 0
    zip_path = project / "dist" / "agent.zip"
    without = run_cli("audit", zip_path, project)
    assert without.exit_code == 1
    assert ("note: the rebuild has 7 files the zip does not, all of them what --slim leaves "
            "out: the zip was built with --slim; audit with --slim") in without.stdout
    with_slim = run_cli("audit", zip_path, project, "--slim")
    assert with_slim.exit_code == 0, with_slim.output
    assert "reproduced" in with_slim.stdout and "--slim" not in with_slim.stdout
    plain = tmp_path / "plain.zip"
    assert run_cli("build", project, "-o", plain).exit_code == 0
    reverse = run_cli("audit", plain, project, "--slim")
    assert reverse.exit_code == 1
    assert "the zip was built without --slim; audit with --no-slim" in reverse.stdout
    # a difference that is not slim's gets no such note
    (project / "extra.py").write_text("X = 1\n")
    other = run_cli("audit", zip_path, project)
    assert other.exit_code == 1 and "--slim" not in other.stdout
