"""The example .NET agent in fixtures/dotnet-agent: its remote_build bundle (no SDK needed), and
a bundled build with the real .NET SDK when ``dotnet`` is on PATH (skipped otherwise — the only
skip in the suite)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bundler.dotnet import find_project, pe_kind, plan_dotnet, read_project
from bundler.model import content_digest
from bundler.project import load_project

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "dotnet-agent"


@pytest.fixture
def agent(tmp_path: Path) -> Path:
    """A copy, so a real publish's bin/ and obj/ never land in the repository."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "dotnet-agent"))


def test_fixture_declares_a_bundled_dotnet_10_agent_for_its_assembly() -> None:
    spec = load_project(FIXTURE)
    project = read_project(find_project(FIXTURE))
    assert (spec.runtime, spec.mode) == ("dotnet_10", "bundled")
    assert project.frameworks == ("net10.0",)
    assert spec.entry_point == ["dotnet", project.dll] == ["dotnet", "MyAgent.dll"]
    assert 'Sdk="Microsoft.NET.Sdk.Web"' in project.path.read_text()
    program = (FIXTURE / "Program.cs").read_text()
    assert '"/readiness"' in program and '"/responses"' in program


def test_fixture_remote_build_bundle_is_its_sources(agent: Path) -> None:
    (agent / "obj").mkdir()
    (agent / "obj" / "project.assets.json").write_text("{}")
    spec = load_project(agent, mode="remote_build")
    assert sorted(e.name for e in plan_dotnet(spec)) == [
        "MyAgent.csproj", "Program.cs", "appsettings.json"]


@pytest.mark.skipif(shutil.which("dotnet") is None, reason="the .NET SDK is not on PATH")
def test_real_sdk_publishes_the_fixture_rooted_and_reproducibly(agent: Path) -> None:
    spec = load_project(agent)
    first = plan_dotnet(spec)
    by_name = {e.name: e for e in first}
    for name in ("MyAgent.dll", "MyAgent.runtimeconfig.json", "MyAgent.deps.json",
                 "appsettings.json"):
        assert name in by_name, sorted(by_name)
    assert pe_kind(by_name["MyAgent.dll"].read()) == "managed"
    options = json.loads(by_name["MyAgent.runtimeconfig.json"].read())["runtimeOptions"]
    assert options["tfm"] == "net10.0"
    assert not any(n.startswith(("runtimes/win", "runtimes/osx")) for n in by_name)
    second = plan_dotnet(spec)
    assert content_digest(first) == content_digest(second)
