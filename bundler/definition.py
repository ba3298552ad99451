"""Where a project's agent definition comes from -> the one definition ``build`` ships.

The service takes the agent definition as the multipart ``metadata`` part (the article's
``metadata.json``). Projects state it in one of three ways, read in this order:

1. ``metadata.json`` (or ``--metadata FILE``): the service's own shape, taken as written.
2. azd's shapes, in the order azd's ``azure.ai.agents`` extension reads them
   (``LoadAgentDefinition``): the ``host: azure.ai.agent`` service entry in ``azure.yaml`` whose
   ``project`` is this folder (inline camelCase properties, then the deprecated ``config:``
   block, each with its ``$ref`` includes resolved as ``foundry.ResolveFileRefs`` does), else
   ``agent.yaml`` / ``agent.yml`` (the AgentSchema ``hosted`` definition, snake_case). They are
   mapped the way azd maps them (``CreateHostedAgentAPIRequest``).
3. Flags alone (``--runtime``, ``--mode``, ``--entry-point``).

Flags (``--runtime``, ``--mode``, ``--entry-point``, ``--cpu``, ``--memory``, ``--protocol``)
override whatever the source says. The result is checked here (one line per problem, exit 2)
and is, byte for byte, what ``build`` writes beside the zip and ``deploy`` sends.

An agent manifest's ``{{param}}`` placeholders are filled first, as ``azd ai agent init
--no-prompt`` fills them (``bundler/azd.py``); a parameter with no value is one exit-2 line.

``${VAR}`` in azd's shapes (environment variable values, cpu, memory) is expanded at build
time from the process environment, then a ``.env`` beside the file that holds it, then the
selected azd environment's ``.azure/<name>/.env`` (the first that sets it wins; python-dotenv
reads the files). An unset variable is kept as written and
named in a warning; values are never printed. ``${{...}}`` (Foundry's own server-side
expressions) is kept verbatim, as azd keeps it. ``metadata.json`` is the service's literal
shape and is never expanded.
"""

from __future__ import annotations

import difflib
import json
import posixpath
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bundler.azd import agent_services, default_entry_file, from_agent_yaml, from_azd
from bundler.documents import read_json
from bundler.errors import UsageError
from bundler.identity import METADATA
from bundler.metadata import (
    AZD_DEFAULT_PROTOCOLS,
    CODE_KEYS,
    DEFAULT_CPU,
    DEFAULT_MEMORY,
    DEFINITION_KEYS,
    TOP_KEYS,
    Definition,
    Flags,
    parse_protocol,
    said,
    split_command,
)
from bundler.targets import DOTNET_RUNTIMES


def load_definition(root: Path, *, metadata_path: Path | None = None, flags: Flags = Flags(),
                    environ: Mapping[str, str] | None = None) -> Definition:
    """The effective definition for the project at ``root`` (see the module docstring)."""
    if metadata_path is not None:
        found = _from_file(metadata_path, root, environ, flags)
    elif (root / METADATA).is_file():
        found = _from_metadata(root / METADATA)
    else:
        found = from_azd(root, environ, flags) or _from_flags(root, flags)
    return _apply_flags(found, flags)


def _from_file(path: Path, root: Path, environ: Mapping[str, str] | None,
               flags: Flags) -> Definition:
    if path.suffix.lower() in (".yaml", ".yml"):
        return from_agent_yaml(path, root, environ, flags, service=None)
    return _from_metadata(path)


def _from_metadata(path: Path) -> Definition:
    data, notes = read_json(path)
    name = data.get("name") if isinstance(data.get("name"), str) else None
    data = _read_misspelt(data, notes)
    return Definition(data, path.name, path, name, tuple(notes))


def _read_misspelt(data: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """A key one typo away from a documented one that is absent (``code_configuraton``) is read
    as that key, with a warning: the definition fbundle writes then says what was meant."""

    def fix(mapping: dict[str, Any], known: tuple[str, ...], prefix: str) -> dict[str, Any]:
        fixed = dict(mapping)
        for key in list(mapping):
            if not isinstance(key, str) or key in known:
                continue
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)  # the best
            if close and close[0] not in fixed:
                fixed[close[0]] = fixed.pop(key)
                notes.append(f"warning: FB605 {prefix}{key[:60]} is not a field the service "
                             f"documents — read as {close[0]!r}; fix the spelling")
        return fixed

    data = fix(data, TOP_KEYS, "")
    definition = data.get("definition")
    if isinstance(definition, dict):
        definition = fix(definition, DEFINITION_KEYS, "definition.")
        code = definition.get("code_configuration")
        if isinstance(code, dict):
            definition["code_configuration"] = fix(code, CODE_KEYS,
                                                   "definition.code_configuration.")
        data["definition"] = definition
    return data


def _from_flags(root: Path, flags: Flags) -> Definition:
    missing = [f for f, v in (("--runtime", flags.runtime), ("--mode", flags.mode)) if not v]
    if missing and (services := agent_services(root)):
        folders = ", ".join(f"{name!r} in {folder}" for name, folder in services[:5])
        first = posixpath.normpath(f"{root.as_posix()}/{services[0][1]}")
        first = first if first.startswith(("/", ".")) else f"./{first}"
        raise UsageError(
            f"{root}: no agent definition here; this is an azd project whose azure.yaml has "
            f"the agent service{'s' if len(services) > 1 else ''} {folders}"
            f"{' and more' if len(services) > 5 else ''}",
            f"build a service from its folder: run `fbundle build "
            f"{shlex.quote(first)}`")
    if missing:
        raise UsageError(
            f"{root}: no agent definition (metadata.json, agent.yaml or an azure.yaml service)",
            f"run `fbundle init {root}` to add metadata.json, or pass {' and '.join(missing)}"
            " (e.g. --runtime python_3_13 --mode bundled --entry-point 'python main.py')")
    runtime = flags.runtime or "python_3_13"
    prefix = "dotnet" if runtime in DOTNET_RUNTIMES else "python"
    notes = []
    if not flags.entry_point:
        notes.append(f"note: no --entry-point; using '{prefix} "
                     f"{default_entry_file(root, runtime)}'")
    definition: dict[str, Any] = {
        "kind": "hosted",
        "code_configuration": {"runtime": runtime,
                               "entry_point": [prefix, default_entry_file(root, runtime)],
                               "dependency_resolution": flags.mode},
    }
    if not flags.protocols:
        definition["protocol_versions"] = [dict(p) for p in AZD_DEFAULT_PROTOCOLS]
        notes.append(f"note: no --protocol; using {said(AZD_DEFAULT_PROTOCOLS)} "
                     "(azd's default)")
    return Definition({"definition": definition}, "flags", None, None, tuple(notes))


def _apply_flags(found: Definition, flags: Flags) -> Definition:
    """Flags win over the source; then cpu/memory defaults (both absent) are filled."""
    metadata = json.loads(json.dumps(found.metadata))  # a private copy (depth already bounded)
    notes = list(found.notes)
    definition = metadata.get("definition")
    if isinstance(definition, dict):
        code = definition.get("code_configuration")
        if flags.runtime or flags.mode or flags.entry_point:
            if isinstance(code, dict):
                code = dict(code)
            elif code is None and "container_configuration" not in definition:
                code = {}
            if isinstance(code, dict):
                if flags.runtime:
                    code["runtime"] = flags.runtime
                if flags.mode:
                    code["dependency_resolution"] = flags.mode
                if flags.entry_point:
                    code["entry_point"] = split_command(flags.entry_point, "--entry-point")
                definition["code_configuration"] = code
        if flags.cpu:
            definition["cpu"] = flags.cpu
        if flags.memory:
            definition["memory"] = flags.memory
        if flags.protocols:
            definition["protocol_versions"] = [parse_protocol(p) for p in flags.protocols]
        if "cpu" not in definition and "memory" not in definition \
                and "container_configuration" not in definition:
            definition["cpu"], definition["memory"] = DEFAULT_CPU, DEFAULT_MEMORY
            said = "no --cpu/--memory" if found.path is None else \
                f"{found.source} sets no cpu/memory"
            notes.append(f'note: {said}; using azd\'s defaults cpu '
                         f'"{DEFAULT_CPU}", memory "{DEFAULT_MEMORY}" (--cpu/--memory set others)')
    return Definition(metadata, found.source, found.path, found.name, tuple(notes),
                      found.secret_values, found.env_templates)
