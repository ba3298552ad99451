"""FB7xx: .NET bundles (dotnet_10) — publish output rooted, or project sources without output."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from bundler.checks.base import Finding, finding, rules
from bundler.checks.facts import Facts
from bundler.targets import DOTNET_RUNTIMES

RULES = rules(
    ("FB701", "error", "bundled: the entry assembly (.dll) is not at the root"),
    ("FB702", "error", "bundled: the entry assembly's .runtimeconfig.json is missing"),
    ("FB703", "error", "the bundle targets another framework than the runtime (net10.0)"),
    ("FB704", "error", "remote_build: no project file at the root"),
    ("FB705", "error", "remote_build: build output (bin/, obj/, publish/) shipped"),
    ("FB706", "error", "bundled: the entry .dll is not a .NET assembly"),
)

PROJECT_SUFFIXES = (".csproj", ".fsproj", ".vbproj")
OUTPUT_DIRS = ("bin", "obj", "publish")
_PUBLISH = "dotnet publish -c Release -r linux-x64 --self-contained false -o publish/, then " \
           "zip the contents of publish/"
_TFM = re.compile(r"<TargetFrameworks?>\s*([^<]+?)\s*</TargetFrameworks?>", re.I)


def entry_assembly(entry_point: list[str], names: set[str]) -> str | None:
    """The .dll the entry point runs (``["dotnet", "MyAgent.dll"]``), else the one a root
    ``*.runtimeconfig.json`` belongs to."""
    for arg in entry_point:
        if arg.lower().endswith(".dll"):
            return arg.removeprefix("./")
    configs = sorted(n for n in names if "/" not in n and n.endswith(".runtimeconfig.json"))
    return configs[0].removesuffix(".runtimeconfig.json") + ".dll" if configs else None


def check(facts: Facts) -> Iterator[Finding]:
    runtime = facts.target.runtime
    if runtime not in DOTNET_RUNTIMES or facts.wrapper:
        return
    tfm = DOTNET_RUNTIMES[runtime]
    names = set(facts.bundle.names())
    if facts.context.mode == "bundled":
        yield from _bundled(facts, names, tfm)
    else:
        yield from _remote(facts, names, tfm)


def _bundled(facts: Facts, names: set[str], tfm: str) -> Iterator[Finding]:
    dll = entry_assembly(facts.context.entry_point, names)
    if dll is None:
        yield finding("FB701", "", "no entry assembly: the entry point names no .dll and no "
                      "*.runtimeconfig.json is at the root", _PUBLISH)
        return
    entry = facts.context.entry_point
    program = entry[0].removeprefix("./") if entry else "dotnet"
    if program.rsplit("/", 1)[-1] not in ("dotnet", "dotnet.exe") and program not in names:
        yield finding("FB701", program, f"the entry point {' '.join(entry)!r} runs {program}, "
                      "which is not in the bundle (the service's .NET image runs dotnet or the "
                      "published apphost)", f'use ["dotnet", "{dll}"]')
    if dll not in names:
        present = sorted(n for n in names if "/" not in n and n.endswith(".dll")
                         and f"{n[:-4]}.runtimeconfig.json" in names)
        yield finding("FB701", dll, f"the entry point runs {dll}, which is not at the zip root"
                      + (f" (it has {', '.join(present)})" if present else ""),
                      f'set entry_point to ["dotnet", "{present[0]}"] in the definition, or '
                      "<AssemblyName> in the project file" if present else _PUBLISH)
    else:
        scanned = facts.scanned.get(dll)
        if scanned is not None and not scanned.error and not (
                scanned.binary is not None and scanned.binary.managed):
            yield finding("FB706", dll, "is not a .NET assembly (no CLI header)", _PUBLISH)
    config = dll.removesuffix(".dll") + ".runtimeconfig.json"
    if config not in names:
        yield finding("FB702", config, f"{config} is missing; dotnet cannot start {dll} "
                      "without it", _PUBLISH)
        return
    text = facts.texts.get(config)
    if text is None:
        return
    try:
        options = json.loads(text).get("runtimeOptions", {})
    except (json.JSONDecodeError, AttributeError):
        yield finding("FB703", config, "is not valid JSON", _PUBLISH)
        return
    found = _config_tfm(options)
    if found is not None and found.lower() != tfm:
        yield finding("FB703", config, f"targets {found}; the runtime {facts.target.runtime} "
                      f"runs {tfm}", f"set <TargetFramework>{tfm}</TargetFramework> and publish "
                      "again")


def _config_tfm(options: Any) -> str | None:
    if not isinstance(options, dict):
        return None
    if isinstance(options.get("tfm"), str):
        return str(options["tfm"])
    frameworks = options.get("frameworks") or [options.get("framework")]
    for framework in frameworks if isinstance(frameworks, list) else []:
        if isinstance(framework, dict) and isinstance(framework.get("version"), str):
            major = framework["version"].split(".")[0]
            return f"net{major}.0"
    return None


def _remote(facts: Facts, names: set[str], tfm: str) -> Iterator[Finding]:
    projects = sorted(n for n in names if "/" not in n and n.endswith(PROJECT_SUFFIXES))
    if not projects:
        yield finding("FB704", "", "no .csproj/.fsproj/.vbproj at the zip root; the service "
                      "restores and publishes the project file", "zip the folder that holds "
                      "your project file, sources only")
    for project in projects:
        text = facts.texts.get(project) or ""
        match = _TFM.search(text)
        if match and tfm not in [t.strip().lower() for t in match[1].split(";")]:
            yield finding("FB703", project, f"targets {match[1]}; the runtime "
                          f"{facts.target.runtime} runs {tfm}",
                          f"set <TargetFramework>{tfm}</TargetFramework>")
    for name in names:
        parts = name.split("/")
        for i, part in enumerate(parts[:-1]):
            if part in OUTPUT_DIRS:
                folder = "/".join(parts[: i + 1]) + "/"
                yield finding("FB705", folder, "build output is shipped; the service builds "
                              "the project itself", f"exclude {folder} (zip sources only)")
                break
