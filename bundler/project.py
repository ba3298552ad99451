"""A project folder and its agent definition (see ``bundler/definition.py``) -> ``ProjectSpec``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bundler.definition import load_definition
from bundler.documents import read_json
from bundler.errors import UsageError
from bundler.identity import METADATA as METADATA
from bundler.metadata import MODES as MODES
from bundler.metadata import PROTOCOLS as PROTOCOLS
from bundler.metadata import Flags as Flags
from bundler.metadata import ascii_name, definition_problems, without_dotenv_values
from bundler.metadata import metadata_problems as metadata_problems
from bundler.targets import DOTNET_RUNTIMES, PYTHON_RUNTIMES

DEFAULT_ENTRY_POINT = ["python", "main.py"]
AGENT_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def agent_name_problem(name: str) -> str | None:
    """Why ``name`` breaks the service's rule (alphanumeric ends, hyphens inside, <= 63)."""
    if not name:
        return "the agent name is empty"
    if len(name) > 63:
        return f"agent name {name[:70]!r} is {len(name)} characters; the limit is 63"
    if not AGENT_NAME.match(name):
        return (f"agent name {name[:70]!r} must start and end with a letter or digit and contain "
                "only letters, digits and hyphens")
    return None


def default_agent_name(folder: Path) -> str:
    """The folder's name made into a valid agent name (``My Agent_v2`` -> ``My-Agent-v2``,
    ``über-agent`` -> ``uber-agent``)."""
    name = re.sub(r"[^A-Za-z0-9-]+", "-", ascii_name(folder.resolve().name))
    name = re.sub(r"-{2,}", "-", name).strip("-")[:63].strip("-")
    return name or "agent"


@dataclass(frozen=True)
class ProjectSpec:
    """What ``build`` needs to know about a project.

    ``metadata`` is the effective agent definition (source + flags + defaults): what ``build``
    writes beside the zip and ``deploy`` sends. ``notes`` are the one-line messages loading it
    produced (defaults filled, warnings); ``source`` says where the definition came from.
    """

    root: Path
    name: str
    runtime: str
    mode: str
    entry_point: list[str]
    metadata: dict[str, Any]
    metadata_path: Path | None
    notes: tuple[str, ...] = ()
    source: str = METADATA
    secret_values: bool = False
    env_templates: Mapping[str, str] = field(default_factory=dict)

    def written_metadata(self) -> dict[str, Any]:
        """The definition as the file beside the zip holds it: no value from a ``.env``."""
        return without_dotenv_values(self.metadata, self.env_templates)

    @property
    def is_python(self) -> bool:
        return self.runtime in PYTHON_RUNTIMES

    @property
    def is_dotnet(self) -> bool:
        return self.runtime in DOTNET_RUNTIMES


def read_metadata(path: Path) -> dict[str, Any]:
    """Parse a metadata.json (BOM/CRLF accepted, hostile input bounded); exit-2 errors that name
    the file and the problem."""
    return read_json(path)[0]


def load_project(
    root: Path,
    *,
    metadata_path: Path | None = None,
    runtime: str | None = None,
    mode: str | None = None,
    name: str | None = None,
    flags: Flags | None = None,
) -> ProjectSpec:
    """Read a project folder: its definition (metadata.json, azd's agent.yaml / azure.yaml, or
    flags; see bundler/definition.py), checked; flags override what the source says."""
    if not root.exists():
        raise UsageError(f"{root}: no such project folder", "pass the folder that holds your agent")
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder", "pass the folder that holds your agent")
    flags = flags or Flags()
    if runtime or mode:
        flags = replace(flags, runtime=runtime or flags.runtime, mode=mode or flags.mode)
    found = load_definition(root, metadata_path=metadata_path, flags=flags)
    where = str(found.path) if found.path is not None else f"{root} (flags)"
    problems = metadata_problems(found.metadata)
    if problems:
        field, problem = problems[0]
        raise UsageError(f"{where}: {field} {problem}",
                         "fix the definition (or override with --runtime / --mode / "
                         "--entry-point)")
    notes = list(found.notes)
    if found.source != METADATA:
        notes.insert(0, f"note: agent definition from {found.source} (no metadata.json)")
    for item in definition_problems(found.metadata):
        if item.severity == "error":
            raise UsageError(f"{where}: {item.code} {item.message}",
                             "fix the definition (or pass --cpu / --memory)")
        notes.append(f"warning: {item.code} {item.message}")
    if name:
        agent = name
    elif found.name:
        agent = found.name
        if bad := agent_name_problem(agent):
            raise UsageError(f"{where}: {bad}", "fix the name there, or pass --name")
    else:
        agent = default_agent_name(root)
        folder = root.resolve().name
        if agent != folder:
            notes.append(f"note: agent name {agent!r} (the folder name {folder!r} made valid "
                         "for the service; --name sets another)")
    if name_problem := agent_name_problem(agent):
        raise UsageError(name_problem, "pass --name with a valid agent name")
    code = found.code
    return ProjectSpec(
        root=root,
        name=agent,
        runtime=code["runtime"],
        mode=code["dependency_resolution"],
        entry_point=list(code["entry_point"]),
        metadata=found.metadata,
        metadata_path=found.path,
        notes=tuple(notes),
        source=found.source,
        secret_values=found.secret_values,
        env_templates=found.env_templates,
    )


def example_metadata(runtime: str = "python_3_13", mode: str = "bundled",
                     entry_point: list[str] | None = None) -> dict[str, Any]:
    """The definition ``fbundle init`` writes: the article's example, in the chosen mode, with
    azd's default protocol (responses 2.0.0, what every fbundle default says)."""
    return {
        "description": "Hosted agent built with fbundle",
        "definition": {
            "kind": "hosted",
            "protocol_versions": [{"protocol": "responses", "version": "2.0.0"}],
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
