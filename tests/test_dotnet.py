"""The dotnet_10 wrapper, driven through a stand-in ``dotnet`` on PATH (tests/support/fake_dotnet).

Nothing below the library is patched: ``plan_dotnet`` finds the stand-in on PATH and starts it
as a real subprocess, so the argv it records is the argv the SDK would get.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from bundler.build import build_project
from bundler.dotnet import (
    REMOTE_BUILD_EXCLUDES,
    SubprocessRunner,
    pe_kind,
    plan_dotnet,
    read_project,
)
from bundler.errors import BuildError, UsageError
from bundler.identity import definition_path
from bundler.model import Entry
from bundler.project import ProjectSpec, example_metadata, load_project
from bundler.write import write_zip
from tests.support.binaries import elf, pe_dll
from tests.support.fake_dotnet import (
    NATIVE_AT_ROOT,
    NATIVE_LINUX_RUNTIME,
    NATIVE_WINDOWS_RUNTIMES,
    install_fake_dotnet,
    recorded_calls,
)

CSPROJ = """<Project Sdk="Microsoft.NET.Sdk.Web">
  <PropertyGroup>
    <{element}>{tfm}</{element}>
    <Nullable>enable</Nullable>{extra}
  </PropertyGroup>
</Project>
"""


def make_project(root: Path, *, mode: str = "bundled", name: str = "MyAgent",
                 tfm: str = "net10.0", element: str = "TargetFramework", extra: str = "",
                 entry_point: list[str] | None = None) -> ProjectSpec:
    """A small ASP.NET project folder, with the build litter a real checkout accumulates."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.csproj").write_text(
        CSPROJ.format(element=element, tfm=tfm, extra=extra), encoding="utf-8")
    (root / "Program.cs").write_text('var app = WebApplication.Create(args);\napp.Run();\n')
    (root / "appsettings.json").write_text("{}\n")
    (root / "Agents").mkdir(exist_ok=True)
    (root / "Agents" / "Echo.cs").write_text("namespace MyAgent;\n")
    for litter in ("bin/Release/net10.0/MyAgent.dll", "obj/project.assets.json",
                   "publish/MyAgent.dll", ".vs/MyAgent/v17/.suo", f"{name}.csproj.user",
                   "Agents/obj/stale.cs"):
        path = root / litter
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"build output")
    metadata = example_metadata("dotnet_10", mode, entry_point or ["dotnet", f"{name}.dll"])
    (root / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    return load_project(root)



@pytest.fixture
def calls(tmp_path: Path) -> Path:
    return tmp_path / "dotnet-calls.jsonl"


def names(entries: list[Entry]) -> list[str]:
    return sorted(e.name for e in entries)


def test_bundled_runs_publish_with_the_exact_flags(tmp_path: Path, bin_dir: Path,
                                                   calls: Path) -> None:
    dotnet = install_fake_dotnet(bin_dir, calls)
    spec = make_project(tmp_path / "agent")
    plan_dotnet(spec)
    [argv] = recorded_calls(calls)
    out = argv[argv.index("-o") + 1]
    assert argv == [
        "publish", str((tmp_path / "agent" / "MyAgent.csproj").resolve()),
        "-c", "Release", "-r", "linux-x64", "--self-contained", "false", "-o", out,
        "-p:Deterministic=true", "-p:ContinuousIntegrationBuild=true", "--nologo",
        "-v", "quiet",
    ]
    assert Path(out).name == "publish" and not Path(out).exists()  # fresh, and cleaned up
    assert not Path(out).is_relative_to(tmp_path / "agent")
    assert dotnet.exists()


def test_bundled_entries_are_the_publish_output_rooted_at_the_zip_root(
        tmp_path: Path, bin_dir: Path, calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls)
    entries = plan_dotnet(make_project(tmp_path / "agent"))
    assert names(entries) == [
        "MyAgent", "MyAgent.deps.json", "MyAgent.dll", "MyAgent.pdb",
        "MyAgent.runtimeconfig.json", "appsettings.json", "web.config",
    ]
    by_name = {e.name: e for e in entries}
    assert pe_kind(by_name["MyAgent.dll"].read()) == "managed"
    assert by_name["MyAgent"].mode == 0o755 and by_name["MyAgent.dll"].mode == 0o644
    assert {e.origin for e in entries} == {"dotnet-publish"}
    config = json.loads(by_name["MyAgent.runtimeconfig.json"].read())
    assert config["runtimeOptions"]["tfm"] == "net10.0"
    # Sources never ride along in bundled mode: the publish output is the whole bundle.
    assert "Program.cs" not in by_name and "MyAgent.csproj" not in by_name


def test_publish_output_is_read_into_memory_so_the_temp_folder_can_go(
        tmp_path: Path, bin_dir: Path, calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls)
    entries = plan_dotnet(make_project(tmp_path / "agent"))
    result = write_zip(entries, tmp_path / "out.zip")
    with zipfile.ZipFile(result.path) as archive:
        assert archive.read("MyAgent.dll")[:2] == b"MZ"
        assert sorted(archive.namelist()) == names(entries)


def test_two_builds_write_the_same_zip_bytes(tmp_path: Path, bin_dir: Path,
                                             calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls, extra=NATIVE_LINUX_RUNTIME)
    spec = make_project(tmp_path / "agent")
    first = write_zip(plan_dotnet(spec), tmp_path / "one.zip")
    second = write_zip(plan_dotnet(spec), tmp_path / "two.zip")
    assert first.sha256 == second.sha256
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    first_argv, second_argv = recorded_calls(calls)
    assert first_argv[first_argv.index("-o") + 1] != second_argv[second_argv.index("-o") + 1]


def test_windows_and_macos_runtime_folders_are_dropped_with_a_warning(
        tmp_path: Path, bin_dir: Path, calls: Path, caplog: pytest.LogCaptureFixture) -> None:
    install_fake_dotnet(bin_dir, calls, extra={**NATIVE_WINDOWS_RUNTIMES,
                                               **NATIVE_LINUX_RUNTIME})
    with caplog.at_level(logging.WARNING, logger="bundler.dotnet"):
        entries = plan_dotnet(make_project(tmp_path / "agent"))
    assert [n for n in names(entries) if n.startswith("runtimes/")] == [
        "runtimes/linux-x64/native/libe_sqlite3.so"]
    warnings = [r.getMessage() for r in caplog.records]
    assert any("runtimes/win-x64/" in w and "dropped" in w for w in warnings)
    assert any("runtimes/win-arm64/" in w for w in warnings)
    assert any("runtimes/osx-arm64/" in w for w in warnings)


def refusal(spec: ProjectSpec) -> str:
    """The one line ``build`` refuses ``spec`` with (the FB rule that the plan fails)."""
    with pytest.raises(BuildError) as caught:
        build_project(spec.root)
    assert caught.value.exit_code == 1
    assert not (spec.root / "dist" / "agent.zip").exists()
    return str(caught.value)


def test_native_windows_dll_in_the_publish_output_is_refused(
        tmp_path: Path, bin_dir: Path, calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls, extra=NATIVE_AT_ROOT)
    message = refusal(make_project(tmp_path / "agent"))
    assert message.startswith("FB301 e_sqlite3.dll: Windows PE binary")
    assert "obj/project.assets.json" in message


def test_managed_and_native_pe_are_told_apart_by_the_cli_header() -> None:
    assert pe_kind(pe_dll(managed=True)) == "managed"
    assert pe_kind(pe_dll(managed=True, machine=0x014C)) == "managed"  # PE32, AnyCPU
    assert pe_kind(pe_dll(managed=False)) == "native"
    assert pe_kind(pe_dll(managed=False, machine=0x014C)) == "native"
    assert pe_kind(elf()) is None
    assert pe_kind(b"MZ" + bytes(100)) == "native"  # a DOS stub: no assembly either
    assert pe_kind(pe_dll(managed=True)[:0x100]) == "native"  # truncated headers: not an assembly


def test_entry_point_missing_from_the_publish_output_names_what_is_there(
        tmp_path: Path, bin_dir: Path, calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls)
    spec = make_project(tmp_path / "agent", entry_point=["dotnet", "Other.dll"])
    message = refusal(spec)
    assert message.startswith("FB701 Other.dll: the entry point runs Other.dll, which is not "
                              "at the zip root (it has MyAgent.dll)")
    assert 'set entry_point to ["dotnet", "MyAgent.dll"]' in message


def test_assembly_name_from_the_project_file_names_the_output(
        tmp_path: Path, bin_dir: Path, calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls)
    spec = make_project(tmp_path / "agent", extra="\n    <AssemblyName>Echo.Agent</AssemblyName>",
                        entry_point=["dotnet", "Echo.Agent.dll"])
    assert "Echo.Agent.dll" in names(plan_dotnet(spec))
    assert read_project(spec.root / "MyAgent.csproj").dll == "Echo.Agent.dll"


def test_runtimeconfig_for_another_framework_is_refused(
        tmp_path: Path, bin_dir: Path, calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls, tfm="net8.0")
    message = refusal(make_project(tmp_path / "agent"))
    assert message.startswith("FB703 MyAgent.runtimeconfig.json: targets net8.0")


def test_missing_dotnet_is_a_usage_error_saying_how_to_install_the_sdk(
        tmp_path: Path, bin_dir: Path) -> None:
    with pytest.raises(UsageError) as caught:
        plan_dotnet(make_project(tmp_path / "agent"))
    assert caught.value.exit_code == 2
    text = str(caught.value)
    assert "dotnet is not on PATH" in text and ".NET 10 SDK" in text
    assert "https://dot.net/download" in text
    assert "\n" not in text


def test_failing_publish_is_a_build_error_with_the_tail_of_its_output(
        tmp_path: Path, bin_dir: Path, calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls, fail=True)
    with pytest.raises(BuildError) as caught:
        plan_dotnet(make_project(tmp_path / "agent"))
    assert caught.value.exit_code == 1
    text = str(caught.value)
    assert "dotnet publish MyAgent.csproj failed (exit 1)" in text
    assert "error CS1002: ; expected" in text
    assert "build step 30 of 30" in text and "build step 12 of 30" in text
    assert "build step 11 of 30" not in text  # only the last 20 lines
    assert "Determining projects" not in text


def test_verbose_logs_publish_output_and_asks_for_minimal_verbosity(
        tmp_path: Path, bin_dir: Path, calls: Path, caplog: pytest.LogCaptureFixture) -> None:
    install_fake_dotnet(bin_dir, calls)
    spec = make_project(tmp_path / "agent")
    with caplog.at_level(logging.INFO, logger="bundler.dotnet.publish"):
        plan_dotnet(spec, verbose=True, runner=SubprocessRunner(echo=True))
    logged = [r.getMessage() for r in caplog.records if r.name == "bundler.dotnet.publish"]
    assert any("Determining projects to restore" in line for line in logged)
    assert any("MyAgent ->" in line for line in logged)
    [argv] = recorded_calls(calls)
    assert argv[-2:] == ["-v", "minimal"]


def test_an_injected_runner_gets_the_argv_cwd_and_a_quiet_environment(
        tmp_path: Path, bin_dir: Path, calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls)
    seen: list[tuple[list[str], Path, dict[str, str]]] = []
    real = SubprocessRunner()

    def runner(argv: Sequence[str], *, cwd: Path | None = None,
               env: Mapping[str, str] | None = None,
               timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        assert cwd is not None and env is not None
        seen.append((list(argv), cwd, dict(env)))
        return real(argv, cwd=cwd, env=env)

    spec = make_project(tmp_path / "agent")
    plan_dotnet(spec, runner=runner)
    [(argv, cwd, env)] = seen
    assert Path(argv[0]) == bin_dir / "dotnet" and argv[1] == "publish"
    assert cwd == spec.root
    assert env["DOTNET_CLI_TELEMETRY_OPTOUT"] == "1" and env["DOTNET_NOLOGO"] == "1"


def test_wrong_target_framework_says_which_and_how_to_fix(tmp_path: Path, bin_dir: Path,
                                                          calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls)
    with pytest.raises(UsageError) as caught:
        plan_dotnet(make_project(tmp_path / "agent", tfm="net8.0"))
    assert caught.value.exit_code == 2
    assert str(caught.value) == (
        "MyAgent.csproj targets net8.0, but runtime dotnet_10 runs net10.0 — set "
        "<TargetFramework>net10.0</TargetFramework> in MyAgent.csproj (or pick the runtime "
        "that matches the project)")
    assert recorded_calls(calls) == []  # refused before publishing


def test_multi_targeted_project_publishes_net10_only(tmp_path: Path, bin_dir: Path,
                                                     calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls)
    plan_dotnet(make_project(tmp_path / "agent", element="TargetFrameworks",
                             tfm="net8.0;net10.0"))
    [argv] = recorded_calls(calls)
    assert argv[2:4] == ["-f", "net10.0"]


def test_multi_targeted_project_without_net10_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="<TargetFrameworks>net10.0</TargetFrameworks>"):
        plan_dotnet(make_project(tmp_path / "agent", element="TargetFrameworks",
                                 tfm="net8.0;net9.0", mode="remote_build"))


def test_target_framework_from_directory_build_props(tmp_path: Path) -> None:
    spec = make_project(tmp_path / "repo" / "agent", tfm="net8.0", mode="remote_build")
    csproj = spec.root / "MyAgent.csproj"
    csproj.write_text('<Project Sdk="Microsoft.NET.Sdk.Web"><PropertyGroup>'
                      "<Nullable>enable</Nullable></PropertyGroup></Project>")
    (tmp_path / "repo" / "Directory.Build.props").write_text(
        "<Project><PropertyGroup><TargetFramework>net9.0</TargetFramework>"
        "</PropertyGroup></Project>")
    assert read_project(csproj).frameworks == ("net9.0",)
    with pytest.raises(UsageError, match="targets net9.0"):
        plan_dotnet(spec)


def test_old_style_namespaced_project_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "Legacy.fsproj"
    path.write_text('<Project xmlns="http://schemas.microsoft.com/developer/msbuild/2003">'
                    "<PropertyGroup><TargetFramework>net10.0</TargetFramework>"
                    "<AssemblyName>Legacy.Agent</AssemblyName></PropertyGroup></Project>")
    project = read_project(path)
    assert project.frameworks == ("net10.0",) and project.assembly == "Legacy.Agent"


def test_several_project_files_ask_for_project(tmp_path: Path, bin_dir: Path,
                                               calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls)
    spec = make_project(tmp_path / "agent")
    (spec.root / "Tools.fsproj").write_text(CSPROJ.format(element="TargetFramework",
                                                          tfm="net10.0", extra=""))
    with pytest.raises(UsageError) as caught:
        plan_dotnet(spec)
    assert caught.value.exit_code == 2
    assert "several project files (MyAgent.csproj, Tools.fsproj)" in str(caught.value)
    assert "--project" in str(caught.value)
    entries = plan_dotnet(spec, project_file="MyAgent.csproj")
    assert "MyAgent.dll" in names(entries)


def test_no_project_file_is_a_usage_error(tmp_path: Path) -> None:
    spec = make_project(tmp_path / "agent", mode="remote_build")
    (spec.root / "MyAgent.csproj").unlink()
    with pytest.raises(UsageError, match="no .csproj or .fsproj"):
        plan_dotnet(spec)


def test_project_option_must_name_an_existing_project_file(tmp_path: Path) -> None:
    spec = make_project(tmp_path / "agent")
    with pytest.raises(UsageError, match="Missing.csproj: no such project file"):
        plan_dotnet(spec, project_file="Missing.csproj")
    with pytest.raises(UsageError, match="not a .csproj or .fsproj"):
        plan_dotnet(spec, project_file="Program.cs")


def test_remote_build_is_the_sources_without_build_output(tmp_path: Path) -> None:
    spec = make_project(tmp_path / "agent", mode="remote_build")
    (spec.root / ".fbundleignore").write_text("Agents/Echo.cs\n")
    assert names(plan_dotnet(spec)) == ["MyAgent.csproj", "Program.cs", "appsettings.json"]


def test_remote_build_does_not_need_dotnet(tmp_path: Path, bin_dir: Path) -> None:
    spec = make_project(tmp_path / "agent", mode="remote_build")
    assert "MyAgent.csproj" in names(plan_dotnet(spec))


def test_remote_build_excludes_are_the_documented_ones() -> None:
    assert REMOTE_BUILD_EXCLUDES == ("bin/", "obj/", "publish/", ".vs/", "*.user")


def test_remote_build_refuses_a_project_file_below_the_root(tmp_path: Path) -> None:
    spec = make_project(tmp_path / "agent", mode="remote_build")
    (spec.root / "src").mkdir()
    os.replace(spec.root / "MyAgent.csproj", spec.root / "src" / "MyAgent.csproj")
    with pytest.raises(UsageError, match="not at the project root"):
        plan_dotnet(spec, project_file="src/MyAgent.csproj")


def test_remote_build_refuses_an_ignored_project_file(tmp_path: Path) -> None:
    spec = make_project(tmp_path / "agent", mode="remote_build")
    (spec.root / ".agentignore").write_text("*.csproj\n")
    with pytest.raises(UsageError, match="MyAgent.csproj is excluded by an ignore file"):
        plan_dotnet(spec)


def test_remote_build_warns_when_the_entry_point_is_not_the_assembly(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spec = make_project(tmp_path / "agent", mode="remote_build",
                        entry_point=["dotnet", "Agent.dll"])
    with caplog.at_level(logging.WARNING, logger="bundler.dotnet"):
        plan_dotnet(spec)
    assert any("builds MyAgent.dll" in r.getMessage() for r in caplog.records)


def test_python_runtime_is_refused(tmp_path: Path) -> None:
    spec = make_project(tmp_path / "agent", mode="remote_build")
    python_spec = ProjectSpec(spec.root, spec.name, "python_3_13", spec.mode, spec.entry_point,
                              spec.metadata, spec.metadata_path)
    with pytest.raises(UsageError, match="not a .NET runtime"):
        plan_dotnet(python_spec)


def test_apphost_entry_point_is_accepted_when_published(tmp_path: Path, bin_dir: Path,
                                                         calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls)
    assert "MyAgent" in names(plan_dotnet(make_project(tmp_path / "a", entry_point=["./MyAgent"])))
    message = refusal(make_project(tmp_path / "b", entry_point=["python", "app.py"]))
    assert message.startswith("FB701 python: the entry point 'python app.py' runs python")
    assert 'use ["dotnet", "MyAgent.dll"]' in message


def test_python_default_entry_point_is_derived_from_the_assembly(
        tmp_path: Path, bin_dir: Path, calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls, extra=NATIVE_LINUX_RUNTIME)
    spec = make_project(tmp_path / "agent", entry_point=["python", "main.py"],
                        extra="\n    <AssemblyName>Echo</AssemblyName>")
    assert "Echo.dll" in names(plan_dotnet(spec))


def test_the_effective_entry_point_is_written_beside_the_zip(
        tmp_path: Path, bin_dir: Path, calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls)
    spec = make_project(tmp_path / "agent", entry_point=["python", "main.py"],
                        extra="\n    <AssemblyName>Echo</AssemblyName>")
    result = build_project(spec.root)
    beside = json.loads(definition_path(result.zip_path).read_text(encoding="utf-8"))
    assert beside["definition"]["code_configuration"]["entry_point"] == ["dotnet", "Echo.dll"]
    assert result.spec.entry_point == ["dotnet", "Echo.dll"]


def test_a_no_op_rebuild_does_not_publish_and_a_source_change_does(
        tmp_path: Path, bin_dir: Path, calls: Path) -> None:
    install_fake_dotnet(bin_dir, calls)
    spec = make_project(tmp_path / "agent")
    first = build_project(spec.root)
    again = build_project(spec.root)
    assert again.reused and again.sha256 == first.sha256
    assert len(recorded_calls(calls)) == 1
    (spec.root / "Program.cs").write_text("var app = WebApplication.Create(args);\n")
    assert not build_project(spec.root).reused
    assert len(recorded_calls(calls)) == 2
