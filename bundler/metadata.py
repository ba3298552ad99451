"""The agent definition the service takes (the multipart ``metadata`` part): its fields, the
defaults azd fills, the ``Definition`` a source yields, and the rules it must meet — shared by
build (which refuses or warns before writing) and ``fbundle validate`` (FB6xx,
``checks/metadata.py``)."""

from __future__ import annotations

import difflib
import re
import shlex
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bundler.documents import kind_of
from bundler.envexpand import FOUNDRY_SPAN, REFERENCE, Environment
from bundler.errors import UsageError
from bundler.targets import RUNTIMES

MODES = ("bundled", "remote_build")
#: Every protocol the REST spec's ``AgentEndpointProtocol`` names (the union is open: others warn).
PROTOCOLS = ("responses", "invocations", "invocations_ws", "a2a", "activity", "mcp")
#: azd's defaults (``CreateHostedAgentAPIRequest`` in the azure.ai.agents extension).
DEFAULT_CPU, DEFAULT_MEMORY = "1", "2Gi"
AZD_DEFAULT_PROTOCOLS = [{"protocol": "responses", "version": "2.0.0"}]
AZD_DEFAULT_MODE = "remote_build"
TOP_KEYS = ("name", "description", "definition", "metadata", "state", "blueprint_reference",
            "draft", "agent_endpoint", "agent_card")
DEFINITION_KEYS = ("kind", "rai_config", "cpu", "memory", "environment_variables",
                   "container_configuration", "protocol_versions", "code_configuration",
                   "telemetry_config", "session_configuration")
CODE_KEYS = ("runtime", "entry_point", "dependency_resolution")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_SCALAR_CHARS = 32  # cpu / memory
# A number of cores ("0.25", "1", ".5") and an amount of memory with a unit ("0.5Gi", "512Mi").
CPU_TEXT = re.compile(r"^(?:\d+(?:\.\d+)?|\.\d+)$")
MEMORY_TEXT = re.compile(r"^(?:\d+(?:\.\d+)?|\.\d+)(Gi|Mi)$")
# Container Apps' allocations (the spec points there): 0.25..4 vCPU in steps of 0.25, memory
# twice the cpu in Gi.
CPU_MIN, CPU_MAX, CPU_STEP = Decimal("0.25"), Decimal("4"), Decimal("0.25")


@dataclass(frozen=True)
class Flags:
    """What the command line says about the definition (None: not given)."""

    runtime: str | None = None
    mode: str | None = None
    entry_point: str | None = None
    cpu: str | None = None
    memory: str | None = None
    protocols: tuple[str, ...] = ()

    def any(self) -> bool:
        return any((self.runtime, self.mode, self.entry_point, self.cpu, self.memory,
                    self.protocols))


@dataclass(frozen=True)
class Definition:
    """The effective agent definition and where it came from.

    ``metadata`` is the document the service takes (``{"description"?, "definition": {...}}``);
    ``name`` is the agent name the source states, if any; ``notes`` are one-line messages for
    the user (defaults filled, variables unset, warnings) that never hold a value.
    """

    metadata: dict[str, Any]
    source: str
    path: Path | None
    name: str | None = None
    notes: tuple[str, ...] = ()
    secret_values: bool = False  # some value came from a .env file
    #: environment_variables whose value came (in part) from a .env file -> the text as written
    #: (``${VAR}``): what the file beside the zip keeps, so no .env value lands in a file.
    env_templates: Mapping[str, str] = field(default_factory=dict)

    @property
    def definition(self) -> dict[str, Any]:
        inner = self.metadata.get("definition")
        return inner if isinstance(inner, dict) else {}

    @property
    def code(self) -> dict[str, Any]:
        code = self.definition.get("code_configuration")
        return code if isinstance(code, dict) else {}


def metadata_problems(metadata: Any) -> list[tuple[str, str]]:
    """(field, problem) for every required definition field that is missing or wrong: what the
    service would refuse (FB601)."""
    if not isinstance(metadata, dict):
        return [("", "metadata.json must hold a JSON object")]
    definition = metadata.get("definition")
    if definition is None:
        if any(key in metadata for key in ("kind", "code_configuration",
                                           "container_configuration", "cpu")):
            return [("definition", 'is missing: the definition fields sit at the top level; '
                     'wrap them in "definition": {...} as the service expects')]
        return [("definition", "is missing")]
    if not isinstance(definition, dict):
        return [("definition", f"must be an object, not {kind_of(definition)}")]
    problems: list[tuple[str, str]] = []
    if definition.get("kind") != "hosted":
        problems.append(("definition.kind", f"is {definition.get('kind')!r}; must be 'hosted'"))
    code = definition.get("code_configuration")
    if "container_configuration" in definition:
        if code is not None:
            problems.append(("definition.container_configuration",
                             "cannot be used together with code_configuration"))
        else:
            problems.append(("definition.container_configuration",
                             "is an image deploy; a source-code deploy needs code_configuration "
                             "(runtime, entry_point, dependency_resolution) instead"))
            return problems
    if not isinstance(code, dict):
        near = _near(definition, "code_configuration")
        problems.append(("definition.code_configuration",
                         "missing or not an object" + (f" (found {near!r}: misspelt?)"
                                                       if near else "")))
        return problems
    runtime = code.get("runtime")
    if runtime not in RUNTIMES:
        problems.append(("definition.code_configuration.runtime",
                         f"is {short(runtime)}; must be one of {', '.join(RUNTIMES)}"))
    entry = code.get("entry_point")
    if not (isinstance(entry, list) and entry and all(isinstance(x, str) and x for x in entry)):
        problems.append(("definition.code_configuration.entry_point",
                         f"is {short(entry)}; must be a non-empty list of strings, e.g. "
                         '["python", "main.py"]'))
    mode = code.get("dependency_resolution")
    if mode not in MODES:
        problems.append(("definition.code_configuration.dependency_resolution",
                         f"is {short(mode)}; must be 'bundled' or 'remote_build'"))
    protocols = definition.get("protocol_versions")
    if protocols is not None and not (isinstance(protocols, list) and protocols and all(
            isinstance(p, dict) and isinstance(p.get("protocol"), str) and p["protocol"]
            and isinstance(p.get("version"), str) and p["version"] for p in protocols)):
        problems.append(("definition.protocol_versions",
                         "must be a non-empty list of {protocol, version} strings, e.g. "
                         '[{"protocol": "responses", "version": "2.0.0"}]'))
    env = definition.get("environment_variables")
    if env is not None and not (isinstance(env, dict)
                                and all(isinstance(v, str) for v in env.values())):
        problems.append(("definition.environment_variables",
                         "must be an object of string values, e.g. {\"LOG_LEVEL\": \"info\"}"))
    return problems


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _near(mapping: Mapping[str, Any], wanted: str) -> str | None:
    close = difflib.get_close_matches(wanted, [k for k in mapping if isinstance(k, str)],
                                      n=1, cutoff=0.8)
    return close[0] if close and close[0] != wanted else None


def cpu_memory_problem(cpu: Any, memory: Any) -> tuple[str, str] | None:
    """(severity, message) when a (cpu, memory) pair is not one the service surely accepts.

    Errors: either missing (the spec requires both), or not a number / an amount with a unit.
    Warning: well-formed but not one of Container Apps' allocations (0.25..4 vCPU in steps of
    0.25 with twice as many Gi): the service is the judge.
    """
    if cpu is None or memory is None:
        missing = "cpu" if cpu is None else "memory"
        present = "memory" if cpu is None else "cpu"
        if cpu is None and memory is None:
            return ("error", "cpu and memory are missing; the service requires both "
                    '(e.g. cpu "1", memory "2Gi")')
        return ("error", f"{missing} is missing but {present} is set; set both "
                '(e.g. cpu "1", memory "2Gi")')
    for name, value, pattern, example in (("cpu", cpu, CPU_TEXT, '"0.5"'),
                                          ("memory", memory, MEMORY_TEXT, '"1Gi"')):
        if not isinstance(value, str):
            return ("error", f"{name} is {kind_of(value)}; write it as a string, e.g. {example}")
        if len(value) > MAX_SCALAR_CHARS or not pattern.match(value):
            return ("error", f"{name} {short(value)} is not "
                    + ("a number of cores" if name == "cpu" else "an amount like \"1Gi\"")
                    + f", e.g. {example}")
    try:
        cores = Decimal(cpu)
        amount = Decimal(memory[:-2])
    except InvalidOperation:  # pragma: no cover - the patterns above admit only numbers
        return ("error", f"cpu {cpu!r} / memory {memory!r} are not numbers")
    gib = amount if memory.endswith("Gi") else amount / 1024
    if cores <= 0 or amount <= 0:
        return ("error", f"cpu {cpu!r} / memory {memory!r} must be more than zero")
    if CPU_MIN <= cores <= CPU_MAX and not cores % CPU_STEP and gib == cores * 2:
        return None
    return ("warning", f"cpu {cpu!r} / memory {memory!r} is not one of the known allocations "
            "(0.25 to 4 vCPU in steps of 0.25, memory twice the cpu in Gi, e.g. 0.25/0.5Gi, "
            "1/2Gi); the service decides whether it accepts it")


@dataclass(frozen=True)
class Problem:
    """One finding about a definition: a stable FB6xx code, the field, what is wrong."""

    code: str
    severity: str
    field: str
    message: str


def definition_problems(metadata: Mapping[str, Any]) -> Iterator[Problem]:
    """Every FB602/FB604-FB609 finding about an effective definition (FB601 and FB603 are
    :func:`metadata_problems` and the name rule)."""
    for key in metadata:
        if key not in TOP_KEYS:
            yield _unknown(key, TOP_KEYS, "")
    definition = metadata.get("definition")
    if not isinstance(definition, dict):
        return
    for key in definition:
        if key not in DEFINITION_KEYS:
            yield _unknown(key, DEFINITION_KEYS, "definition.")
    code = definition.get("code_configuration")
    if isinstance(code, dict):
        for key in code:
            if key not in CODE_KEYS:
                yield _unknown(key, CODE_KEYS, "definition.code_configuration.")
    if "container_configuration" not in definition or "code_configuration" in definition:
        pair = cpu_memory_problem(definition.get("cpu"), definition.get("memory"))
        if pair is not None:
            severity, message = pair
            yield Problem("FB602" if severity == "error" else "FB604", severity,
                          "definition.cpu", f"definition.{message}")
    protocols = definition.get("protocol_versions")
    if protocols is None:
        yield Problem("FB606", "warning", "definition.protocol_versions",
                      "definition.protocol_versions is missing: the agent declares no "
                      "protocol; add "
                      '[{"protocol": "responses", "version": "2.0.0"}] (or invocations, ...)')
    elif isinstance(protocols, list):
        for record in protocols:
            if isinstance(record, dict) and isinstance(record.get("protocol"), str) \
                    and record["protocol"] not in PROTOCOLS:
                yield Problem("FB609", "warning", "definition.protocol_versions",
                              "definition.protocol_versions: protocol "
                              f"{short(record['protocol'])} is not one the service "
                              f"documents ({', '.join(PROTOCOLS)})")
    env = definition.get("environment_variables")
    if isinstance(env, dict):
        for name, value in env.items():
            if not ENV_NAME.match(name):
                yield Problem("FB608", "error", "definition.environment_variables",
                              f"definition.environment_variables: {short(name)} is not a "
                              "valid variable name (a letter or _ "
                              "first, then letters, digits, _)")
            elif isinstance(value, str) and REFERENCE.search(FOUNDRY_SPAN.sub("", value)):
                refs = sorted({m.group(1) for m in REFERENCE.finditer(
                    FOUNDRY_SPAN.sub("", value))})
                yield Problem("FB607", "warning", f"definition.environment_variables.{name}",
                              f"definition.environment_variables.{name} still holds "
                              f"${{{'}, ${'.join(refs)}}}: the agent will see the "
                              "text as written")


def _unknown(key: Any, known: tuple[str, ...], prefix: str) -> Problem:
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.75)
    hint = f" — did you mean {close[0]!r}?" if close else ""
    return Problem("FB605", "warning", f"{prefix}{key}",
                   f"{prefix}{str(key)[:60]} is not a field the service documents{hint}")


def split_command(value: str, where: str) -> list[str]:
    try:
        words = shlex.split(value)
    except ValueError as error:
        raise UsageError(f"{where}: entry point {value!r} cannot be split ({error})",
                         "quote it like a shell command: --entry-point 'python main.py'") \
            from None
    if not words:
        raise UsageError(f"{where}: the entry point is empty",
                         "e.g. --entry-point 'python main.py'")
    return words


def said(protocols: list[dict[str, str]]) -> str:
    """``[{"protocol": "responses", "version": "2.0.0"}]`` -> ``responses 2.0.0``."""
    return ", ".join(f"{p['protocol']} {p['version']}" for p in protocols)


def parse_protocol(text: str) -> dict[str, str]:
    """``responses@2.0.0`` -> ``{"protocol": "responses", "version": "2.0.0"}``."""
    protocol, at, version = text.partition("@")
    if not protocol or not at or not version:
        raise UsageError(f"--protocol {text!r} must be PROTOCOL@VERSION",
                         f"e.g. --protocol responses@2.0.0 ({', '.join(PROTOCOLS)})")
    return {"protocol": protocol, "version": version}


def ascii_name(text: str) -> str:
    """``über`` -> ``uber``: accents dropped the way NFKD decomposes them."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def without_dotenv_values(metadata: dict[str, Any], templates: Mapping[str, str]
                          ) -> dict[str, Any]:
    """``metadata`` as it may be written to a file: every environment variable whose value
    came from a ``.env`` file put back as written (``${VAR}``); ``deploy`` expands it again
    (``with_dotenv_values``) at send time, in memory."""
    inner = metadata.get("definition")
    env = inner.get("environment_variables") if isinstance(inner, dict) else None
    if not templates or not isinstance(env, dict) or not isinstance(inner, dict):
        return metadata
    kept = {name: templates.get(name, value) for name, value in env.items()}
    return {**metadata, "definition": {**inner, "environment_variables": kept}}


def with_dotenv_values(metadata: dict[str, Any], folders: list[Path],
                       environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``metadata`` read from a file (``<agent>.metadata.json``) with its ``${VAR}``
    references expanded from the environment, then the first of ``folders`` that has a
    ``.env`` (or an azd environment): the values the service must be sent. Unset references
    stay as written (the service then gets them verbatim, as azd sends them)."""
    inner = metadata.get("definition")
    env = inner.get("environment_variables") if isinstance(inner, dict) else None
    if not isinstance(env, dict) or not isinstance(inner, dict) or not any(
            isinstance(v, str) and "${" in v for v in env.values()):
        return metadata
    folder = next((f for f in folders if (f / ".env").is_file()), folders[0])
    environment = Environment.beside(folder, environ)
    expanded = {name: environment.expand(value) if isinstance(value, str) else value
                for name, value in env.items()}
    return {**metadata, "definition": {**inner, "environment_variables": expanded}}
