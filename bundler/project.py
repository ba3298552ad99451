"""A project folder and its ``metadata.json`` (the agent definition) -> ``ProjectSpec``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bundler.errors import UsageError
from bundler.identity import METADATA
from bundler.targets import DOTNET_RUNTIMES, PYTHON_RUNTIMES, RUNTIMES

MODES = ("bundled", "remote_build")
DEFAULT_ENTRY_POINT = ["python", "main.py"]
AGENT_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
PROTOCOLS = ("responses", "invocations")


def agent_name_problem(name: str) -> str | None:
    """Why ``name`` breaks the service's rule (alphanumeric ends, hyphens inside, <= 63)."""
    if not name:
        return "the agent name is empty"
    if len(name) > 63:
        return f"agent name {name!r} is {len(name)} characters; the limit is 63"
    if not AGENT_NAME.match(name):
        return (f"agent name {name!r} must start and end with a letter or digit and contain "
                "only letters, digits and hyphens")
    return None


def default_agent_name(folder: Path) -> str:
    """The folder's name made into a valid agent name (``My Agent_v2`` -> ``My-Agent-v2``)."""
    name = re.sub(r"[^A-Za-z0-9-]+", "-", folder.resolve().name).strip("-")[:63].strip("-")
    return name or "agent"


def metadata_problems(metadata: Any) -> list[tuple[str, str]]:
    """(field, problem) for every documented definition field that is missing or wrong."""
    if not isinstance(metadata, dict):
        return [("", "metadata.json must hold a JSON object")]
    definition = metadata.get("definition")
    if not isinstance(definition, dict):
        return [("definition", "missing or not an object")]
    problems: list[tuple[str, str]] = []
    if definition.get("kind") != "hosted":
        problems.append(("definition.kind", f"is {definition.get('kind')!r}; must be 'hosted'"))
    if "container_configuration" in definition and "code_configuration" in definition:
        problems.append(("definition.container_configuration",
                         "cannot be used together with code_configuration"))
    code = definition.get("code_configuration")
    if not isinstance(code, dict):
        problems.append(("definition.code_configuration", "missing or not an object"))
        return problems
    runtime = code.get("runtime")
    if runtime not in RUNTIMES:
        problems.append(("definition.code_configuration.runtime",
                         f"is {runtime!r}; must be one of {', '.join(RUNTIMES)}"))
    entry = code.get("entry_point")
    if not (isinstance(entry, list) and entry and all(isinstance(x, str) and x for x in entry)):
        problems.append(("definition.code_configuration.entry_point",
                         f"is {entry!r}; must be a non-empty list of strings, e.g. "
                         '["python", "main.py"]'))
    mode = code.get("dependency_resolution")
    if mode not in MODES:
        problems.append(("definition.code_configuration.dependency_resolution",
                         f"is {mode!r}; must be 'bundled' or 'remote_build'"))
    protocols = definition.get("protocol_versions")
    if protocols is not None:
        if not isinstance(protocols, list) or not protocols or not all(
            isinstance(p, dict) and p.get("protocol") in PROTOCOLS and isinstance(
                p.get("version"), str) for p in protocols):
            problems.append(("definition.protocol_versions",
                             "must be a list of {protocol: responses|invocations, version}"))
    return problems


@dataclass(frozen=True)
class ProjectSpec:
    """What ``build`` needs to know about a project."""

    root: Path
    name: str
    runtime: str
    mode: str
    entry_point: list[str]
    metadata: dict[str, Any]
    metadata_path: Path

    @property
    def is_python(self) -> bool:
        return self.runtime in PYTHON_RUNTIMES

    @property
    def is_dotnet(self) -> bool:
        return self.runtime in DOTNET_RUNTIMES


def read_metadata(path: Path) -> dict[str, Any]:
    """Parse a metadata.json; exit-2 errors that name the file and the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: not found",
                         "create it with `fbundle init`, or pass --metadata") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot be read ({error})", "check the file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})",
                         "fix the JSON syntax") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: must hold a JSON object", "see `fbundle init` for an example")
    return data


def load_project(
    root: Path,
    *,
    metadata_path: Path | None = None,
    runtime: str | None = None,
    mode: str | None = None,
    name: str | None = None,
) -> ProjectSpec:
    """Read a project folder; flags override what ``metadata.json`` says."""
    if not root.exists():
        raise UsageError(f"{root}: no such project folder", "pass the folder that holds your agent")
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder", "pass the folder that holds your agent")
    metadata_path = metadata_path or root / METADATA
    metadata = read_metadata(metadata_path)
    code = metadata.get("definition", {}).get("code_configuration", {}) \
        if isinstance(metadata.get("definition"), dict) else {}
    if isinstance(code, dict):
        # Flags win: apply them before checking, so a flag can fix a field.
        code = dict(code)
        if runtime:
            code["runtime"] = runtime
        if mode:
            code["dependency_resolution"] = mode
        metadata = {**metadata, "definition": {**metadata["definition"],
                                               "code_configuration": code}}
    problems = metadata_problems(metadata)
    if problems:
        field, problem = problems[0]
        raise UsageError(f"{metadata_path}: {field} {problem}",
                         "fix metadata.json (or override with --runtime / --mode)")
    agent = name or default_agent_name(root)
    if name_problem := agent_name_problem(agent):
        raise UsageError(name_problem, "pass --name with a valid agent name")
    return ProjectSpec(
        root=root,
        name=agent,
        runtime=code["runtime"],
        mode=code["dependency_resolution"],
        entry_point=list(code["entry_point"]),
        metadata=metadata,
        metadata_path=metadata_path,
    )


def example_metadata(runtime: str = "python_3_13", mode: str = "bundled",
                     entry_point: list[str] | None = None) -> dict[str, Any]:
    """The definition ``fbundle init`` writes (the article's example, in the chosen mode)."""
    return {
        "description": "Hosted agent built with fbundle",
        "definition": {
            "kind": "hosted",
            "protocol_versions": [{"protocol": "responses", "version": "1.0.0"}],
            "cpu": "1",
            "memory": "2Gi",
            "code_configuration": {
                "runtime": runtime,
                "entry_point": entry_point or DEFAULT_ENTRY_POINT,
                "dependency_resolution": mode,
            },
            "environment_variables": {"AZURE_AI_MODEL_DEPLOYMENT_NAME": "gpt-4.1-mini"},
        },
    }
