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
--no-prompt`` fills them (:func:`_fill_parameters`); a parameter with no value is one exit-2 line.

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
import math
import os
import re
import shlex
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bundler.errors import UsageError
from bundler.identity import METADATA as METADATA
from bundler.targets import DOTNET_RUNTIMES, RUNTIMES

AGENT_YAML = ("agent.yaml", "agent.yml")
AZURE_YAML = ("azure.yaml", "azure.yml")
MODES = ("bundled", "remote_build")
#: Every protocol the REST spec's ``AgentEndpointProtocol`` names (the union is open: others warn).
PROTOCOLS = ("responses", "invocations", "invocations_ws", "a2a", "activity", "mcp")
#: azd's defaults (``CreateHostedAgentAPIRequest`` in the azure.ai.agents extension).
DEFAULT_CPU, DEFAULT_MEMORY = "1", "2Gi"
AZD_DEFAULT_PROTOCOLS = [{"protocol": "responses", "version": "2.0.0"}]
AZD_DEFAULT_MODE = "remote_build"
#: What a definition document may hold before it is refused (hostile input stays bounded).
MAX_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NUMBER_CHARS = 64
MAX_NODES = 100_000
MAX_SCALAR_CHARS = 32  # cpu / memory

TOP_KEYS = ("name", "description", "definition", "metadata", "state", "blueprint_reference",
            "draft", "agent_endpoint", "agent_card")
DEFINITION_KEYS = ("kind", "rai_config", "cpu", "memory", "environment_variables",
                   "container_configuration", "protocol_versions", "code_configuration",
                   "telemetry_config", "session_configuration")
CODE_KEYS = ("runtime", "entry_point", "dependency_resolution")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
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


# ---------------------------------------------------------------------------------------------
# Reading documents, bounded


class _Refused(Exception):
    """A value in a document is out of the bounds a definition can have."""


def _number(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER_CHARS:
            raise _Refused(f"holds a number of {len(text):,} digits")
        value = kind(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise _Refused(f"holds the number {text[:20]}, which is out of range")
        return value

    return parse


def _constant(text: str) -> Any:
    raise _Refused(f"holds {text}, which is not JSON")


def depth_problem(value: Any) -> str | None:
    """Why ``value`` nests deeper or holds more than a definition can, or None (iterative: never
    recurses; bounded, so YAML aliases that expand exponentially stop early)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            return f"holds more than {MAX_NODES:,} values (YAML aliases?)"
        if depth > MAX_DEPTH:
            return f"is nested more than {MAX_DEPTH} levels deep"
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return None


def _read_text(path: Path, hint: str) -> tuple[str, list[str]]:
    """A document's text without a UTF-8 BOM, and a note when it had one."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{path}: not found", hint) from None
    except OSError as error:
        raise UsageError(f"{path}: cannot be read ({error.strerror or error})",
                         "check the file and its permissions") from None
    if len(data) > MAX_BYTES:
        raise UsageError(f"{path}: larger than {MAX_BYTES:,} bytes; not an agent definition",
                         "pass the definition file")
    notes = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        notes.append(f"note: {path.name} starts with a UTF-8 byte order mark; read without it "
                     "(the definition fbundle writes has none)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: not UTF-8 (byte {error.start})",
                         "save the file as UTF-8") from None
    return text, notes


def read_json(path: Path) -> tuple[dict[str, Any], list[str]]:
    """A JSON object from ``path`` (BOM and CRLF accepted), or one exit-2 line saying why not.

    NaN/Infinity, numbers longer than 64 characters, nesting deeper than 64 levels and files
    over 1 MiB are refused: no definition has them, and each would otherwise fail deep inside.
    """
    text, notes = _read_text(path, "create it with `fbundle init`, or pass --metadata")
    try:
        data = json.loads(text, parse_int=_number(int), parse_float=_number(float),
                          parse_constant=_constant)
    except _Refused as error:
        raise UsageError(f"{path}: {error}", "write cpu, memory and versions as strings, "
                         'e.g. "cpu": "1"') from None
    except RecursionError:
        raise UsageError(f"{path}: is nested too deeply to be an agent definition",
                         "fix the JSON") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})",
                         "fix the JSON syntax") from None
    if problem := depth_problem(data):
        raise UsageError(f"{path}: {problem}", "fix the JSON") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: must hold a JSON object, not {_kind(data)}",
                         'see `fbundle init` for an example: {"definition": {...}}')
    return data, notes


def read_yaml(path: Path) -> tuple[dict[str, Any], list[str]]:
    """A YAML mapping from ``path`` (safe loader), or one exit-2 line saying why not."""
    import yaml

    text, notes = _read_text(path, "pass the folder that holds it")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except RecursionError:
        raise UsageError(f"{path}: is nested too deeply", "fix the YAML") from None
    except ValueError as error:  # e.g. an integer over Python's 4,300-digit limit
        raise UsageError(f"{path}: a value cannot be read ({str(error)[:80]})",
                         "write cpu, memory and versions as short strings") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        what = getattr(error, "problem", None) or "syntax error"
        raise UsageError(f"{path}: not valid YAML{where}: {what}", "fix the YAML") from None
    if problem := depth_problem(data):
        raise UsageError(f"{path}: {problem}", "fix the YAML")
    if not isinstance(data, dict):
        raise UsageError(f"{path}: must hold a YAML mapping, not {_kind(data)}",
                         "see azd's agent.yaml: kind, name, protocols, ...")
    return data, notes


def _kind(value: Any) -> str:
    known = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             type(None): "null", int: "a number", float: "a number"}
    return known.get(type(value), f"a {type(value).__name__}")


# ---------------------------------------------------------------------------------------------
# ${VAR} expansion (azd's foundry.ExpandEnv semantics)

# Written here because no library does drone/envsubst's braced subset while keeping Foundry's
# ${{...}} spans: ${VAR}, ${VAR:-default}, ${VAR-default} (and := / =), nothing else.
_FOUNDRY_SPAN = re.compile(r"\$\{\{.*?\}\}", re.S)
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=])([^}]*))?\}")


@dataclass
class Environment:
    """Where ``${VAR}`` values come from: the process environment, then a ``.env`` file."""

    variables: Mapping[str, str]
    dotenv: Mapping[str, str | None] = field(default_factory=dict)
    used_dotenv: bool = False
    unset: list[str] = field(default_factory=list)
    dotenv_lookups: int = 0  # lookups a file must not keep: .env values, secret parameters
    #: variables that carry a ``secret: true`` manifest parameter: kept out of files even when
    #: the process environment supplies them
    secret: set[str] = field(default_factory=set)

    @classmethod
    def beside(cls, folder: Path, variables: Mapping[str, str] | None = None) -> Environment:
        """The process environment, then ``folder/.env``, then the selected azd environment's
        ``.azure/<name>/.env`` (``AZURE_ENV_NAME``, else ``.azure/config.json``'s
        ``defaultEnvironment``, in ``folder`` or up to four folders above it)."""
        variables = os.environ if variables is None else variables
        dotenv: dict[str, str | None] = {}
        for path in reversed([folder / ".env", *_azd_env_file(folder, variables)]):
            if path.is_file():
                dotenv.update(_dotenv(path))
        return cls(variables, dotenv)

    def lookup(self, name: str) -> str | None:
        if name in self.variables:
            if name in self.secret:
                self.dotenv_lookups += 1
            return self.variables[name]
        value = self.dotenv.get(name)
        if value is not None:
            self.used_dotenv = True
            self.dotenv_lookups += 1
        return value

    def expand_noting_dotenv(self, value: str) -> tuple[str, bool]:
        """``expand(value)``, and whether a ``.env`` file (or a secret parameter's variable)
        supplied any part of it: then the text as written is what a file may keep."""
        before = self.dotenv_lookups
        expanded = self.expand(value)
        return expanded, self.dotenv_lookups > before

    def expand(self, value: str) -> str:
        """``value`` with its ``${VAR}`` references replaced; unset ones are kept and noted.
        ``${{...}}`` spans are left as they are (only the text between them is expanded)."""

        def replace(match: re.Match[str]) -> str:
            name, operator, default = match.group(1), match.group(2), match.group(3)
            found = self.lookup(name)
            if operator is None:
                if found is None:
                    self.unset.append(name)
                    return match.group(0)
                return found
            if found is None or (operator.startswith(":") and found == ""):
                return default
            return found

        # As azd does: mask each span with a placeholder the value does not contain, expand,
        # restore (so a span may even be a default: ${MISSING:-${{event.body}}}).
        spans = _FOUNDRY_SPAN.findall(value)
        if not spans:
            return _REFERENCE.sub(replace, value)
        mark = "\ue000"
        while mark in value:
            mark += "\ue000"
        counter = iter(range(len(spans)))
        masked = _FOUNDRY_SPAN.sub(lambda _m: f"{mark}{next(counter)}\ue001", value)
        expanded = _REFERENCE.sub(replace, masked)
        return re.sub(re.escape(mark) + r"(\d+)\ue001", lambda m: spans[int(m.group(1))],
                      expanded)


def _dotenv(path: Path) -> dict[str, str | None]:
    from dotenv import dotenv_values

    try:
        return dict(dotenv_values(path))
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot be read ({type(error).__name__})",
                         "fix or remove it") from None


def _azd_env_file(folder: Path, variables: Mapping[str, str]) -> list[Path]:
    for base in [folder, *folder.resolve().parents][:5]:
        azure = base / ".azure"
        if not azure.is_dir():
            continue
        name = variables.get("AZURE_ENV_NAME")
        if not name:
            try:
                config = json.loads((azure / "config.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return []
            name = config.get("defaultEnvironment") if isinstance(config, dict) else None
        if isinstance(name, str) and name and "/" not in name and "\\" not in name \
                and name not in (".", ".."):
            return [azure / name / ".env"]
        return []
    return []


# ---------------------------------------------------------------------------------------------
# Checks on the effective definition (shared with `fbundle validate`, FB6xx)


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
        return [("definition", f"must be an object, not {_kind(definition)}")]
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
                         f"is {_short(runtime)}; must be one of {', '.join(RUNTIMES)}"))
    entry = code.get("entry_point")
    if not (isinstance(entry, list) and entry and all(isinstance(x, str) and x for x in entry)):
        problems.append(("definition.code_configuration.entry_point",
                         f"is {_short(entry)}; must be a non-empty list of strings, e.g. "
                         '["python", "main.py"]'))
    mode = code.get("dependency_resolution")
    if mode not in MODES:
        problems.append(("definition.code_configuration.dependency_resolution",
                         f"is {_short(mode)}; must be 'bundled' or 'remote_build'"))
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


def _short(value: Any) -> str:
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
            return ("error", f"{name} is {_kind(value)}; write it as a string, e.g. {example}")
        if len(value) > MAX_SCALAR_CHARS or not pattern.match(value):
            return ("error", f"{name} {_short(value)} is not "
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
                              f"{_short(record['protocol'])} is not one the service "
                              f"documents ({', '.join(PROTOCOLS)})")
    env = definition.get("environment_variables")
    if isinstance(env, dict):
        for name, value in env.items():
            if not ENV_NAME.match(name):
                yield Problem("FB608", "error", "definition.environment_variables",
                              f"definition.environment_variables: {_short(name)} is not a "
                              "valid variable name (a letter or _ "
                              "first, then letters, digits, _)")
            elif isinstance(value, str) and _REFERENCE.search(_FOUNDRY_SPAN.sub("", value)):
                refs = sorted({m.group(1) for m in _REFERENCE.finditer(
                    _FOUNDRY_SPAN.sub("", value))})
                yield Problem("FB607", "warning", f"definition.environment_variables.{name}",
                              f"definition.environment_variables.{name} still holds "
                              f"${{{'}, ${'.join(refs)}}}: the agent will see the "
                              "text as written")


def _unknown(key: Any, known: tuple[str, ...], prefix: str) -> Problem:
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.75)
    hint = f" — did you mean {close[0]!r}?" if close else ""
    return Problem("FB605", "warning", f"{prefix}{key}",
                   f"{prefix}{str(key)[:60]} is not a field the service documents{hint}")


# ---------------------------------------------------------------------------------------------
# The sources


def load_definition(root: Path, *, metadata_path: Path | None = None, flags: Flags = Flags(),
                    environ: Mapping[str, str] | None = None) -> Definition:
    """The effective definition for the project at ``root`` (see the module docstring)."""
    if metadata_path is not None:
        found = _from_file(metadata_path, root, environ, flags)
    elif (root / METADATA).is_file():
        found = _from_metadata(root / METADATA)
    else:
        found = _from_azd(root, environ, flags) or _from_flags(root, flags)
    return _apply_flags(found, flags)


def _from_file(path: Path, root: Path, environ: Mapping[str, str] | None,
               flags: Flags) -> Definition:
    if path.suffix.lower() in (".yaml", ".yml"):
        return _from_agent_yaml(path, root, environ, flags, service=None)
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


def _from_azd(root: Path, environ: Mapping[str, str] | None,
              flags: Flags) -> Definition | None:
    service = _azure_service(root)
    if service is not None:
        azure_path, service_name, entry = service
        # As azd's AgentDefinitionFromResolvedService: the service's own properties (what core
        # does not bind), then the deprecated config: block, each with its $ref includes
        # resolved before asking whether it carries a definition (a kind).
        inline = {k: v for k, v in entry.items() if k not in CORE_SERVICE_KEYS}
        for props, label in ((inline, "service"), (entry.get("config"), "config")):
            if not isinstance(props, dict) or not props:
                continue
            resolved = resolve_service_refs(props, azure_path, service_name)
            if isinstance(resolved.get("kind"), str) and resolved["kind"]:
                return _from_azure_props(azure_path, service_name, entry, resolved, label,
                                         environ, flags)
    for name in AGENT_YAML:
        if (root / name).is_file():
            return _from_agent_yaml(root / name, root, environ, flags, service=service)
    return None


#: The keys of an azure.yaml service that azd core binds itself (its ServiceConfig); the others
#: reach the extension as the service's properties, the only place azd resolves ``$ref``.
CORE_SERVICE_KEYS = frozenset({
    "resourceGroup", "resourceName", "apiVersion", "project", "host", "language", "dist",
    "image", "docker", "k8s", "module", "infra", "hooks", "uses", "config", "env", "condition",
    "remoteBuild"})
#: What a service's root ``$ref`` file may not supply (azd's validateRootRefCoreFields).
ROOT_REF_CORE_FIELDS = ("env", "project", "language", "image", "docker")
MAX_REF_DEPTH = 32  # azd's maxRefDepth
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


def resolve_service_refs(props: dict[str, Any], azure_path: Path, service: str
                         ) -> dict[str, Any]:
    """A service's properties with every ``$ref`` include resolved as azd's
    ``foundry.ResolveFileRefs`` resolves it: an object holding ``$ref`` is replaced by the YAML
    or JSON object in that file, its other keys laid over the top (shallow); paths are relative
    to the file that holds the ``$ref`` (azure.yaml's folder at the top); includes nest, and a
    cycle, more than 32 levels, a URL, or a file that is not an object is one exit-2 line.

    Unlike azd, a target must stay inside the azd project (azure.yaml's folder, symlinks
    resolved): the build must be reproducible from that folder alone.
    """
    top = azure_path.parent.resolve()
    where = f"{azure_path}: service {service!r}"
    ref = props.get("$ref")
    if isinstance(ref, str) and ref.strip():
        loaded = _resolve_refs({"$ref": ref}, top, top, (), where)
        for key in ROOT_REF_CORE_FIELDS:
            if isinstance(loaded, dict) and key in loaded:
                raise UsageError(f"{where}: the file its root $ref names sets {key!r}, which "
                                 "azd reads only from azure.yaml",
                                 f"move {key}: into the service in azure.yaml (as azd requires)")
    resolved = _resolve_refs(props, top, top, (), where)
    if problem := depth_problem(resolved):
        raise UsageError(f"{where}: with its $ref includes it {problem}", "fix the includes")
    return resolved if isinstance(resolved, dict) else {}


def _resolve_refs(value: Any, base: Path, top: Path, chain: tuple[Path, ...],
                  where: str) -> Any:
    # Written here because azd's include rule (shallow overlay, paths relative to the holder,
    # cycle and depth limits) is its own; no library implements it. Depth is bounded by
    # MAX_REF_DEPTH per include and by read_yaml's MAX_DEPTH per document.
    if isinstance(value, list):
        return [_resolve_refs(item, base, top, chain, where) for item in value]
    if not isinstance(value, dict):
        return value
    if "$ref" not in value:
        return {key: _resolve_refs(child, base, top, chain, where)
                for key, child in value.items()}
    ref = value["$ref"]
    if not isinstance(ref, str) or not ref.strip():
        raise UsageError(f"{where}: $ref must be a path to a YAML or JSON file, not "
                         f"{_short(ref)}", "set $ref to a relative path, e.g. $ref: ./agent.yaml")
    text = ref.strip()
    if _URL.match(text):
        raise UsageError(f"{where}: $ref {_short(text)} is a URL; remote includes are not "
                         "supported (by azd either)", "download the file and name its path")
    target = (base / text).resolve()
    if not target.is_relative_to(top):
        raise UsageError(f"{where}: $ref {_short(text)} points outside the azd project folder "
                         f"{top}", "move the file into the project and name it relative to "
                         "the file that holds the $ref")
    if target in chain:
        raise UsageError(f"{where}: cyclic $ref include at {target.relative_to(top)}",
                         "remove the circular reference between the included files")
    if len(chain) >= MAX_REF_DEPTH:
        raise UsageError(f"{where}: $ref includes nest more than {MAX_REF_DEPTH} levels deep",
                         "reduce the depth of nested $ref includes")
    if not target.is_file():
        raise UsageError(f"{where}: $ref {_short(text)} names no file "
                         f"({target.relative_to(top)})",
                         "check the path: it is relative to the file that holds the $ref")
    try:
        loaded, _notes = read_yaml(target)  # JSON is YAML
    except UsageError as error:  # say which service's include it is, and what the file must be
        raise UsageError(f"{where}: $ref {_short(text)}: {error.message}",
                         "the file must hold a YAML or JSON object (the definition's fields)"
                         ) from None
    out = _resolve_refs(loaded, target.parent, top, (*chain, target), where)
    for key, child in value.items():
        if key != "$ref":
            out[key] = _resolve_refs(child, base, top, chain, where)
    return out


def _azure_service(root: Path) -> tuple[Path, str, dict[str, Any]] | None:
    """The ``host: azure.ai.agent`` service of the nearest ``azure.yaml`` (this folder or up
    to four above it) whose ``project`` is ``root``."""
    target = root.resolve()
    folder = target
    for _ in range(5):
        for name in AZURE_YAML:
            path = folder / name
            if path.is_file():
                data, _notes = read_yaml(path)
                services = data.get("services")
                if isinstance(services, dict):
                    for service_name, entry in services.items():
                        if not isinstance(entry, dict) or entry.get("host") != "azure.ai.agent":
                            continue
                        project = entry.get("project", ".")
                        if isinstance(project, str) and \
                                (folder / project.replace("\\", "/")).resolve() == target:
                            return path, str(service_name), entry
                return None
        if folder.parent == folder:
            break
        folder = folder.parent
    return None


def _scalar(value: Any, where: str) -> str | None:
    """A YAML scalar as the text the service takes (``0.25`` -> ``"0.25"``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UsageError(f"{where} is {_kind(value)}; it must be a string or a number",
                         "quote it, e.g. '2.0.0' or '0.5'")
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{where} is {value}; it must be a finite number", 'e.g. cpu: "0.5"')
    text = str(value)
    if len(text) > MAX_NUMBER_CHARS:
        raise UsageError(f"{where} is {len(text):,} characters long", 'e.g. cpu: "0.5"')
    return text


def _protocols(value: Any, where: str) -> list[dict[str, str]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise UsageError(f"{where} must be a list of {{protocol, version}}",
                         "e.g. protocols: [{protocol: responses, version: 2.0.0}]")
    records = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("protocol"), str):
            raise UsageError(f"{where}: {_short(item)} is not {{protocol, version}}",
                             "e.g. protocols: [{protocol: responses, version: 2.0.0}]")
        version = _scalar(item.get("version"), f"{where}.version")
        if not version:
            raise UsageError(f"{where}: protocol {item['protocol']!r} has no version",
                             "add version: (e.g. 2.0.0)")
        records.append({"protocol": item["protocol"], "version": version})
    return records


def _env_list(value: Any, where: str) -> dict[str, Any]:
    """azd's ``[{name, value}]`` list (or a plain mapping) -> the service's object."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if not isinstance(value, list):
        raise UsageError(f"{where} must be a list of {{name, value}}",
                         "e.g. environment_variables: [{name: LOG_LEVEL, value: info}]")
    result: dict[str, Any] = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise UsageError(f"{where}: an entry is not {{name, value}} with a string name",
                             "e.g. environment_variables: [{name: LOG_LEVEL, value: info}]")
        result[item["name"]] = item.get("value", "")
    return result


@dataclass
class _Azd:
    """The fields azd's ContainerAgent carries, whichever spelling they came in."""

    path: Path
    label: str
    kind: Any
    name: Any
    description: Any
    protocols: Any
    cpu: Any
    memory: Any
    env: dict[str, Any]
    code: Any
    image: Any = None
    notes: list[str] = field(default_factory=list)
    manifest: bool = False  # an agent manifest: its placeholders were filled (or warned) already


def _from_agent_yaml(path: Path, root: Path, environ: Mapping[str, str] | None, flags: Flags,
                     service: tuple[Path, str, dict[str, Any]] | None) -> Definition:
    data, notes = read_yaml(path)
    if "$ref" in data:
        notes.append(f"warning: {path}: $ref is not followed here (azd resolves $ref includes "
                     "only in azure.yaml services); write the definition in this file, or "
                     "move it to an azure.yaml service")
    environment = Environment.beside(path.parent, environ)
    manifest = data.get("template") is not None and "kind" not in data
    data = _manifest_template(data, path, notes, environment)
    resources = data.get("resources")
    if resources is not None and not isinstance(resources, dict):
        raise UsageError(f"{path}: resources must be a mapping of cpu and memory",
                         "e.g. resources: {cpu: '0.25', memory: 0.5Gi}")
    resources = resources or {}
    code = data.get("code_configuration")
    azd = _Azd(path, str(path), data.get("kind"), data.get("name"), data.get("description"),
               data.get("protocols"), resources.get("cpu"), resources.get("memory"),
               _env_list(data.get("environment_variables"), f"{path}: environment_variables"),
               _code(code, f"{path}: code_configuration", snake=True), data.get("image"),
               notes, manifest=manifest)
    if service is not None:  # the azure.yaml service's own env: and container.resources win
        _overlay_service(azd, service[2])
        azd.label = f"{path} (with {service[0].name} service {service[1]!r})"
    return _map_azd(azd, root, environ, flags, environment)


#: A ``{{NAME}}`` placeholder as azd's ``agent_yaml.PlaceholderPattern`` finds one.
_PLACEHOLDER = re.compile(r"\{\{\s*([^\s{}][^{}]*?)\s*\}\}")
#: The model deployment azd's init records for the manifest's first model resource.
AZD_MODEL_DEPLOYMENT = "AZURE_AI_MODEL_DEPLOYMENT_NAME"


def _placeholders(value: Any) -> list[str]:
    """The ``{{NAME}}`` placeholders left in ``value``'s strings (``${{...}}`` spans are
    Foundry's, not placeholders), sorted."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.update(_PLACEHOLDER.findall(_FOUNDRY_SPAN.sub("", item)))
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return sorted(found)


def _manifest_template(data: dict[str, Any], path: Path, notes: list[str],
                       environment: Environment) -> dict[str, Any]:
    """An AgentManifest (the ContainerAgent under ``template:``, as the samples' older
    agent.yaml and every ``agent.manifest.yaml`` write it) -> its template, read the way azd's
    ``ExtractAgentDefinition`` reads it: the template's own ``name``/``description`` win, the
    manifest's fill them in. The manifest's top-level ``resources`` is a list of what to
    provision (models, tools, connections), not the container's cpu/memory, so it is not read
    (only its model names, which are placeholders too). ``{{param}}`` placeholders are then
    filled as ``azd ai agent init --no-prompt`` fills them (:func:`_fill_parameters`)."""
    template = data.get("template")
    if template is None or "kind" in data:
        return data
    if not isinstance(template, dict) or not template:
        raise UsageError(f"{path}: template must be a non-empty mapping (the agent definition)",
                         "e.g. template: {kind: hosted, name: my-agent, protocols: [...]}")
    found = dict(template)
    for key in ("name", "description"):
        if not found.get(key) and isinstance(data.get(key), str):
            found[key] = data[key]
    notes.append(f"note: {path} is an agent manifest; its template: is the definition "
                 "(the resources it lists are azd ai agent init's to provision, not read)")
    return _fill_parameters(found, data, path, notes, environment)


@dataclass(frozen=True)
class _Parameter:
    """One value a manifest placeholder can take: a declared parameter or a model resource."""

    name: str
    default: Any = None
    enum: tuple[Any, ...] = ()
    secret: bool = False
    model_id: str | None = None  # a model resource: azd's default deployment name
    first_model: bool = False


def _manifest_parameters(data: dict[str, Any], path: Path) -> dict[str, _Parameter]:
    """The manifest's ``parameters:`` in either of azd's layouts (``PropertySchema``: a
    ``properties:`` list or mapping, or the record form with one key per parameter and an
    optional ``schema: {type, enum, default, secret}``), and its model resources, whose names
    azd's init replaces with the deployment it picks."""
    found: dict[str, _Parameter] = {}
    models = [item for item in data.get("resources") or ()
              if isinstance(item, dict) and item.get("kind") == "model"
              and isinstance(item.get("name"), str)] \
        if isinstance(data.get("resources"), list) else []
    for index, item in enumerate(models):
        model_id = item.get("id")
        found[item["name"]] = _Parameter(item["name"], model_id=model_id if isinstance(
            model_id, str) and model_id else None, first_model=index == 0)
    schema = data.get("parameters")
    if schema is None:
        return found
    if not isinstance(schema, dict):
        raise UsageError(f"{path}: parameters must be a mapping (azd's PropertySchema), not "
                         f"{_kind(schema)}", "e.g. parameters: {api_key: {schema: {type: "
                         "string, secret: true}, required: true}}")
    properties = schema.get("properties")
    if isinstance(properties, list):
        entries = [(item.get("name"), item) for item in properties if isinstance(item, dict)]
    elif isinstance(properties, dict):
        entries = list(properties.items())
    else:
        entries = [(k, v) for k, v in schema.items() if k not in ("examples", "strict")]
    for name, entry in entries:
        if not isinstance(name, str) or not name:
            continue
        entry = entry if isinstance(entry, dict) else {}
        raw = entry.get("schema")
        nested: dict[str, Any] = raw if isinstance(raw, dict) else {}
        default = entry.get("default")
        default = nested.get("default") if default is None else default
        enum = entry.get("enumValues") or nested.get("enum") or ()
        found[name] = _Parameter(name, default, tuple(enum) if isinstance(enum, list) else (),
                                 bool(entry.get("secret") or nested.get("secret")))
    return found


def parameter_variables(name: str) -> list[str]:
    """The environment variables that can carry manifest parameter ``name``: the name as
    written and its upper-case form with other characters as ``_`` (``toolbox-endpoint`` ->
    ``TOOLBOX_ENDPOINT``), each only when it is a valid variable name."""
    upper = re.sub(r"[^A-Za-z0-9_]", "_", name).upper()
    return [n for n in dict.fromkeys((name, upper)) if ENV_NAME.match(n)]


def _go_text(value: Any) -> str:
    """A YAML default as azd writes it into the manifest (Go's ``%v``: ``true``, ``0.5``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill_parameters(template: dict[str, Any], data: dict[str, Any], path: Path,
                     notes: list[str], environment: Environment) -> dict[str, Any]:
    """``template`` with its ``{{NAME}}`` / ``{{ NAME }}`` placeholders replaced, as azd's
    ``injectParameterValues`` replaces them, by the value ``azd ai agent init --no-prompt``
    would take, without prompting. For a declared parameter or a model resource, the first of:

    1. the environment: the process environment, then the ``.env`` beside the file, then the
       azd environment (:func:`parameter_variables` names the variables); inside
       ``environment_variables`` the placeholder becomes ``${VARIABLE}``, so a ``.env`` value
       is expanded and kept out of files exactly like any other ``${VAR}``;
    2. for the first model resource, ``AZURE_AI_MODEL_DEPLOYMENT_NAME`` (the deployment azd's
       init records for it);
    3. the parameter's ``default`` (not for a ``secret`` one: azd's --no-prompt refuses to
       settle a secret without the environment), else an enum's first value (what --no-prompt
       selects), else a model resource's ``id`` (azd's default deployment name);
    4. none: one exit-2 line naming the parameters and the variables that set them.

    Placeholders that name nothing declared are kept as written with a warning (azd warns the
    same way); ``${{...}}`` spans are Foundry's and are never touched. Values are never printed.
    """
    declared = _manifest_parameters(data, path)
    filled: dict[str, tuple[str, str | None]] = {}  # name -> (value, variable it came from)
    how: dict[str, str] = {}
    missing: list[str] = []
    undeclared: set[str] = set()
    spaced: set[str] = set()

    def value_of(name: str) -> tuple[str, str | None] | None:
        if name in filled:
            return filled[name]
        parameter = declared[name]
        for variable in parameter_variables(name) + (
                [AZD_MODEL_DEPLOYMENT] if parameter.first_model else []):
            found = environment.lookup(variable)
            if found is not None:
                if parameter.secret:
                    environment.secret.add(variable)
                filled[name], how[name] = (found, variable), f"{variable} from the environment"
                return filled[name]
        if parameter.default is not None and not parameter.secret:
            filled[name], how[name] = (_go_text(parameter.default), None), "its default"
        elif parameter.enum and not parameter.secret:
            filled[name], how[name] = (_go_text(parameter.enum[0]), None), "its first enum value"
        elif parameter.model_id:
            filled[name], how[name] = (parameter.model_id, None), "the model's id"
        else:
            missing.append(name)
            return None
        return filled[name]

    def fill(text: str, in_env: bool) -> str:
        def replace(match: re.Match[str]) -> str:
            whole = match.group(0)
            name = match.group(1)
            if name not in declared:
                undeclared.add(name)
                return whole
            if whole not in (f"{{{{{name}}}}}", f"{{{{ {name} }}}}"):
                spaced.add(whole)  # azd substitutes only these two spellings of a name
                return whole
            found = value_of(name)
            if found is None:
                return whole
            value, variable = found
            return f"${{{variable}}}" if in_env and variable else value

        parts = re.split(r"(\$\{\{.*?\}\})", text, flags=re.S)  # Foundry spans stay
        return "".join(part if index % 2 else _PLACEHOLDER.sub(replace, part)
                       for index, part in enumerate(parts))

    def walk(value: Any, in_env: bool) -> Any:
        if isinstance(value, str):
            return fill(value, in_env)
        if isinstance(value, list):
            return [walk(item, in_env) for item in value]
        if isinstance(value, dict):
            return {key: walk(child, in_env or key == "environment_variables")
                    for key, child in value.items()}
        return value

    result = walk(template, False)
    if missing:
        names = sorted(set(missing))
        variables = parameter_variables(names[0])
        where = (f"set {' or '.join(variables)} in the environment, a .env beside {path.name} "
                 "or the azd environment (.azure/<env>/.env)"
                 f"{', and likewise the others' if len(names) > 1 else ''}; or "
                 if variables else "no environment variable can carry that name: ")
        raise UsageError(
            f"{path}: manifest parameter{'s' if len(names) > 1 else ''} "
            f"{', '.join(names)} {'have' if len(names) > 1 else 'has'} no value "
            "(azd ai agent init would prompt for it)",
            f"{where}give it a default: under parameters:")
    if how:
        notes.append(f"note: {path}: manifest parameters filled as azd ai agent init "
                     "--no-prompt would: " + ", ".join(f"{name} ({how[name]})"
                                                      for name in sorted(how)))
    if undeclared:
        names = sorted(undeclared)
        notes.append(f"warning: {path}: {{{{{'}}, {{'.join(names)}}}}} "
                     f"{'is' if len(names) == 1 else 'are'} no declared parameter or model "
                     "resource; kept as written — declare it under parameters:, or write the "
                     "value")
    if spaced:
        notes.append(f"warning: {path}: {', '.join(sorted(spaced))} kept as written: azd fills "
                     "only {{NAME}} and {{ NAME }} (one space each side, or none)")
    return result if isinstance(result, dict) else template


def _from_azure_props(azure_path: Path, service_name: str, entry: dict[str, Any],
                      props: dict[str, Any], label: str,
                      environ: Mapping[str, str] | None, flags: Flags) -> Definition:
    where = f"{azure_path} service {service_name!r}" + (" config" if label == "config"
                                                         else "")
    azd = _Azd(azure_path, where, props.get("kind"), props.get("name"), props.get("description"),
               props.get("protocols"), None, None,
               _env_list(props.get("environmentVariables"), f"{where}: environmentVariables"),
               _code(props.get("codeConfiguration"), f"{where}: codeConfiguration", snake=False),
               entry.get("image") or props.get("image"))
    # container: is one of the properties ($ref may supply it); env: is core's, on the entry
    _overlay_service(azd, {"container": props.get("container"), "env": entry.get("env")})
    root = (azure_path.parent / str(entry.get("project", "."))).resolve()
    return _map_azd(azd, root, environ, flags)


def _overlay_service(azd: _Azd, entry: Mapping[str, Any]) -> None:
    container = entry.get("container")
    if isinstance(container, dict) and isinstance(container.get("resources"), dict):
        resources = container["resources"]
        azd.cpu = resources.get("cpu", azd.cpu)
        azd.memory = resources.get("memory", azd.memory)
    env = entry.get("env")
    if isinstance(env, dict):
        azd.env.update({str(k): v for k, v in env.items()})


def _code(value: Any, where: str, *, snake: bool) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UsageError(f"{where} must be a mapping", "runtime, entry_point, "
                         "dependency_resolution")
    keys = ("runtime", "entry_point", "dependency_resolution") if snake else \
        ("runtime", "entryPoint", "dependencyResolution")
    return {"runtime": value.get(keys[0]), "entry_point": value.get(keys[1]),
            "dependency_resolution": value.get(keys[2])}


def _map_azd(azd: _Azd, root: Path, environ: Mapping[str, str] | None,
             flags: Flags, environment: Environment | None = None) -> Definition:
    """azd's ContainerAgent -> the service's definition, as ``CreateHostedAgentAPIRequest``
    maps it (defaults included), with ``${VAR}`` expanded. ``flags`` only decide which notes
    are true: a default a flag replaces afterwards (``_apply_flags``) is not announced."""
    where = azd.label
    notes = list(azd.notes)
    if azd.kind != "hosted":
        what = "missing" if azd.kind is None else _short(azd.kind)
        raise UsageError(f"{where}: kind is {what}; fbundle builds hosted agents",
                         "set kind: hosted")
    if azd.image and azd.code is None:
        raise UsageError(f"{where}: names an image ({_short(azd.image)}) and no "
                         "code_configuration: that is a container deploy",
                         "add code_configuration (runtime, entry_point) for a source deploy, "
                         "or pass --runtime/--entry-point/--mode")
    if environment is None:
        environment = Environment.beside(azd.path.parent, environ)
    definition: dict[str, Any] = {"kind": "hosted"}
    protocols = _protocols(azd.protocols, f"{where}: protocols")
    if protocols is None:
        protocols = [dict(p) for p in AZD_DEFAULT_PROTOCOLS]
        if not flags.protocols:  # a note says only what happens: --protocol replaces it
            notes.append(f"note: {where} declares no protocols; using "
                         f"{_said(AZD_DEFAULT_PROTOCOLS)} (azd's default)")
    definition["protocol_versions"] = protocols
    for key, value in (("cpu", azd.cpu), ("memory", azd.memory)):
        text = _scalar(value, f"{where}: resources.{key}")
        if text is not None:
            definition[key] = environment.expand(text)
    code = azd.code or {}
    runtime = code.get("runtime") or None
    if runtime is not None and not isinstance(runtime, str):
        raise UsageError(f"{where}: code_configuration runtime is {_kind(runtime)}",
                         f"e.g. runtime: python_3_13 ({', '.join(RUNTIMES)})")
    entry = code.get("entry_point")
    mode = code.get("dependency_resolution") or None
    # --runtime wins later (_apply_flags); take it now so a default entry point gets that
    # runtime's command (dotnet, not python) and the note names what is used
    runtime = flags.runtime or runtime or detect_runtime(root)
    definition["code_configuration"] = {
        "runtime": runtime,
        "entry_point": azd_entry_point(entry, runtime, root, where),
        "dependency_resolution": mode or AZD_DEFAULT_MODE,
    }
    # Name the defaults that stay ("remote_build" is what surprises a first build); a value a
    # flag replaces is not a default that is used, so no note says it is.
    chosen = definition["code_configuration"]
    if azd.code is None:
        used = [text for text, flag in (
            (chosen["runtime"], flags.runtime), (repr(shlex.join(chosen["entry_point"])),
                                                 flags.entry_point),
            (chosen["dependency_resolution"], flags.mode)) if not flag]
        if used:
            notes.append(f"note: {where} has no code_configuration; using azd's "
                         f"default{'s' if len(used) > 1 else ''} {', '.join(used)} "
                         "(--runtime, --entry-point and --mode override them)")
    elif mode is None and not flags.mode:
        notes.append(f"note: {where} sets no dependency_resolution; using remote_build "
                     "(azd's default; --mode overrides it)")
    env: dict[str, str] = {}
    templates: dict[str, str] = {}
    for name, value in azd.env.items():
        text = "" if value is None else _scalar(value, f"{where}: environment {name}")
        env[name], secret = environment.expand_noting_dotenv(text or "")
        if secret:
            templates[name] = text or ""
    if env:
        definition["environment_variables"] = env
    if not azd.manifest and (held := _placeholders(definition)):
        notes.append(f"warning: {where}: {{{{{'}}, {{'.join(held)}}}}} "
                     f"{'is a placeholder' if len(held) == 1 else 'are placeholders'} azd's "
                     "init fills from an agent manifest's parameters; kept as written (the "
                     "agent would see it) — write the value, or ${VAR} to take it from the "
                     "environment")
    if environment.unset:
        names = ", ".join(sorted(set(environment.unset)))
        notes.append(f"warning: {where}: {names} not set in the environment, "
                     f"{azd.path.parent.name or '.'}/.env or the azd environment; kept as "
                     "written")
    metadata: dict[str, Any] = {}
    if isinstance(azd.description, str) and azd.description.strip():
        metadata["description"] = azd.description.strip()[:512]
    metadata["definition"] = definition
    agent = azd.name if isinstance(azd.name, str) and azd.name else None
    return Definition(metadata, where, azd.path, agent, tuple(notes),
                      secret_values=environment.used_dotenv, env_templates=templates)


def detect_runtime(root: Path) -> str:
    """azd's choice when nothing says: dotnet_10 for a folder with only a .csproj, else
    python_3_13."""
    try:
        names = [p.name for p in root.iterdir()]
    except OSError:
        names = []
    has_csproj = any(n.endswith(".csproj") for n in names)
    has_python = any(n.endswith(".py") or n in ("requirements.txt", "pyproject.toml")
                     for n in names)
    return "dotnet_10" if has_csproj and not has_python else "python_3_13"


def default_entry_file(root: Path, runtime: str) -> str:
    """azd's ``detectDefaultEntryPoint``: app.py when present, else main.py; for .NET the
    project's <AssemblyName>.dll (else the .csproj's name)."""
    if runtime in DOTNET_RUNTIMES:
        for project in sorted(root.glob("*.csproj")):
            try:
                text = project.read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            match = re.search(r"<AssemblyName>\s*([^<\s]+)\s*</AssemblyName>", text)
            return f"{match.group(1) if match else project.stem}.dll"
        return "App.dll"
    return "app.py" if (root / "app.py").is_file() else "main.py"


def azd_entry_point(value: Any, runtime: str, root: Path, where: str) -> list[str]:
    """azd's ``entry_point`` (a file, prefixed with the runtime's command) -> the service's list.

    A list is taken as it is; a string that already starts with ``python``/``dotnet`` is split
    like a shell would (azd would send ``["python", "python main.py"]``, which cannot run).
    """
    prefix = "dotnet" if runtime in DOTNET_RUNTIMES else "python"
    if value is None or value == "":
        return [prefix, default_entry_file(root, runtime)]
    if isinstance(value, list) and value and all(isinstance(x, str) and x for x in value):
        return list(value)
    if not isinstance(value, str):
        raise UsageError(f"{where}: entry_point is {_kind(value)}", "e.g. entry_point: main.py")
    words = _split(value, where)
    if words[0] in ("python", "python3", "dotnet", "uv", "uvicorn", "gunicorn"):
        return words
    return [prefix, *words]


def _split(value: str, where: str) -> list[str]:
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


def _from_flags(root: Path, flags: Flags) -> Definition:
    missing = [f for f, v in (("--runtime", flags.runtime), ("--mode", flags.mode)) if not v]
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
        notes.append(f"note: no --protocol; using {_said(AZD_DEFAULT_PROTOCOLS)} "
                     "(azd's default)")
    return Definition({"definition": definition}, "flags", None, None, tuple(notes))


def _said(protocols: list[dict[str, str]]) -> str:
    """``[{"protocol": "responses", "version": "2.0.0"}]`` -> ``responses 2.0.0``."""
    return ", ".join(f"{p['protocol']} {p['version']}" for p in protocols)


def parse_protocol(text: str) -> dict[str, str]:
    """``responses@2.0.0`` -> ``{"protocol": "responses", "version": "2.0.0"}``."""
    protocol, at, version = text.partition("@")
    if not protocol or not at or not version:
        raise UsageError(f"--protocol {text!r} must be PROTOCOL@VERSION",
                         f"e.g. --protocol responses@2.0.0 ({', '.join(PROTOCOLS)})")
    return {"protocol": protocol, "version": version}


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
                    code["entry_point"] = _split(flags.entry_point, "--entry-point")
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

