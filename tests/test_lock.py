"""``fbundle lock`` and the lock's life: PEP 751 shape, parse-back, uv reading our file, a stale
lock naming the changed line, and an offline build with the index gone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bundler.lock import Lock, Pin, WheelRef, requirement_changes
from tests.support import RunCli
from tests.support.index import SimpleIndex
from tests.support.projects import make_project


def test_lock_is_pep_751_with_exact_wheels_and_parses_back_to_itself(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli
) -> None:
    project = make_project(tmp_path / "agent", "alpha\nnative\n")
    result = run_cli("lock", project)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == \
        f"wrote {project / 'pylock.toml'} (4 packages for python_3_13, glibc 2.17)"
    text = (project / "pylock.toml").read_text()
    document = tomllib.loads(text)
    assert document["lock-version"] == "1.0" and document["created-by"] == "fbundle"
    assert [p["name"] for p in document["packages"]] == ["alpha", "beta", "delta", "native"]
    for package in document["packages"]:
        (wheel,) = package["wheels"]
        served = Path(index.folder) / wheel["name"]
        assert wheel["url"] == index.file_url(wheel["name"])
        assert wheel["size"] == served.stat().st_size
        assert re.fullmatch(r"[0-9a-f]{64}", wheel["hashes"]["sha256"])
    native = next(p for p in document["packages"] if p["name"] == "native")
    assert native["wheels"][0]["name"].endswith(
        "-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert document["tool"]["fbundle"] == {
        "runtime": "python_3_13", "glibc": "2.17", "requirements": ["alpha", "native"],
        "requirements-sha256": document["tool"]["fbundle"]["requirements-sha256"],
        "indexes": [f"index-url {index.url}"]}
    assert Lock.from_toml(text).to_toml() == text


def test_uv_reads_our_lock_and_installs_exactly_its_pins(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, python313: Path
) -> None:
    from uv import find_uv_bin

    project = make_project(tmp_path / "agent", "alpha\nlimited\n")
    assert run_cli("lock", project).exit_code == 0
    lock = Lock.read(project / "pylock.toml")
    result = subprocess.run(
        [find_uv_bin(), "pip", "install", "--preview-features", "pylock", "--dry-run",
         "--no-config", "--target", str(tmp_path / "target"), "--python", str(python313),
         "--python-platform", "x86_64-manylinux_2_17", "-r", str(project / "pylock.toml")],
        capture_output=True, text=True, check=False, env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    planned = sorted(re.findall(r"^ \+ (\S+)$", result.stderr + result.stdout, re.M))
    assert planned == [f"{p.key}=={p.version}" for p in lock.sorted_pins()]


wheel_names = st.sampled_from(["a", "b-c", "d_e", "Zz"])
versions = st.sampled_from(["1.0", "2.0.1", "0.1rc1", "10"])
hexes = st.text("0123456789abcdef", min_size=64, max_size=64)


@given(
    pins=st.lists(st.tuples(wheel_names, versions, hexes, st.none() | st.integers(0, 10**9),
                            st.booleans()), unique_by=lambda t: t[0].lower().replace("_", "-")),
    lines=st.none() | st.lists(st.text(st.characters(codec="utf-8"), max_size=20)),
)
def test_any_lock_we_write_reads_back_the_same(
    pins: list[tuple[str, str, str, int | None, bool]], lines: list[str] | None
) -> None:
    lock = Lock(
        [Pin(name, version,
             WheelRef(f"{name.replace('-', '_')}-{version}-py3-none-any.whl", sha, size=size,
                      url=f"https://files.example/{name}" if with_url else None),
             marker='python_version >= "3.13"' if with_url else None)
         for name, version, sha, size, with_url in pins],
        "python_3_13", "2.17", "0" * 64, ">=3.13", requirements=lines)
    text = lock.to_toml()
    back = Lock.from_toml(text)
    assert back.to_toml() == text
    # names are written normalized (PEP 751); everything else comes back as it was
    assert [(p.key, p.version, p.wheel, p.marker) for p in back.sorted_pins()] == \
        [(p.key, p.version, p.wheel, p.marker) for p in lock.sorted_pins()]
    assert back.requirements == lines


def test_stale_lock_names_the_line_that_changed_and_exits_1(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli
) -> None:
    project = make_project(tmp_path / "agent", "beta==1.0\nalpha\n")
    assert run_cli("lock", project).exit_code == 0
    (project / "requirements.txt").write_text("# pinned\nbeta==2.0\nalpha\ndelta\n")
    result = run_cli("build", project)
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        "error: requirements.txt changed since pylock.toml was written "
        "(line 2 changed: 'beta==1.0' -> 'beta==2.0'; line 4 added: 'delta') "
        "— run `fbundle lock` (or build with --update-lock) to re-resolve\n")
    assert not (project / "dist").exists()
    (project / "requirements.txt").write_text("alpha\n")
    result = run_cli("build", project)
    assert "(removed: 'beta==1.0')" in result.stderr
    (project / "requirements.txt").write_text("beta==1.0\nalpha  # why not\n")
    result = run_cli("build", project)
    assert result.exit_code == 1
    assert "(only comments or blank lines)" in result.stderr
    # --update-lock re-resolves and rewrites the lock; the next build is happy with it
    (project / "requirements.txt").write_text("beta==2.0\n")
    assert run_cli("build", project, "--update-lock").exit_code == 0
    assert Lock.read(project / "pylock.toml").requirements == ["beta==2.0"]
    assert run_cli("build", project).exit_code == 0


def test_requirement_changes_pairs_lines_by_project_name() -> None:
    assert requirement_changes(["Foo_Bar>=1", "x"], ["foo-bar>=2", "x"], "x\nfoo-bar>=2\n") == \
        ["line 2 changed: 'Foo_Bar>=1' -> 'foo-bar>=2'"]
    assert requirement_changes(["a", "b"], ["b", "a"]) == ["the order of the lines changed"]


def test_offline_build_from_a_lock_and_a_warm_cache_needs_no_network(
    tmp_path: Path, wheelhouse: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = SimpleIndex(wheelhouse)
    try:
        monkeypatch.setenv("PIP_INDEX_URL", own.url)
        project = make_project(tmp_path / "agent", "alpha\nnative\n")
        assert run_cli("lock", project).exit_code == 0
        online = run_cli("build", project)
        assert online.exit_code == 0, online.output
    finally:
        own.close()  # from here on, connecting to the index is refused
    shutil.rmtree(project / "dist")
    offline = run_cli("build", project, "--offline")
    assert offline.exit_code == 0, offline.output
    assert offline.stdout.splitlines()[-1] == online.stdout.splitlines()[-1]
    # an audit rebuilds from the same lock and cache, so it works offline too
    audited = run_cli("audit", project / "dist" / "agent.zip", project, "--offline")
    assert audited.exit_code == 0, audited.output
    assert audited.stdout.splitlines()[-1].startswith("reproduced ")


def test_a_lock_listing_several_wheels_keeps_the_one_the_target_ranks_first() -> None:
    """uv's pylock lists every wheel that fits (aiohttp: cp313 manylinux and py3-none-any)."""
    from bundler.lock import best_wheel
    from bundler.targets import PythonTarget

    text = (
        'lock-version = "1.0"\n[[packages]]\nname = "aiohttp"\nversion = "3.14.0"\nwheels = [\n'
        '  { name = "aiohttp-3.14.0-py3-none-any.whl",'
        ' hashes = { sha256 = "' + "a" * 64 + '" } },\n'
        '  { name = "aiohttp-3.14.0-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",'
        ' hashes = { sha256 = "' + "b" * 64 + '" } },\n]\n'
    )
    with pytest.raises(Exception, match="lists 2 wheels"):
        Lock.from_toml(text)  # our own locks pin exactly one
    [pin] = Lock.from_toml(text, pick=best_wheel(PythonTarget.for_runtime("python_3_13"))).pins
    assert pin.wheel.filename.startswith("aiohttp-3.14.0-cp313-cp313-manylinux")
    [pure] = Lock.from_toml(text, pick=best_wheel(PythonTarget.for_runtime("python_3_14"))).pins
    assert pure.wheel.filename == "aiohttp-3.14.0-py3-none-any.whl"  # cp313 does not fit 3.14
