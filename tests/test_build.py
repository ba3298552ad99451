"""``fbundle build`` end to end: real uv/pip against a loopback index of wheels built in-session."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bundler.build import build_project
from bundler.indexes import IndexConfig
from bundler.model import file_sha256
from bundler.options import BuildOptions
from bundler.plan import plan_project
from tests.support import RunCli
from tests.support.index import SimpleIndex
from tests.support.projects import assert_validates_clean, import_under, make_project


def names(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.namelist()


def test_bundled_build_resolves_for_the_target_and_imports_under_cpython_313(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, python313: Path
) -> None:
    project = make_project(tmp_path / "agent", "alpha\nnative\nlimited\nwithdata\n")
    result = run_cli("build", project)
    assert result.exit_code == 0, result.output
    zip_path = project / "dist" / "agent.zip"
    sha = result.stdout.strip().splitlines()[-1]
    assert sha == file_sha256(zip_path)
    assert (project / "dist" / "agent.zip.sha256").read_text() == f"{sha}  agent.zip\n"
    listed = names(zip_path)
    assert "main.py" in listed and "requirements.txt" in listed
    assert "metadata.json" not in listed
    # beta 2.0 (newest), delta (python_version >= 3.13), never gamma (< 3.12: host-only)
    assert "packages/beta-2.0.dist-info/METADATA" in listed
    assert "packages/delta/__init__.py" in listed
    assert not any(name.startswith("packages/gamma") for name in listed)
    assert not any(name.endswith((".pyc", ".whl")) or "__pycache__" in name for name in listed)
    assert_validates_clean(zip_path)
    out = import_under(python313, zip_path, tmp_path, (
        "import alpha, beta, delta, native, limited, withdata, withdata_extra\n"
        "print(beta.VALUE, native.answer(), limited.answer(), withdata_extra.EXTRA)\n"
    ))
    assert out.split() == ["beta", "2.0", "42", "42", "True"]


def test_wheel_layout_follows_installer_scheme_rules(tmp_path: Path, index: SimpleIndex) -> None:
    project = make_project(tmp_path / "agent", "withdata\n")
    result = build_project(project)
    listed = names(result.zip_path)
    assert "packages/withdata_extra.py" in listed  # .data/purelib -> packages/
    assert not any("withdata-tool" in n or "share/withdata" in n for n in listed)  # scripts, data
    assert "packages/withdata-1.0.dist-info/entry_points.txt" in listed
    with zipfile.ZipFile(result.zip_path) as archive:
        record = archive.read("packages/withdata-1.0.dist-info/RECORD").decode()
        assert archive.read("packages/withdata-1.0.dist-info/INSTALLER") == b"fbundle\n"
    record_paths = [line.split(",")[0] for line in record.splitlines()]
    assert "withdata_extra.py" in record_paths
    assert record_paths[-1] == "withdata-1.0.dist-info/RECORD"
    assert not any(".data/" in path for path in record_paths)


def _copy_with_other_metadata(source: Path, destination: Path, mtime: int) -> None:
    """The same files, created in reverse order, with other mtimes."""
    files = sorted(p for p in source.rglob("*") if p.is_file() and "dist" not in p.parts)
    for path in reversed(files):
        target = destination / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
        os.utime(target, (mtime, mtime))


def test_same_inputs_give_byte_identical_zips_whatever_path_mtime_umask_or_order(
    tmp_path: Path, index: SimpleIndex
) -> None:
    first = make_project(tmp_path / "one" / "agent", "alpha\nnative\n", files={
        "pkg/b.py": "B = 2\n", "pkg/a.py": "A = 1\n", "tool.sh": "#!/bin/sh\n"})
    (first / "tool.sh").chmod(0o775)
    second = tmp_path / "elsewhere" / "deeper" / "agent"
    old = os.umask(0o077)
    try:
        _copy_with_other_metadata(first, second, 1_700_000_000)
    finally:
        os.umask(old)
    (second / "tool.sh").chmod(0o700)  # only the execute bit survives
    one = build_project(first)
    two = build_project(second)
    assert one.zip_path.read_bytes() == two.zip_path.read_bytes()
    assert one.content_digest == two.content_digest
    with zipfile.ZipFile(one.zip_path) as archive:
        infos = {i.filename: i for i in archive.infolist()}
    assert infos["tool.sh"].external_attr >> 16 == 0o100755
    assert infos["main.py"].external_attr >> 16 == 0o100644
    assert {i.date_time for i in infos.values()} == {(1980, 1, 1, 0, 0, 0)}


def test_source_date_epoch_sets_the_one_timestamp(
    tmp_path: Path, index: SimpleIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # 2023-11-14T22:13:20Z
    result = build_project(make_project(tmp_path / "agent", "beta==1.0\n"))
    with zipfile.ZipFile(result.zip_path) as archive:
        assert {i.date_time for i in archive.infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_the_no_op_check_reads_source_date_epoch_as_the_zip_does(
    tmp_path: Path, index: SimpleIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An epoch before 1980 is clamped to 1980, so the zip is the one already there (reused);
    a later epoch changes every timestamp (rebuilt)."""
    project = make_project(tmp_path / "agent", "beta==1.0\n")
    first = build_project(project)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert build_project(project).reused
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    later = build_project(project)
    assert not later.reused and later.sha256 != first.sha256


def test_pip_configuration_is_read_once_per_build(
    tmp_path: Path, index: SimpleIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resolution and the downloads use the one reading (a pip.conf edited mid-build
    cannot send them to two indexes)."""
    from bundler.indexes import read_pip_config

    reads: list[object] = []

    def counted(*args: Any) -> IndexConfig:
        reads.append(args)
        return read_pip_config(*args)

    monkeypatch.setattr("bundler.plan.read_pip_config", counted)
    result = build_project(make_project(tmp_path / "agent", "alpha\n"),
                           BuildOptions(refresh=True))
    assert result.packages and len(reads) == 1


def test_pip_resolver_gives_the_same_set_as_uv(tmp_path: Path, index: SimpleIndex) -> None:
    project = make_project(tmp_path / "agent", "alpha\nnative\n")
    by_uv = plan_project(project, BuildOptions(resolver="uv")).packages
    by_pip = plan_project(project, BuildOptions(resolver="pip")).packages
    assert [p["name"] for p in by_pip] == [p["name"] for p in by_uv] == \
        ["alpha", "beta", "delta", "native"]
    assert by_pip == by_uv


def test_rebuild_with_nothing_changed_reuses_the_zip(tmp_path: Path, index: SimpleIndex) -> None:
    project = make_project(tmp_path / "agent", "alpha\n")
    first = build_project(project)
    mtime = first.zip_path.stat().st_mtime_ns
    again = build_project(project)
    assert again.reused and again.sha256 == first.sha256
    assert first.zip_path.stat().st_mtime_ns == mtime
    (project / "main.py").write_text("print('changed')\n")
    changed = build_project(project)
    assert not changed.reused and changed.sha256 != first.sha256


def test_json_output_describes_the_bundle(
        tmp_path: Path, index: SimpleIndex, run_cli: RunCli) -> None:
    project = make_project(tmp_path / "agent", "beta==1.0\n")
    result = run_cli("build", project, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["sha256"] == file_sha256(Path(data["path"]))
    assert data["packages"][0]["name"] == "beta" and data["packages"][0]["version"] == "1.0"
    assert data["entries"] == len(names(Path(data["path"])))


def test_remote_build_ships_sources_and_requirements_only(tmp_path: Path, run_cli: RunCli) -> None:
    project = make_project(tmp_path / "agent", "some-package>=1\n", mode="remote_build",
                           files={"app/util.py": "x = 1\n"})
    result = run_cli("build", project, "--mode", "remote_build")
    assert result.exit_code == 0, result.output
    listed = names(project / "dist" / "agent.zip")
    assert listed == ["app/util.py", "main.py", "requirements.txt"]
    assert_validates_clean(project / "dist" / "agent.zip", mode="remote_build")


def test_remote_build_refuses_a_leftover_packages_folder(tmp_path: Path, run_cli: RunCli) -> None:
    project = make_project(tmp_path / "agent", "", mode="remote_build",
                           files={"packages/leftover/__init__.py": "x = 1\n"})
    result = run_cli("build", project)
    assert result.exit_code == 1, result.output
    assert "packages/" in result.stderr
    assert not (project / "dist" / "agent.zip").exists()


def test_default_excludes_and_ignore_files(tmp_path: Path, run_cli: RunCli) -> None:
    project = make_project(tmp_path / "agent", "", mode="remote_build", files={
        ".git/config": "x", ".venv/bin/python": "x", "__pycache__/m.cpython-313.pyc": "x",
        "pkg/__pycache__/a.pyc": "x", ".env": "SECRET=1", ".env.local": "SECRET=2",
        "node_modules/x.js": "x", "notes/draft.md": "x", "keep.txt": "x", "data/big.bin": "x",
        ".fbundleignore": "notes/\n", ".agentignore": "data/\n",
    })
    result = run_cli("build", project, "--list")
    assert result.exit_code == 0, result.output
    included = [line[2:].split("  ")[0] for line in result.stdout.splitlines()
                if line.startswith("+ ")]
    assert included == ["keep.txt", "main.py", "requirements.txt"]
    assert "- notes/  (matched an ignore file)" in result.stdout
    assert "- .env  (looks like a secret: an environment file" in result.stdout


def test_symlink_out_of_the_project_is_refused_with_its_name(
        tmp_path: Path, run_cli: RunCli) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("x")
    project = make_project(tmp_path / "agent", "", mode="remote_build")
    (project / "link.txt").symlink_to(outside)
    (project / "inside.py").symlink_to(project / "main.py")
    result = run_cli("build", project)
    assert result.exit_code == 2
    assert "link.txt is a symlink to" in result.stderr and "outside the project" in result.stderr
    (project / "link.txt").unlink()
    result = run_cli("build", project)
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(project / "dist" / "agent.zip") as archive:
        assert archive.read("inside.py") == archive.read("main.py")


def test_floor_too_low_names_the_package_the_newest_version_and_the_tag(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli
) -> None:
    project = make_project(tmp_path / "agent", "modern>=2\n")
    result = run_cli("build", project)
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "modern 2.0 ships only manylinux_2_28_x86_64 wheels" in line
    assert "the newest with a wheel for CPython 3.13 manylinux glibc 2.17 is 1.0" in line
    assert "--glibc 2.28" in line
    # unpinned, the resolver picks the newest version that fits the floor
    (project / "requirements.txt").write_text("modern\n")
    assert plan_project(project).packages[0]["version"] == "1.0"
    # and raising the floor knowingly gets the newer one
    assert plan_project(project, BuildOptions(glibc="2.28")).packages[0]["version"] == "2.0"


@pytest.mark.parametrize("package", ["winonly", "maconly", "freethreaded", "oldabi"])
def test_package_without_a_wheel_for_the_target_is_a_clear_error(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, package: str
) -> None:
    result = run_cli("build", make_project(tmp_path / "agent", f"{package}\n"))
    assert result.exit_code == 2, result.output
    assert package in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda p: shutil.rmtree(p), "no such project folder"),
        (lambda p: (p / "requirements.txt").unlink(), "no requirements.txt"),
        (lambda p: (p / "metadata.json").unlink(), "no agent definition (metadata.json, agent"),
        (lambda p: (p / "metadata.json").write_text("{nope"), "not valid JSON"),
        (lambda p: (p / "metadata.json").write_text(json.dumps({"definition": {
            "kind": "hosted", "code_configuration": {
                "runtime": "python_3_9", "entry_point": ["python", "main.py"],
                "dependency_resolution": "bundled"}}})),
         "definition.code_configuration.runtime is 'python_3_9'"),
        (lambda p: (p / "requirements.txt").write_text("not a requirement!!\n"),
         "is not a valid requirement"),
        (lambda p: (p / "requirements.txt").write_text("no-such-package-anywhere\n"),
         "no-such-package-anywhere"),
        (lambda p: os.close(os.open(os.fsencode(p) + b"/bad\xff.py", os.O_CREAT | os.O_WRONLY)),
         "not valid UTF-8"),
    ],
    ids=["missing-project", "no-requirements", "no-metadata", "bad-json", "unknown-runtime",
         "bad-requirement", "unresolvable", "non-utf8-name"],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, setup: Callable[[Path], object],
    expected: str,
) -> None:
    project = make_project(tmp_path / "agent", "beta\n")
    setup(project)
    result = run_cli("build", project)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


def test_unknown_runtime_flag_is_a_usage_error(tmp_path: Path, run_cli: RunCli) -> None:
    result = run_cli("build", make_project(tmp_path / "agent"), "--runtime", "python_3_9")
    assert result.exit_code == 2
    assert "python_3_9" in result.output


def test_tampered_cache_entry_is_dropped_and_fetched_again(
    tmp_path: Path, index: SimpleIndex, isolated_env: Path
) -> None:
    project = make_project(tmp_path / "agent", "beta==1.0\n")
    first = build_project(project)
    cached = next((isolated_env / "fbundle" / "wheels").rglob("beta-1.0-*.whl"))
    cached.write_bytes(cached.read_bytes()[:-10])  # truncated
    index.reset()
    shutil.rmtree(project / "dist")
    second = build_project(project)
    assert second.sha256 == first.sha256
    assert any(path.endswith(".whl") for path in index.hits), index.hits


def test_offline_build_uses_the_lock_and_cache_only(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, isolated_env: Path
) -> None:
    project = make_project(tmp_path / "agent", "alpha\n")
    assert run_cli("lock", project).exit_code == 0
    online = build_project(project)
    shutil.rmtree(project / "dist")
    index.reset()
    index.fail_with = 500  # any request now fails
    offline = build_project(project, BuildOptions(offline=True))
    assert offline.sha256 == online.sha256
    assert index.total == 0
    # an unchanged zip needs no wheels at all: the no-op is noticed from hashes
    shutil.rmtree(isolated_env / "fbundle")
    assert build_project(project, BuildOptions(offline=True)).reused
    # a cold cache offline is a clear error, not a hang
    shutil.rmtree(project / "dist")
    result = run_cli("build", project, "--offline")
    assert result.exit_code == 1
    assert "not in the cache and --offline forbids fetching it" in result.stderr


def test_pyproject_dependencies_are_used_without_requirements_txt(
    tmp_path: Path, index: SimpleIndex
) -> None:
    project = make_project(tmp_path / "agent", None, files={
        "pyproject.toml": '[project]\nname = "agent"\nversion = "1"\ndependencies = ["beta<2"]\n'})
    result = build_project(project)
    with zipfile.ZipFile(result.zip_path) as archive:
        assert archive.read("requirements.txt") == b"beta==1.0\n"
    assert_validates_clean(result.zip_path)


def test_init_scaffolds_a_project_that_builds(tmp_path: Path, run_cli: RunCli) -> None:
    result = run_cli("init", tmp_path / "new-agent", "--mode", "remote_build")
    assert result.exit_code == 0, result.output
    built = run_cli("build", tmp_path / "new-agent")
    assert built.exit_code == 0, built.output
    assert_validates_clean(tmp_path / "new-agent" / "dist" / "new-agent.zip", mode="remote_build")
    again = run_cli("init", tmp_path / "new-agent")
    assert again.exit_code == 0 and "already has an agent definition" in again.stdout


@pytest.mark.network
def test_real_agent_from_the_package_index_imports_under_cpython_313(
    tmp_path: Path, python313: Path
) -> None:
    project = make_project(tmp_path / "agent", "pyyaml==6.0.2\nidna==3.10\npydantic==2.9.2\n")
    result = build_project(project)
    assert_validates_clean(result.zip_path)
    out = import_under(python313, result.zip_path, tmp_path, (
        "import yaml, idna, pydantic, pydantic_core\n"
        "print(yaml.__with_libyaml__, idna.encode('ü.example').decode(), pydantic.VERSION)\n"
    ))
    assert out.split() == ["True", "xn--tda.example", "2.9.2"]
    again = build_project(project)
    assert again.sha256 == result.sha256


def test_hash_seed_and_locale_do_not_change_the_zip(tmp_path: Path, index: SimpleIndex) -> None:
    """Two separate processes with other PYTHONHASHSEED, locale and umask build the same bytes."""
    import subprocess
    import sys

    project = make_project(tmp_path / "agent", "alpha\n", files={
        "zz.py": "", "é/ü.py": "x = 'ü'\n", "A.py": "", "a_.py": ""})
    shas = []
    for seed, lang, out in (("1", "C.UTF-8", "one.zip"), ("4242", "en_US.UTF-8", "two.zip")):
        env = {**os.environ, "PYTHONHASHSEED": seed, "LANG": lang, "LC_ALL": lang}
        result = subprocess.run(
            [sys.executable, "-c", f"import os; os.umask(0o{7 if seed == '1' else 22}); "
             "from bundler.cli import main; main()", "build", str(project), "-o",
             str(tmp_path / out)],
            env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        shas.append(result.stdout.strip().splitlines()[-1])
    assert shas[0] == shas[1]
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()


def test_python_314_target_takes_abi3_and_pure_wheels_never_cp313(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, python314: Path
) -> None:
    project = make_project(tmp_path / "agent", "limited\nbeta\n", runtime="python_3_14")
    result = build_project(project)
    assert [p["name"] for p in result.packages] == ["beta", "limited"]
    assert_validates_clean(result.zip_path, runtime="python_3_14")
    out = import_under(python314, result.zip_path, tmp_path, (
        "import sys, beta, limited\n"
        "print('%d.%d' % sys.version_info[:2], beta.VALUE, limited.answer())\n"
    ))
    assert out.split() == ["3.14", "beta", "2.0", "42"]  # the abi3 .so loads under 3.14
    (project / "requirements.txt").write_text("native\n")  # cp313-only: nothing for 3.14
    failed = run_cli("build", project)
    assert failed.exit_code == 2
    assert "native" in failed.stderr


def test_bundled_agent_without_dependencies_builds_and_validates(tmp_path: Path) -> None:
    project = make_project(tmp_path / "agent", "# nothing yet\n")
    result = build_project(project)
    assert names(result.zip_path) == ["main.py", "requirements.txt"]
    assert_validates_clean(result.zip_path)


def test_project_that_would_zip_a_wrapper_folder_is_refused_with_its_name(
    tmp_path: Path, run_cli: RunCli
) -> None:
    project = tmp_path / "outer"
    make_project(project / "my-agent", "", mode="remote_build")
    (project / "metadata.json").write_text((project / "my-agent" / "metadata.json").read_text())
    (project / "my-agent" / "metadata.json").unlink()
    (project / "requirements.txt").write_text("")
    result = run_cli("build", project)
    assert result.exit_code == 1, result.output
    assert "main.py" in result.stderr
    assert not (project / "dist").exists()


def test_index_settings_come_from_pip_conf(
    tmp_path: Path, simple_index: SimpleIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "pip.conf"
    config.write_text(f"[global]\nindex-url = {simple_index.url}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    result = build_project(make_project(tmp_path / "agent", "beta==1.0\n"))
    assert result.packages[0]["version"] == "1.0"
    assert any("beta" in path for path in simple_index.hits)


def simple_page_hits(index: SimpleIndex) -> int:
    return sum(count for path, count in index.hits.items() if path.startswith("/simple"))


def test_a_recent_resolution_is_reused_and_refresh_asks_again(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "agent", "alpha\n")
    first = build_project(project)
    asked = simple_page_hits(index)
    assert asked > 0
    (project / "main.py").write_text("print('changed')\n")
    second = build_project(project)  # within the window: no index page is asked for again
    assert simple_page_hits(index) == asked
    assert second.packages == first.packages
    assert run_cli("build", project, "--refresh").exit_code == 0
    assert simple_page_hits(index) > asked
    asked = simple_page_hits(index)
    monkeypatch.setenv("FBUNDLE_RESOLUTION_TTL", "0")  # the window turned off
    build_project(project)
    assert simple_page_hits(index) > asked
    (project / "requirements.txt").write_text("alpha\nbeta==1.0\n")  # other requirements
    assert {p["name"]: p["version"] for p in build_project(project).packages}["beta"] == "1.0"


def test_offline_without_a_lock_uses_the_last_resolution_whatever_its_age(
    tmp_path: Path, index: SimpleIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "agent", "alpha\n")
    online = build_project(project)
    shutil.rmtree(project / "dist")
    monkeypatch.setenv("FBUNDLE_RESOLUTION_TTL", "0")
    index.reset()
    index.fail_with = 500
    offline = build_project(project, BuildOptions(offline=True))
    assert offline.sha256 == online.sha256
    assert index.total == 0


def test_wheel_whose_record_does_not_match_its_bytes_is_refused(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.wheels import make_wheel

    house = tmp_path / "house"
    house.mkdir()
    make_wheel(house, "liar", "1.0", bad_record=True)
    with SimpleIndex(house) as liar_index:
        monkeypatch.setenv("PIP_INDEX_URL", liar_index.url)
        result = run_cli("build", make_project(tmp_path / "agent", "liar\n"))
    assert result.exit_code == 1, result.output
    assert "liar-1.0-py3-none-any.whl is not a valid wheel" in result.stderr
    assert "didn't match RECORD" in result.stderr


def test_the_definition_as_built_travels_beside_the_zip(
    tmp_path: Path, run_cli: RunCli, python314: Path
) -> None:
    project = make_project(tmp_path / "agent", "", mode="remote_build")
    assert run_cli("build", project, "--runtime", "python_3_14", "-o",
                   project / "out" / "agent.zip").exit_code == 0
    out = import_under(python314, project / "out" / "agent.zip", tmp_path,
                       "import runpy; runpy.run_path('main.py', run_name='__main__')\n")
    assert out.strip() == "hello from (3, 14)"
    beside = project / "out" / "agent.metadata.json"
    code = json.loads(beside.read_text())["definition"]["code_configuration"]
    assert code["runtime"] == "python_3_14"  # the flag, as the bundle was built for it
    assert "out/agent.metadata.json" not in names(project / "out" / "agent.zip")
    result = run_cli("validate", project / "out" / "agent.zip")
    assert result.exit_code == 0, result.output
    assert "python_3_14 remote_build" in result.stdout
    again = run_cli("build", project, "--runtime", "python_3_14", "-o",
                    project / "out" / "agent.zip")
    assert again.stdout.startswith("unchanged")  # its own sidecars are not inputs


def test_the_example_agent_is_what_init_writes() -> None:
    """fixtures/hello-agent was made with `fbundle init` (plus its requirements and lock)."""
    from bundler.commands.build import HELLO_MAIN

    fixture = Path(__file__).resolve().parent.parent / "fixtures" / "hello-agent"
    assert (fixture / "main.py").read_text() == HELLO_MAIN


@pytest.mark.network
def test_the_benchmark_agent_framework_agent_builds_and_imports_under_cpython_313(
    tmp_path: Path, python313: Path
) -> None:
    """A real agent-framework + azure-identity + azure-ai-projects agent, 48 wheels from PyPI."""
    requirements = Path(__file__).resolve().parent.parent / "benchmarks" / "agent" / \
        "requirements.txt"
    project = make_project(tmp_path / "agent", requirements.read_text())
    result = build_project(project)
    assert len(result.packages) > 40
    assert_validates_clean(result.zip_path)
    out = import_under(python313, result.zip_path, tmp_path, (
        "import agent_framework, azure.identity, azure.ai.projects, yaml\n"
        "from importlib.metadata import version\n"
        "print(version('azure-identity'), yaml.__with_libyaml__)\n"
    ))
    assert out.split()[1] == "True"


def test_a_pure_python_tagged_linux_wheel_fits_like_pip_says(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, python313: Path
) -> None:
    """``py3-none-manylinux_2_17_x86_64`` (a pure package shipping a Linux helper executable,
    as SDKs that bundle a CLI do) is a tag pip's and uv's compatible_tags accept for CPython
    3.13 on manylinux2014; uv picks it, so the bundle must take it too."""
    from tests.support.binaries import elf
    from tests.support.wheels import make_wheel

    house = tmp_path / "house"
    house.mkdir()
    make_wheel(house, "clitool", "1.0", tag="py3-none-manylinux_2_17_x86_64",
               files={"clitool/__init__.py": b"VALUE = 'clitool 1.0'\n",
                      "clitool/_bundled/tool": elf()},
               executable={"clitool/_bundled/tool"})
    with SimpleIndex(house) as own:
        monkeypatch.setenv("PIP_INDEX_URL", own.url)
        project = make_project(tmp_path / "agent", "clitool\n")
        result = run_cli("build", project)
    assert result.exit_code == 0, result.output
    zip_path = project / "dist" / "agent.zip"
    assert "packages/clitool/_bundled/tool" in names(zip_path)
    out = import_under(python313, zip_path, tmp_path, "import clitool; print(clitool.VALUE)\n")
    assert out.strip() == "clitool 1.0"


def test_a_glibc_floor_between_uvs_platform_names_still_resolves(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli
) -> None:
    """``--glibc 2.25`` (what FB307 suggests for a binary needing GLIBC_2.25) is a floor uv has
    no ``--python-platform`` name for (it knows manylinux_2_17, _2_28 and _2_31 on): uv is
    asked at the nearest floor below, so what it picks still fits, and checks use 2.25."""
    project = make_project(tmp_path / "agent", "alpha\nmodern\n")
    result = run_cli("build", project, "--glibc", "2.25")
    assert result.exit_code == 0, result.output
    listed = names(project / "dist" / "agent.zip")
    assert "packages/alpha/__init__.py" in listed
    assert any(name.startswith("packages/modern-1.0.dist-info/") for name in listed)


def test_two_wheels_shipping_one_path_settle_as_pip_install_target_does(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, python313: Path
) -> None:
    """confusables and ecoji both ship a top-level ``tests/__init__.py`` (the redteam extra of a
    Foundry sample): pip installs both, the later over the earlier. Identical bytes are one
    file, said nothing about; different bytes, the name that sorts last ships, one warning line
    names both, and the loser's RECORD drops the row, so the bundle validates clean and
    provenance names the winner."""
    from tests.support.wheels import make_wheel

    house = tmp_path / "house"
    house.mkdir()
    make_wheel(house, "confusables", "1.2.0", files={
        "confusables/__init__.py": b"VALUE = 'confusables'\n",
        "tests/__init__.py": b"WHO = 'confusables'\n", "LICENSE.txt": b"same\n"})
    make_wheel(house, "ecoji", "0.1.1", files={
        "ecoji/__init__.py": b"VALUE = 'ecoji'\n",
        "tests/__init__.py": b"WHO = 'ecoji'\n", "LICENSE.txt": b"same\n"})
    with SimpleIndex(house) as own:
        monkeypatch.setenv("PIP_INDEX_URL", own.url)
        project = make_project(tmp_path / "agent", "ecoji\nconfusables\n")
        result = run_cli("build", project)
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if "comes from both" in line]
    assert warned == ["warning: packages/tests/__init__.py comes from both confusables 1.2.0 "
                      "and ecoji 0.1.1 with different bytes: ecoji 0.1.1's copy ships (the "
                      "distribution that sorts last wins, as a later pip install overwrites)"]
    zip_path = project / "dist" / "agent.zip"
    with zipfile.ZipFile(zip_path) as archive:
        listed = archive.namelist()
        loser = archive.read("packages/confusables-1.2.0.dist-info/RECORD").decode()
        winner = archive.read("packages/ecoji-0.1.1.dist-info/RECORD").decode()
    assert listed.count("packages/tests/__init__.py") == 1
    assert "tests/__init__.py," not in loser and "tests/__init__.py," in winner
    assert "LICENSE.txt," in loser and "LICENSE.txt," in winner  # identical: both list it
    assert_validates_clean(zip_path)
    out = import_under(python313, zip_path, tmp_path, "import tests; print(tests.WHO)\n")
    assert out.strip() == "ecoji"
    shown = json.loads(run_cli("inspect", zip_path, "--provenance", "--json").stdout)
    owners = {f["name"]: f for f in shown["provenance"]["files"]}
    assert owners["packages/tests/__init__.py"]["distribution"] == "ecoji"
    assert owners["packages/tests/__init__.py"]["status"] == "ok"
