"""Locks written by other tools: a uv project's ``uv.lock``, poetry, and ``pylock.toml`` from uv.

Real uv makes the locks (``uv lock`` against the loopback index); the bundles are imported
under the real CPython 3.13.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from bundler.build import build_project
from bundler.errors import BuildError
from tests.support import RunCli
from tests.support.index import SimpleIndex
from tests.support.projects import assert_validates_clean, import_under, make_project


@pytest.fixture(scope="session")
def old_index(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleIndex]:
    """The corpus as it was before beta 2.0 came out: what the uv.lock was made against."""
    folder = tmp_path_factory.mktemp("old-wheelhouse")
    for wheel in wheelhouse.iterdir():
        if not wheel.name.startswith("beta-2.0"):
            shutil.copy2(wheel, folder / wheel.name)
    with SimpleIndex(folder) as index:
        yield index


@pytest.fixture
def index(simple_index: SimpleIndex, monkeypatch: pytest.MonkeyPatch) -> SimpleIndex:
    """Today's index (beta 2.0 is out), configured the way users configure pip."""
    monkeypatch.setenv("PIP_INDEX_URL", simple_index.url)
    return simple_index


def uv(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real uv (the one installed with fbundle) in ``cwd``."""
    from uv import find_uv_bin

    return subprocess.run([find_uv_bin(), *args], cwd=cwd, capture_output=True, text=True,
                          check=False)


def uv_project(root: Path, index: SimpleIndex, dependencies: list[str], *,
               requires_python: str = ">=3.11", extra: str = "", runtime: str = "python_3_13",
               mode: str = "bundled") -> Path:
    """A uv project (pyproject.toml + uv.lock made by ``uv lock`` against ``index``)."""
    make_project(root, None, runtime=runtime, mode=mode)
    deps = ", ".join(f'"{d}"' for d in dependencies)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "agent"\nversion = "0.1.0"\nrequires-python = "{requires_python}"\n'
        f"dependencies = [{deps}]\n{extra}")
    locked = uv("lock", "--default-index", index.url, "--python-preference", "system",
                cwd=root)
    assert locked.returncode == 0, locked.stderr
    return root


def zip_text(zip_path: Path, name: str) -> str:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.read(name).decode()


def test_uv_lock_builds_the_locked_versions_not_the_newest(
    tmp_path: Path, old_index: SimpleIndex, index: SimpleIndex, python313: Path
) -> None:
    """The lock was made when beta 1.0 was the newest; a fresh resolution would take 2.0."""
    project = uv_project(tmp_path / "agent", old_index, ["beta", "alpha"])
    assert 'name = "beta"\nversion = "1.0"' in (project / "uv.lock").read_text()
    result = build_project(project)
    names = zipfile.ZipFile(result.zip_path).namelist()
    assert "packages/beta-1.0.dist-info/METADATA" in names
    assert not any(n.startswith("packages/beta-2.0") for n in names)
    assert "packages/delta/__init__.py" in names  # alpha's python>=3.13 marker, for the target
    assert not any(n.startswith("packages/gamma") for n in names)  # python<3.12: host only
    assert_validates_clean(result.zip_path)
    out = import_under(python313, result.zip_path, tmp_path,
                       "import alpha, beta\nprint(beta.VALUE)\n")
    assert out.split() == ["beta", "1.0"]
    assert index.total == 0  # the lock says where every wheel is: no resolver asked the index


def test_a_stale_uv_lock_is_refused_naming_the_change_and_uv_lock(
    tmp_path: Path, old_index: SimpleIndex, index: SimpleIndex, run_cli: RunCli
) -> None:
    project = uv_project(tmp_path / "agent", old_index, ["beta"])
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('["beta"]', '["beta>=2", "alpha"]'))
    result = run_cli("build", project)
    assert result.exit_code == 1, result.output
    assert "uv.lock is out of date with pyproject.toml" in result.stderr
    assert "'beta>=2' declared" in result.stderr and "added: 'alpha'" in result.stderr
    assert "run `uv lock`" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert index.total == 0
    # and uv agrees: after `uv lock` the same project builds with the new versions
    assert uv("lock", "--default-index", index.url, cwd=project).returncode == 0
    built = build_project(project)
    assert "packages/beta-2.0.dist-info/METADATA" in zipfile.ZipFile(built.zip_path).namelist()


def test_markers_uv_rewrote_do_not_make_the_lock_stale(
    tmp_path: Path, old_index: SimpleIndex
) -> None:
    """uv locks `python_version < "3.12"` as `python_full_version < '3.12'`: the same rule."""
    project = uv_project(tmp_path / "agent", old_index,
                         ["beta", "gamma; python_version < '3.12'"],
                         extra='[project.optional-dependencies]\nx = ["delta"]\n'
                               '[dependency-groups]\ndev = ["native"]\n')
    assert "python_full_version < '3.12'" in (project / "uv.lock").read_text()
    names = zipfile.ZipFile(build_project(project).zip_path).namelist()
    assert "packages/beta/__init__.py" in names
    assert not any(n.startswith(("packages/gamma", "packages/delta", "packages/native"))
                   for n in names)  # marker false for 3.13, an extra not asked for, dev only
    # a change to an optional dependency or a group is a change uv would see too
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('dev = ["native"]', 'dev = ["limited"]'))
    with pytest.raises(BuildError, match=r"group 'dev'"):
        build_project(project)


def test_requires_python_that_excludes_the_runtime_names_both(
    tmp_path: Path, old_index: SimpleIndex, run_cli: RunCli
) -> None:
    project = uv_project(tmp_path / "agent", old_index, ["beta"],
                         requires_python=">=3.11,<3.14", runtime="python_3_14")
    result = run_cli("build", project)
    assert result.exit_code == 2, result.output
    assert "requires-python '>=3.11,<3.14' excludes python_3_14 (CPython 3.14)" in result.stderr
    assert run_cli("build", project, "--runtime", "python_3_13").exit_code == 0


def test_remote_build_ships_a_requirements_txt_pinned_to_the_uv_lock(
    tmp_path: Path, old_index: SimpleIndex, index: SimpleIndex
) -> None:
    project = uv_project(tmp_path / "agent", old_index, ["alpha"], mode="remote_build")
    result = build_project(project)
    text = zip_text(result.zip_path, "requirements.txt")
    assert [line for line in text.splitlines() if not line.startswith("#")] == \
        ["alpha==1.0", "beta==1.0", "delta==1.0"]
    assert "uv.lock" in text
    assert_validates_clean(result.zip_path, mode="remote_build")
    assert not any(n.startswith("packages/") for n in zipfile.ZipFile(result.zip_path).namelist())


def test_a_poetry_project_is_told_the_export_command(tmp_path: Path, run_cli: RunCli) -> None:
    project = make_project(tmp_path / "agent", None, files={
        "pyproject.toml": '[tool.poetry]\nname = "agent"\n[tool.poetry.dependencies]\n'
                          'python = "^3.13"\nrequests = "^2.31"\n',
        "poetry.lock": '[[package]]\nname = "requests"\nversion = "2.31.0"\n'})
    result = run_cli("build", project)
    assert result.exit_code == 2
    assert "poetry export -f requirements.txt --output requirements.txt" in result.stderr
    assert "poetry self add poetry-plugin-export" in result.stderr
    assert "empty" not in result.stderr
    (project / "poetry.lock").unlink()
    result = run_cli("build", project)
    assert result.exit_code == 2 and "`poetry lock`, then `poetry export" in result.stderr


@pytest.fixture(scope="session")
def fallback_index(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[SimpleIndex]:
    """native 1.0 as a cp313 manylinux wheel *and* a pure fallback; gamma behind a marker."""
    from tests.support.wheels import make_wheel

    folder = tmp_path_factory.mktemp("fallback-wheelhouse")
    for wheel in wheelhouse.glob("*.whl"):
        if wheel.name.startswith(("native-", "beta-1.0", "gamma-")):
            shutil.copy2(wheel, folder / wheel.name)
    make_wheel(folder, "native", "1.0")  # native-1.0-py3-none-any.whl: no compiled module
    with SimpleIndex(folder) as index:
        yield index


def uv_would_install(project: Path, python: str = "3.13") -> set[tuple[str, str]]:
    """What uv itself installs from the project's pylock.toml for the service's platform
    (``uv pip install -r pylock.toml --dry-run``): the oracle fbundle's reading must match.
    uv reads the lock only to install it, so this is its human output, read in a test."""
    result = uv("pip", "install", "-r", "pylock.toml", "--dry-run", "--no-config",
                "--target", str(project / ".oracle"), "--python-platform",
                "x86_64-manylinux_2_17", "--python-version", python, cwd=project)
    assert result.returncode == 0, result.stderr
    found = set()
    for line in result.stderr.splitlines():
        if line.startswith(" + "):
            name, _, version = line[3:].partition("==")
            found.add((name, version))
    return found


def test_a_pylock_toml_uv_exported_is_read_for_the_target(
    tmp_path: Path, fallback_index: SimpleIndex, python313: Path, run_cli: RunCli
) -> None:
    project = uv_project(tmp_path / "agent", fallback_index,
                         ["native", "beta", "gamma; python_version < '3.12'"])
    exported = uv("export", "--format", "pylock.toml", "--no-emit-project", "-o", "pylock.toml",
                  cwd=project)
    assert exported.returncode == 0, exported.stderr
    (project / "uv.lock").unlink()
    text = (project / "pylock.toml").read_text()
    assert 'created-by = "uv"' in text and text.count("native-1.0-") == 2
    result = build_project(project)
    names = zipfile.ZipFile(result.zip_path).namelist()
    assert not any(n.startswith("packages/gamma") for n in names)  # its marker is false
    # what uv installs from the same lock for the same target
    assert {(p["name"], p["version"]) for p in result.packages} == uv_would_install(project) \
        == {("beta", "1.0"), ("native", "1.0")}
    out = import_under(python313, result.zip_path, tmp_path,
                       "import native, beta\nprint(native.answer(), beta.VALUE)\n")
    assert out.split() == ["42", "beta", "1.0"]  # the cp313 wheel, not the pure fallback
    # inspect --provenance names wheels from that lock (it lists every platform's wheels)
    shown = run_cli("inspect", result.zip_path, "--provenance")
    assert shown.exit_code == 0, shown.output
    assert "native-1.0-cp313" in shown.stdout
    # fbundle lock never overwrites another tool's lock
    refused = run_cli("lock", project)
    assert refused.exit_code == 2
    assert "written by uv" in refused.stderr and (project / "pylock.toml").read_text() == text


def pip_style_lock(index: SimpleIndex, wheelhouse: Path, **top: str) -> str:
    """A pylock.toml as `pip lock` writes it: one wheel per package, by URL, sha256."""
    import hashlib

    header = "".join(f"{key.replace('_', '-')} = {value}\n" for key, value in top.items())
    wheel = next(wheelhouse.glob("beta-1.0-*.whl"))
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return (f'lock-version = "1.0"\ncreated-by = "pip"\n{header}\n[[packages]]\nname = "beta"\n'
            f'version = "1.0"\n\n[[packages.wheels]]\nname = "{wheel.name}"\n'
            f'url = "{index.file_url(wheel.name)}"\n\n[packages.wheels.hashes]\n'
            f'sha256 = "{sha}"\n')


def test_a_pip_lock_pylock_is_a_lock_and_ships_pinned_requirements(
    tmp_path: Path, simple_index: SimpleIndex, wheelhouse: Path
) -> None:
    project = make_project(tmp_path / "agent", None, files={
        "pylock.toml": pip_style_lock(simple_index, wheelhouse, requires_python='">=3.12"')})
    result = build_project(project)
    assert zip_text(result.zip_path, "requirements.txt").splitlines()[-1] == "beta==1.0"
    assert "packages/beta-1.0.dist-info/METADATA" in zipfile.ZipFile(result.zip_path).namelist()
    assert_validates_clean(result.zip_path)


def pip_lock(project: Path, index: SimpleIndex) -> None:
    """The real ``pip lock`` of the project's requirements.in, against ``index`` only."""
    locked = subprocess.run(
        [sys.executable, "-m", "pip", "lock", "-q", "-r", "requirements.in", "-o",
         "pylock.toml", "--index-url", index.url],
        cwd=project, capture_output=True, text=True, check=False,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": ""})
    assert locked.returncode == 0, locked.stderr


def test_a_pylock_toml_written_by_pip_lock_builds_what_uv_installs_from_it(
    tmp_path: Path, python313: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real ``pip lock`` (pip 25.1+): one artifact per package, an sdist where the index
    has nothing else. fbundle builds that sdist (pure) and ships the same set uv installs
    from the same file for the target."""
    from tests.support.sdists import backend_wheel, make_sdist
    from tests.support.wheels import make_wheel

    folder = tmp_path / "index"
    backend_wheel(folder)
    make_wheel(folder, "alpha", "1.0", requires=["beta>=1"])
    make_wheel(folder, "beta", "1.0")
    make_sdist(folder, "puresrc", "0.5", requires=("beta",))
    # needs newdep from CPython 3.12 on: a pip lock made on an older Python leaves it out
    make_wheel(folder, "needy", "1.0", requires=["newdep; python_version >= '3.12'"])
    make_wheel(folder, "newdep", "1.0")
    with SimpleIndex(folder) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index.url)  # where the isolated build finds its backend
        project = make_project(tmp_path / "agent", None,
                               files={"requirements.in": "alpha\npuresrc\n"})
        pip_lock(project, index)
        text = (project / "pylock.toml").read_text()
        assert 'created-by = "pip"' in text and "[packages.sdist]" in text
        result = build_project(project)
        assert {(p["name"], p["version"]) for p in result.packages} == \
            uv_would_install(project) == {("alpha", "1.0"), ("beta", "1.0"), ("puresrc", "0.5")}
        if sys.version_info < (3, 12):  # this Python's markers are not the target's
            other = make_project(tmp_path / "other", None, files={"requirements.in": "needy\n"})
            pip_lock(other, index)
            with pytest.raises(BuildError, match="needy 1.0 requires newdep"):
                build_project(other)
    assert_validates_clean(result.zip_path)
    assert zip_text(result.zip_path, "requirements.txt").splitlines()[1:] == \
        ["alpha==1.0", "beta==1.0", "puresrc==0.5"]  # for the service's pip, in remote_build
    out = import_under(python313, result.zip_path, tmp_path,
                       "import alpha, puresrc; print(puresrc.hello())\n")
    assert out.strip() == "puresrc 0.5"


def test_a_pip_lock_made_on_another_python_says_to_lock_with_the_targets(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """``pip lock`` keeps only the wheel of the interpreter it ran on (here a cp311 one):
    the refusal says which Python to run it with."""
    wheel = "native-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    text = ('lock-version = "1.0"\ncreated-by = "pip"\n\n[[packages]]\nname = "native"\n'
            f'version = "1.0"\n\n[[packages.wheels]]\nname = "{wheel}"\n'
            f'url = "http://127.0.0.1:9/files/{wheel}"\n\n[packages.wheels.hashes]\n'
            f'sha256 = "{"0" * 64}"\n')
    project = make_project(tmp_path / "agent", None, files={"pylock.toml": text})
    result = run_cli("build", project)
    assert result.exit_code == 1, result.output
    assert "native 1.0 has 1 wheel(s), none for python_3_13" in result.stderr
    assert "run it with CPython 3.13 on Linux (python3.13 -m pip lock ...)" in result.stderr


@pytest.mark.parametrize(("top", "message"), [
    ({"environments": '["sys_platform == \'win32\'"]'}, "none of its environments"),
    ({"requires_python": '"<3.13"'}, "requires-python '<3.13' excludes python_3_13"),
])
def test_a_foreign_pylock_for_another_environment_is_refused_by_name(
    tmp_path: Path, simple_index: SimpleIndex, wheelhouse: Path, run_cli: RunCli,
    top: dict[str, str], message: str
) -> None:
    project = make_project(tmp_path / "agent", None, files={
        "pylock.toml": pip_style_lock(simple_index, wheelhouse, **top)})
    result = run_cli("build", project)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "regenerate it with pip" in result.stderr


def test_a_uv_project_with_a_local_package_and_an_sdist_only_dependency(
    tmp_path: Path, python313: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uv.lock's path dependency and a dependency with no wheel are built into pure wheels."""
    from tests.support.sdists import backend_wheel, make_sdist, write_project

    folder = tmp_path / "index"
    backend_wheel(folder)
    make_sdist(folder, "onlysdist", "1.0")
    with SimpleIndex(folder) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index.url)  # where the isolated builds find the backend
        project = tmp_path / "agent"
        write_project(project / "libs" / "mylib", "mylib", "0.3")
        uv_project(project, index, ["onlysdist", "mylib"],
                   extra='[tool.uv.sources]\nmylib = { path = "libs/mylib" }\n')
        result = build_project(project)
        out = import_under(python313, result.zip_path, tmp_path, (
            "import mylib, onlysdist\nprint(mylib.hello(), '/', onlysdist.hello())\n"))
        assert out.strip() == "mylib 0.3 / onlysdist 1.0"
        assert_validates_clean(result.zip_path)
        # an edit to the local package is a new input: no stale no-op
        init = project / "libs" / "mylib" / "mylib" / "__init__.py"
        init.write_text(init.read_text().replace("mylib 0.3", "mylib edited"))
        again = build_project(project)
    assert not again.reused and again.sha256 != result.sha256


@pytest.mark.network
def test_a_real_uv_project_builds_its_locked_requests_from_the_package_index(
    tmp_path: Path, python313: Path
) -> None:
    """The issue's case: a uv project locked to requests 2.31.0 ships 2.31.0, not the newest."""
    project = make_project(tmp_path / "agent", None)
    (project / "pyproject.toml").write_text(
        '[project]\nname = "agent"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["requests"]\n')
    # lock as a user would have when 2.31.0 was current: uv keeps a lock's versions
    locked = uv("lock", "--python-preference", "system", cwd=project)
    assert locked.returncode == 0, locked.stderr
    pinned = uv("lock", "--upgrade-package", "requests==2.31.0", "--python-preference", "system",
                cwd=project)
    assert pinned.returncode == 0, pinned.stderr
    assert 'name = "requests"\nversion = "2.31.0"' in (project / "uv.lock").read_text()
    result = build_project(project)
    assert_validates_clean(result.zip_path)
    out = import_under(python313, result.zip_path, tmp_path,
                       "import requests, urllib3\nprint(requests.__version__)\n")
    assert out.strip() == "2.31.0"
    assert zip_text(result.zip_path, "requirements.txt").count("requests==2.31.0") == 1


def test_a_uv_lock_read_once_is_not_exported_again_until_it_changes(
    tmp_path: Path, old_index: SimpleIndex
) -> None:
    """The reading is kept under the hash of pyproject.toml + uv.lock: a rebuild runs no uv."""
    from bundler.projectlocks import uv_lock
    from bundler.runner import run_logged
    from bundler.targets import PythonTarget

    project = uv_project(tmp_path / "agent", old_index, ["beta"])
    calls: list[list[str]] = []

    def counting(argv: Sequence[str], *, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None,
                 timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        return run_logged(argv, cwd=cwd, env=env, timeout=timeout)

    target = PythonTarget.for_runtime("python_3_13")
    first = uv_lock(project, target, runner=counting)
    second = uv_lock(project, target, runner=counting)
    assert len(calls) == 1 and first.lock.to_toml() == second.lock.to_toml()
    assert second.requirements.lines == ["beta==1.0"]
    assert uv("lock", "--upgrade", "--default-index", old_index.url, cwd=project).returncode == 0
    (project / "uv.lock").write_text((project / "uv.lock").read_text() + "\n")
    uv_lock(project, target, runner=counting)
    assert len(calls) == 2


@pytest.fixture(scope="session")
def glibc_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleIndex]:
    """numpy 2.4.4's shape: ``glibcnew`` 2.0 has one wheel, manylinux_2_28 (above the 2.17
    floor), and an sdist (pure here: only the refusal before the build stops it)."""
    from tests.support.sdists import backend_wheel, make_sdist
    from tests.support.wheels import extension_wheel

    folder = tmp_path_factory.mktemp("glibc-wheelhouse")
    backend_wheel(folder)
    extension_wheel(folder, "glibcnew", "2.0", tag="cp313-cp313-manylinux_2_28_x86_64")
    make_sdist(folder, "glibcnew", "2.0")
    with SimpleIndex(folder) as index:
        yield index


def test_a_uv_lock_pinning_a_release_above_the_floor_is_refused_before_any_build(
    tmp_path: Path, glibc_index: SimpleIndex, run_cli: RunCli, python313: Path
) -> None:
    """The trial's uv.lock (numpy 2.4.4, manylinux_2_28 wheels only): one line at once, the
    sdist never fetched (its backend never ran); --glibc 2.28 builds from the locked wheel."""
    project = uv_project(tmp_path / "agent", glibc_index, ["glibcnew==2.0"])
    glibc_index.reset()
    refused = run_cli("build", project)
    assert refused.exit_code == 1, refused.output
    assert refused.stderr.strip() == (
        "error: glibcnew 2.0 (uv.lock) ships only manylinux_2_28 wheels for CPython 3.13, "
        "above the glibc 2.17 floor, and its sdist would build native code — build with "
        "--glibc 2.28, or lock a version with manylinux2014 wheels")
    assert glibc_index.hits["/files/glibcnew-2.0.tar.gz"] == 0
    built = run_cli("build", project, "--glibc", "2.28")
    assert built.exit_code == 0, built.output
    out = import_under(python313, project / "dist" / "agent.zip", tmp_path,
                       "import glibcnew\nprint(glibcnew.answer())\n")
    assert out.strip()
