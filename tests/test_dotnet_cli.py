"""``fbundle build`` on .NET projects, end to end through the CLI with a stand-in ``dotnet``."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from bundler.dotnet import INSTALL_HINT
from tests.support.fake_dotnet import (
    NATIVE_AT_ROOT,
    NATIVE_WINDOWS_RUNTIMES,
    install_fake_dotnet,
    recorded_calls,
)

RunCli = Callable[..., Result]  # the run_cli fixture from conftest
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "dotnet-agent"


@pytest.fixture
def agent(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "dotnet-agent"))



def test_build_without_dotnet_is_one_line_and_exit_2(run_cli: RunCli, agent: Path,
                                                     bin_dir: Path) -> None:
    result = run_cli("build", agent)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: dotnet is not on PATH; bundled dotnet_10 builds run dotnet publish — "
        f"{INSTALL_HINT}\n")
    assert not (agent / "dist").exists()


def test_build_with_failing_publish_shows_its_last_lines_and_exits_1(
        run_cli: RunCli, agent: Path, bin_dir: Path, tmp_path: Path) -> None:
    install_fake_dotnet(bin_dir, tmp_path / "calls.jsonl", fail=True)
    result = run_cli("build", agent)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: dotnet publish MyAgent.csproj failed (exit 1); "
                                    "its last lines:\n")
    assert "error CS1002: ; expected" in result.stderr
    assert "Traceback" not in result.output
    assert not (agent / "dist").exists()


def test_build_refuses_a_native_windows_dll_and_writes_nothing(
        run_cli: RunCli, agent: Path, bin_dir: Path, tmp_path: Path) -> None:
    install_fake_dotnet(bin_dir, tmp_path / "calls.jsonl", extra=NATIVE_AT_ROOT)
    result = run_cli("build", agent)
    assert result.exit_code == 1
    assert "FB301 e_sqlite3.dll: Windows PE binary" in result.stderr
    assert not (agent / "dist").exists()


def test_build_with_two_project_files_asks_for_project(
        run_cli: RunCli, agent: Path, bin_dir: Path) -> None:
    shutil.copy(agent / "MyAgent.csproj", agent / "Other.csproj")
    result = run_cli("build", agent)
    assert result.exit_code == 2
    assert "several project files (MyAgent.csproj, Other.csproj)" in result.stderr
    assert "--project" in result.stderr


def test_build_bundled_writes_the_publish_output_rooted(
        run_cli: RunCli, agent: Path, bin_dir: Path, tmp_path: Path) -> None:
    calls = tmp_path / "calls.jsonl"
    install_fake_dotnet(bin_dir, calls, extra=NATIVE_WINDOWS_RUNTIMES)
    out = tmp_path / "agent.zip"
    result = run_cli("build", agent, "-o", out)
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        names = sorted(archive.namelist())
        config = json.loads(archive.read("MyAgent.runtimeconfig.json"))
    assert names == ["MyAgent", "MyAgent.deps.json", "MyAgent.dll", "MyAgent.pdb",
                     "MyAgent.runtimeconfig.json", "appsettings.json", "web.config"]
    assert config["runtimeOptions"]["tfm"] == "net10.0"
    assert len(recorded_calls(calls)) == 1
    again = tmp_path / "again.zip"
    assert run_cli("build", agent, "-o", again).exit_code == 0
    assert again.read_bytes() == out.read_bytes()


def test_build_remote_build_zips_the_sources_without_dotnet(
        run_cli: RunCli, agent: Path, bin_dir: Path, tmp_path: Path) -> None:
    for litter in ("bin/Release/net10.0/MyAgent.dll", "obj/project.assets.json",
                   "publish/MyAgent.dll", ".vs/x", "MyAgent.csproj.user"):
        (agent / litter).parent.mkdir(parents=True, exist_ok=True)
        (agent / litter).write_text("litter")
    out = tmp_path / "agent.zip"
    result = run_cli("build", "--mode", "remote_build", agent, "-o", out)
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["MyAgent.csproj", "Program.cs",
                                              "appsettings.json"]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_remote_build_warns_about_files_git_ignores_and_secrets_a_pattern_ships(
        run_cli: RunCli, agent: Path, bin_dir: Path) -> None:
    """remote_build ships the sources as they are, so FB114 and FB112 apply as for Python
    (bundled ships the publish output instead)."""
    import os
    import subprocess

    git = shutil.which("git", path=os.defpath + ":/usr/local/bin")
    assert git is not None
    (bin_dir / "git").symlink_to(git)  # the only tool on this test's PATH

    (agent / "data").mkdir()
    (agent / "data" / "big.bin").write_bytes(b"\0" * 200_000)
    (agent / "deploy.pfx").write_bytes(b"\x30\x82 not really a key store")
    (agent / ".gitignore").write_text("data/\n")
    (agent / ".fbundleignore").write_text("!deploy.pfx\n")
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run([git, "-C", str(agent), "init", "-q"], check=True, env=env)
    result = run_cli("build", "--mode", "remote_build", agent, "--json")
    assert result.exit_code == 0, result.output
    warned = [line.split()[1:3] for line in result.stderr.splitlines()
              if line.startswith("warning: FB1")]
    assert warned == [["FB114", "data/big.bin:"], ["FB112", "deploy.pfx:"]]
    assert "1 file that git ignores would ship (0.2 MB)" in result.stderr
    assert sorted(w["code"] for w in json.loads(result.stdout)["warnings"]) == ["FB112", "FB114"]
    with zipfile.ZipFile(agent / "dist" / "dotnet-agent.zip") as archive:
        assert {"data/big.bin", "deploy.pfx"} <= set(archive.namelist())
