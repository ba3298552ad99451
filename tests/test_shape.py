"""Issue 17 end to end: what each package costs, leaving packages and files out, and bytecode
for the target — real uv against a loopback index of wheels built here, bundles imported by
the real CPython 3.13 (and 3.14)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bundler.build import build_project
from bundler.checks import CheckContext, run_checks
from bundler.model import Bundle
from bundler.options import BuildOptions
from bundler.plan import plan_project
from bundler.targets import PythonTarget
from tests.support import RunCli
from tests.support.binaries import pe_dll
from tests.support.index import SimpleIndex
from tests.support.projects import assert_validates_clean, import_under, make_project
from tests.support.wheels import compile_extension, make_wheel

LINUX = "cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64"


def _shape_wheels(directory: Path) -> None:
    """app -> heavy -> (shared, onlyheavy); app -> shared; slimmy has what --slim drops."""
    make_wheel(directory, "app", "1.0", requires=["heavy", "shared"], files={
        "app/__init__.py": b"import shared\nVALUE = 'app ' + shared.VALUE\n"
                           b"def heavy():\n    import heavy\n    return heavy.VALUE\n"})
    make_wheel(directory, "heavy", "1.0", requires=["shared>=1", "onlyheavy"],
               files={"heavy/__init__.py": b"VALUE = 'heavy'\n" + b"".join(
                   b"# %s\n" % hashlib.sha256(b"%d" % i).hexdigest().encode()
                   for i in range(400))})
    make_wheel(directory, "shared", "1.0")
    make_wheel(directory, "onlyheavy", "1.0")
    make_wheel(directory, "slimmy", "1.0", tag=LINUX, files={
        "slimmy/__init__.py": b"from slimmy import _speed, testing, test_utils\n"
                              b"from slimmy.core import VALUE\n",
        "slimmy/_speed.cpython-313-x86_64-linux-gnu.so": compile_extension("_speed"),
        "slimmy/_speed.c": b"/* generated */\n" * 2000,
        "slimmy/_speed.pyx": b"# cython source\n" * 500,
        "slimmy/__init__.pyi": b"VALUE: str\n",
        "slimmy/py.typed": b"",
        "slimmy/core/__init__.py": b"VALUE = 'slimmy'\n",
        "slimmy/include/slimmy.h": b"/* a header no extension sits beside */\n",
        "slimmy/testing/__init__.py": b"HELPER = True\n",
        "slimmy/test_utils.py": b"UTIL = True\n",
        "slimmy/tests/__init__.py": b"",
        "slimmy/tests/test_core.py": b"def test_it():\n    pass\n" * 300,
        "slimmy/core/test/test_deep.py": b"def test_deep():\n    pass\n" * 300,
        # what --slim drops elsewhere, inside the dist-info: it must stay
        "slimmy-1.0.dist-info/licenses/test/NOTICE.pyi": b"kept: dist-info is never slimmed\n",
    })
    make_wheel(directory, "helpers", "1.0", files={
        "helpers/__init__.py": b"",
        "helpers/_vendored/attach_amd64.dll": pe_dll(),
        "helpers/_vendored/notes.txt": b"kept\n"})


@pytest.fixture(scope="module")
def shape_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleIndex]:
    directory = tmp_path_factory.mktemp("shape-wheels")
    _shape_wheels(directory)
    with SimpleIndex(directory) as index:
        yield index


@pytest.fixture
def index(shape_index: SimpleIndex, monkeypatch: pytest.MonkeyPatch) -> SimpleIndex:
    monkeypatch.setenv("PIP_INDEX_URL", shape_index.url)
    return shape_index


def names(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.namelist()


def dists(zip_path: Path) -> set[str]:
    return {n.split("/")[1].split("-")[0] for n in names(zip_path)
            if n.startswith("packages/") and ".dist-info/" in n}


# ---- --exclude-package -----------------------------------------------------------------------

def test_excluding_a_package_drops_what_only_it_needs_and_keeps_what_others_need(
        tmp_path: Path, index: SimpleIndex, run_cli: RunCli, python313: Path) -> None:
    project = make_project(tmp_path / "agent", "app\n")
    result = run_cli("build", project, "--exclude-package", "Heavy")
    assert result.exit_code == 0, result.output
    zip_path = project / "dist" / "agent.zip"
    assert dists(zip_path) == {"app", "shared"}  # heavy and onlyheavy gone, shared stays
    assert "excluded heavy (as asked)" in result.stderr
    assert "excluded onlyheavy (needed only by excluded packages)" in result.stderr
    assert "kept shared: still needed by app" in result.stderr
    assert_validates_clean(zip_path)  # app requires heavy: deliberate, so no FB403
    with zipfile.ZipFile(zip_path) as archive:
        record = archive.read("packages/.fbundle-excluded").decode()
    assert record.splitlines()[1:] == ["heavy", "onlyheavy"]
    out = import_under(python313, zip_path, tmp_path, "import app\nprint(app.VALUE)\n")
    assert out.strip() == "app shared 1.0"
    # without the record, the same zip is missing a dependency: the record is what validate uses
    stripped = tmp_path / "stripped.zip"
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(stripped, "w") as dst:
        for info in src.infolist():
            if info.filename != "packages/.fbundle-excluded":
                dst.writestr(info, src.read(info))
    found = run_checks(Bundle.from_zip(stripped),
                       CheckContext(PythonTarget.for_runtime("python_3_13"), "bundled"))
    assert [(f.code, f.path) for f in found] == [
        ("FB403", "packages/app-1.0.dist-info/METADATA")]


def test_exclusions_come_from_the_project_config_and_the_lock_records_them(
        tmp_path: Path, index: SimpleIndex, run_cli: RunCli) -> None:
    project = make_project(tmp_path / "agent", "app\n", files={
        "fbundle.toml": 'exclude-packages = ["heavy"]\n'})
    locked = run_cli("lock", project)
    assert locked.exit_code == 0, locked.output
    lock_text = (project / "pylock.toml").read_text()
    assert 'exclude-packages = [\n    "heavy",\n]' in lock_text or \
        'exclude-packages = ["heavy"]' in lock_text
    built = build_project(project)
    assert [p["name"] for p in built.packages] == ["app", "shared"]
    # the lock is the record: a build that excludes something else is told to re-lock
    (project / "fbundle.toml").write_text('exclude-packages = ["onlyheavy"]\n')
    result = run_cli("build", project)
    assert result.exit_code == 1
    assert "pylock.toml was made excluding heavy; this build excludes onlyheavy" in result.stderr
    (project / "fbundle.toml").unlink()
    (project / "pyproject.toml").write_text('[tool.fbundle]\nexclude-packages = ["heavy"]\n')
    assert build_project(project).packages == built.packages
    (project / "fbundle.toml").write_text("slim = true\n")
    both = run_cli("build", project)
    assert both.exit_code == 2 and "both fbundle.toml and pyproject.toml" in both.stderr
    (project / "fbundle.toml").write_text("slimm = true\n")
    (project / "pyproject.toml").unlink()
    typo = run_cli("build", project)
    assert typo.exit_code == 2 and "unknown setting 'slimm'" in typo.stderr


# ---- --slim and .fbundleignore in packages/ ------------------------------------------------------

def test_slim_drops_tests_stubs_and_extension_sources_never_dist_info_or_imports(
        tmp_path: Path, index: SimpleIndex, run_cli: RunCli, python313: Path) -> None:
    project = make_project(tmp_path / "agent", "slimmy\n")
    full = build_project(project)
    with zipfile.ZipFile(full.zip_path) as archive:
        full_sizes = {i.filename: i.file_size for i in archive.infolist()}
        full_compressed = {i.filename: i.compress_size for i in archive.infolist()}
    full_names = set(full_sizes)
    result = run_cli("build", project, "--slim", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["reused"] is False  # --slim is part of the input key
    again = run_cli("build", project, "--slim", "--json")
    assert json.loads(again.stdout)["reused"] is True
    slim_names = set(names(project / "dist" / "agent.zip"))
    gone = full_names - slim_names
    assert gone == {"packages/slimmy/_speed.c", "packages/slimmy/_speed.pyx",
                    "packages/slimmy/__init__.pyi", "packages/slimmy/tests/__init__.py",
                    "packages/slimmy/tests/test_core.py",
                    "packages/slimmy/core/test/test_deep.py"}
    assert {n for n in full_names if ".dist-info/" in n} <= slim_names
    assert "packages/slimmy-1.0.dist-info/licenses/test/NOTICE.pyi" in slim_names
    assert {"packages/slimmy/testing/__init__.py", "packages/slimmy/test_utils.py",
            "packages/slimmy/include/slimmy.h", "packages/slimmy/py.typed"} <= slim_names
    saved = report["shaped"]["slim_saved"]
    assert saved["files"] == 6
    assert saved["unpacked_bytes"] == sum(full_sizes[n] for n in gone)
    record = "packages/slimmy-1.0.dist-info/RECORD"
    with zipfile.ZipFile(full.zip_path.with_name("agent.zip")) as archive:
        slim_record = archive.getinfo(record).compress_size
    # the zip shrank by the files' own bytes in it, plus a shorter RECORD
    assert full.size - report["size"] == saved["zip_bytes"] + full_compressed[record] \
        - slim_record
    assert_validates_clean(project / "dist" / "agent.zip")  # RECORD rewritten to match
    with zipfile.ZipFile(project / "dist" / "agent.zip") as archive:
        record = archive.read("packages/slimmy-1.0.dist-info/RECORD").decode()
    assert "slimmy/_speed.c," not in record and "slimmy/testing/__init__.py," in record
    out = import_under(python313, project / "dist" / "agent.zip", tmp_path,
                       "import slimmy\nprint(slimmy.VALUE, slimmy._speed.answer())\n")
    assert out.split() == ["slimmy", "42"]


def test_fbundleignore_patterns_under_packages_drop_files_and_rewrite_record(
        tmp_path: Path, index: SimpleIndex, run_cli: RunCli) -> None:
    project = make_project(tmp_path / "agent", "helpers\n", files={
        ".fbundleignore": "packages/helpers/_vendored/*.dll\n*.txt\n"})
    result = run_cli("build", project, "--list")
    assert result.exit_code == 0, result.output
    assert "- packages/helpers/_vendored/attach_amd64.dll  (matched .fbundleignore)" \
        in result.stdout
    built = build_project(project)
    listed = names(built.zip_path)
    assert "packages/helpers/_vendored/attach_amd64.dll" not in listed
    # a pattern that does not start with packages/ never reaches into the wheels
    assert "packages/helpers/_vendored/notes.txt" in listed
    assert_validates_clean(built.zip_path)


def test_list_shows_sizes_chains_and_findings_before_writing(
        tmp_path: Path, index: SimpleIndex, run_cli: RunCli) -> None:
    project = make_project(tmp_path / "agent", "app\nhelpers\n")
    result = run_cli("build", project, "--list", "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    assert not (project / "dist").exists()
    by_name = {d["name"]: d for d in listing["sizes"]["distributions"]}
    assert by_name["onlyheavy"]["chain"] == ["requirements.txt", "app", "heavy", "onlyheavy"]
    assert [d["name"] for d in listing["sizes"]["distributions"]][0] == "heavy"
    # the PE helper in a pure wheel is a warning, shown before a byte is written
    assert [(f["code"], f["severity"]) for f in listing["findings"]] == [("FB309", "warning")]
    built = build_project(project)
    with zipfile.ZipFile(built.zip_path) as archive:
        infos = archive.infolist()
    assert listing["sizes"]["zip_bytes"] == built.size
    for dist in listing["sizes"]["distributions"]:
        files = [i for i in infos if i.filename.startswith(
            (f"packages/{dist['name']}/", f"packages/{dist['name']}-"))]
        assert dist["unpacked_bytes"] == sum(i.file_size for i in files)
        assert dist["zip_bytes"] == sum(30 + 46 + 2 * len(i.filename.encode()) +
                                        i.compress_size for i in files)
    text = run_cli("inspect", built.zip_path, "--sizes")
    assert text.exit_code == 0
    assert any(line.split()[-4:] == ["(requirements.txt", "->", "app", "->"] or
               "onlyheavy 1.0 (requirements.txt -> app -> heavy -> onlyheavy)" in line
               for line in text.stdout.splitlines())
    inspected = json.loads(run_cli("inspect", built.zip_path, "--sizes", "--json").stdout)
    assert inspected["sizes"]["distributions"] == listing["sizes"]["distributions"]


# ---- --compile ------------------------------------------------------------------------------

def _build_in_process(project: Path, cache: Path, *extra: str) -> str:
    env = {**os.environ, "FBUNDLE_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-m", "bundler", "build", str(project), *extra],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_compiled_bundle_imports_from_its_bytecode_and_rebuilds_identically(
        tmp_path: Path, index: SimpleIndex, python313: Path) -> None:
    project = make_project(tmp_path / "agent", "app\nslimmy\n", files={
        "tools.py": "def answer():\n    return {'x', 'y', 'z'}\n"})
    flags = ("--compile", "--python", str(python313))
    first = _build_in_process(project, tmp_path / "cache-a", *flags)
    zip_path = project / "dist" / "agent.zip"
    first_bytes = zip_path.read_bytes()
    zip_path.unlink()
    second = _build_in_process(project, tmp_path / "cache-b", *flags)
    assert first == second and zip_path.read_bytes() == first_bytes
    listed = names(zip_path)
    assert "packages/app/__pycache__/__init__.cpython-313.pyc" in listed
    assert "__pycache__/tools.cpython-313.pyc" in listed
    assert "__pycache__/main.cpython-313.pyc" in listed
    assert_validates_clean(zip_path)  # no FB107 for the target's own bytecode
    with zipfile.ZipFile(zip_path) as archive:
        pyc = archive.read("packages/app/__pycache__/__init__.cpython-313.pyc")
        record = archive.read("packages/app-1.0.dist-info/RECORD").decode()
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, unchecked (PEP 552)
    assert "app/__pycache__/__init__.cpython-313.pyc,sha256=" in record
    # Prove the bytecode is what runs: break the sources after unpacking; unchecked-hash pycs
    # are used without reading them.
    out = import_under(python313, zip_path, tmp_path, (
        "import pathlib, sys\n"
        "root = pathlib.Path(sys.path[0])\n"
        "for p in [root / 'packages/app/__init__.py', root / 'tools.py']:\n"
        "    p.write_text('raise SystemExit(\"source was read\")')\n"
        "import app, tools, slimmy\n"
        "print(app.VALUE, sorted(tools.answer()), slimmy._speed.answer())\n"))
    assert out.strip() == "app shared 1.0 ['x', 'y', 'z'] 42"


def test_compile_for_python_314_imports_under_the_real_314(
        tmp_path: Path, index: SimpleIndex, python314: Path) -> None:
    project = make_project(tmp_path / "agent", "app\n", runtime="python_3_14")
    built = build_project(project, BuildOptions(compile=True, python=python314))
    listed = names(built.zip_path)
    assert "packages/app/__pycache__/__init__.cpython-314.pyc" in listed
    assert_validates_clean(built.zip_path, runtime="python_3_14")
    out = import_under(python314, built.zip_path, tmp_path, (
        "import pathlib, sys\n"
        "(pathlib.Path(sys.path[1]) / 'app/__init__.py').write_text('raise SystemExit(1)')\n"
        "import app\nprint(app.VALUE)\n"))
    assert out.strip() == "app shared 1.0"


def test_compile_without_the_target_interpreter_says_how_to_get_one(
        tmp_path: Path, index: SimpleIndex, run_cli: RunCli) -> None:
    project = make_project(tmp_path / "agent", "app\n")
    if sys.version_info[:2] == (3, 13):
        pytest.skip("the interpreter running the tests is the target's; nothing wrong to pass")
    result = run_cli("build", project, "--compile", "--python", sys.executable)
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "--compile needs CPython 3.13" in line
    assert f"is CPython {platform.python_version()}" in line
    assert "uv python install 3.13" in line and len(line.splitlines()) == 1
    assert not (project / "dist").exists()


def test_host_bytecode_is_still_reported(tmp_path: Path, python313: Path) -> None:
    import py_compile

    from bundler.model import BytesData, Entry
    from bundler.write import write_zip

    src = tmp_path / "mod.py"
    src.write_text("X = 1\n")
    checked = {}
    for mode in ("timestamp", "unchecked-hash"):
        out = tmp_path / f"{mode}.pyc"
        subprocess.run([str(python313), "-c", (
            "import py_compile, sys; py_compile.compile(sys.argv[1], sys.argv[2], "
            "invalidation_mode=py_compile.PycInvalidationMode[sys.argv[3]])"),
            str(src), str(out), mode.upper().replace("-", "_")], check=True)
        checked[mode] = out.read_bytes()
    host = tmp_path / "host.pyc"
    py_compile.compile(str(src), str(host),
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    files = {"main.py": b"", "requirements.txt": b"", "mod.py": b"X = 1\n",
             "__pycache__/mod.cpython-313.pyc": checked["unchecked-hash"],
             "a/mod.py": b"X = 1\n", "a/__pycache__/mod.cpython-313.pyc": checked["timestamp"],
             "b/mod.py": b"X = 1\n",
             f"b/__pycache__/mod.cpython-3{sys.version_info[1]}.pyc": host.read_bytes(),
             "c/__pycache__/gone.cpython-313.pyc": checked["unchecked-hash"]}
    path = tmp_path / "b.zip"
    write_zip([Entry(n, len(b), BytesData(b)) for n, b in files.items()], path)
    found = run_checks(Bundle.from_zip(path),
                       CheckContext(PythonTarget.for_runtime("python_3_13"), "remote_build"))
    assert sorted(f.path for f in found if f.code == "FB107") == [
        "a/__pycache__/mod.cpython-313.pyc",  # timestamp-based: stale on arrival
        f"b/__pycache__/mod.cpython-3{sys.version_info[1]}.pyc",  # the host's version
        "c/__pycache__/gone.cpython-313.pyc"]  # no source beside it


def test_plan_sizes_are_the_written_zip(tmp_path: Path, index: SimpleIndex) -> None:
    from bundler.write import predicted_size

    project = make_project(tmp_path / "agent", "app\nslimmy\n")
    plan = plan_project(project)
    predicted = predicted_size(plan.bundle.entries)
    assert build_project(project).size == predicted


def test_exclusion_graph_drops_chains_only_the_excluded_need_and_names_direct_keeps() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from bundler.graph import exclude

    requires = {canonicalize_name(k): v for k, v in {
        "top": ["big", "util"], "big": ["mid", "util>=1", 'winonly; sys_platform == "win32"'],
        "mid": ["deep", "util"], "deep": [], "util": ["tiny"], "tiny": [], "winonly": [],
        "stray": []}.items()}
    target = PythonTarget.for_runtime("python_3_13")
    result = exclude(["BIG", "nothere"], [Requirement("top")], requires, target)
    assert result.dropped == ("big", "deep", "mid")  # mid and deep: only big needed them
    assert result.kept == (("util", ("top",)),)  # big and mid needed it; top still does
    assert result.unknown == ("nothere",)
    assert "stray" not in result.dropped  # nothing needs it, but nothing excluded pulled it in
    assert "tiny" not in {n for n, _ in result.kept}  # under util, kept with it: not named
