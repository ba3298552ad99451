"""azd's shapes -> the service's definition, as azd's ``azure.ai.agents`` extension reads and
maps them: the ``host: azure.ai.agent`` service of ``azure.yaml`` (inline properties, then the
deprecated ``config:`` block, each with its ``$ref`` includes resolved as
``foundry.ResolveFileRefs`` does), else ``agent.yaml`` / ``agent.yml`` (the AgentSchema
``hosted`` definition); an agent manifest's ``{{param}}`` placeholders filled as ``azd ai agent
init --no-prompt`` fills them; defaults as ``CreateHostedAgentAPIRequest`` sets them.
"""

from __future__ import annotations

import math
import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bundler.documents import MAX_NUMBER_CHARS, depth_problem, kind_of, read_yaml
from bundler.envexpand import FOUNDRY_SPAN, Environment
from bundler.errors import UsageError
from bundler.metadata import (
    AZD_DEFAULT_MODE,
    AZD_DEFAULT_PROTOCOLS,
    ENV_NAME,
    Definition,
    Flags,
    said,
    short,
    split_command,
)
from bundler.targets import DOTNET_RUNTIMES, RUNTIMES

AGENT_YAML = ("agent.yaml", "agent.yml")
AZURE_YAML = ("azure.yaml", "azure.yml")


def from_azd(root: Path, environ: Mapping[str, str] | None,
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
            return from_agent_yaml(root / name, root, environ, flags, service=service)
    return None


#: The keys of an azure.yaml service that azd core binds itself (its ServiceConfig); the others
#: reach the extension as the service's properties, the only place azd resolves ``$ref``.
CORE_SERVICE_KEYS = frozenset({
    "resourceGroup", "resourceName", "apiVersion", "project", "host", "language", "dist",
    "image", "docker", "k8s", "module", "infra", "hooks", "uses", "config", "env", "condition",
    "remoteBuild"})
def service_props(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The service's deploy settings (container, startupCommand, ...) as azd's
    ``ServiceConfigProps`` picks them: its inline properties when it has any (unless they carry
    no ``kind`` and the deprecated ``config:`` block does), else that ``config:`` block."""
    inline = {k: v for k, v in entry.items() if k not in CORE_SERVICE_KEYS}
    config = entry.get("config")
    config = config if isinstance(config, dict) else {}
    if inline and not ("kind" not in inline and "kind" in config):
        return inline
    return config


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
                         f"{short(ref)}", "set $ref to a relative path, e.g. $ref: ./agent.yaml")
    text = ref.strip()
    if _URL.match(text):
        raise UsageError(f"{where}: $ref {short(text)} is a URL; remote includes are not "
                         "supported (by azd either)", "download the file and name its path")
    target = (base / text).resolve()
    if not target.is_relative_to(top):
        raise UsageError(f"{where}: $ref {short(text)} points outside the azd project folder "
                         f"{top}", "move the file into the project and name it relative to "
                         "the file that holds the $ref")
    if target in chain:
        raise UsageError(f"{where}: cyclic $ref include at {target.relative_to(top)}",
                         "remove the circular reference between the included files")
    if len(chain) >= MAX_REF_DEPTH:
        raise UsageError(f"{where}: $ref includes nest more than {MAX_REF_DEPTH} levels deep",
                         "reduce the depth of nested $ref includes")
    if not target.is_file():
        raise UsageError(f"{where}: $ref {short(text)} names no file "
                         f"({target.relative_to(top)})",
                         "check the path: it is relative to the file that holds the $ref")
    try:
        loaded, _notes = read_yaml(target)  # JSON is YAML
    except UsageError as error:  # say which service's include it is, and what the file must be
        raise UsageError(f"{where}: $ref {short(text)}: {error.message}",
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


def agent_services(root: Path) -> list[tuple[str, str]]:
    """The ``host: azure.ai.agent`` services of ``root``'s own ``azure.yaml`` as (name, project
    folder relative to ``root``): at an azd project root the definitions live in the services'
    folders, and the "no definition" error names them (azd builds each service from its
    ``project:``)."""
    for name in AZURE_YAML:
        path = root / name
        if path.is_file():
            data, _notes = read_yaml(path)
            services = data.get("services")
            if not isinstance(services, dict):
                return []
            found = []
            for service, entry in services.items():
                project = entry.get("project", ".") if isinstance(entry, dict) else None
                if not isinstance(project, str) or entry.get("host") != "azure.ai.agent":
                    continue
                folder = posixpath.normpath(project.replace("\\", "/"))
                if folder != ".":  # the root's own service was looked for already
                    found.append((str(service), folder))
            return found
    return []


def _scalar(value: Any, where: str) -> str | None:
    """A YAML scalar as the text the service takes (``0.25`` -> ``"0.25"``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UsageError(f"{where} is {kind_of(value)}; it must be a string or a number",
                         "quote it, e.g. '2.0.0' or '0.5'")
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{where} is {value}; it must be a finite number", 'e.g. cpu: "0.5"')
    text = str(value)
    if len(text) > MAX_NUMBER_CHARS:
        raise UsageError(f"{where} is {len(text):,} characters long", 'e.g. cpu: "0.5"')
    return text


def _protocols(value: Any, where: str, notes: list[str]) -> list[dict[str, str]] | None:
    """azd's ``protocols`` list -> the service's ``protocol_versions``. An entry without a
    version is passed on by azd (agent_yaml/map.go sends it as written); fbundle gives it the
    version azd sends when no protocol is declared (2.0.0, which azd's init also calls the
    service's recommended one) and says so, rather than ship an empty version."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise UsageError(f"{where} must be a list of {{protocol, version}}",
                         "e.g. protocols: [{protocol: responses, version: 2.0.0}]")
    records = []
    defaulted: list[str] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("protocol"), str):
            raise UsageError(f"{where}: {short(item)} is not {{protocol, version}}",
                             "e.g. protocols: [{protocol: responses, version: 2.0.0}]")
        version = _scalar(item.get("version"), f"{where}.version")
        if not version:
            version = AZD_DEFAULT_PROTOCOLS[0]["version"]
            defaulted.append(item["protocol"])
        records.append({"protocol": item["protocol"], "version": version})
    if defaulted:
        verb = "has" if len(defaulted) == 1 else "have"
        notes.append(f"note: {where}: {', '.join(defaulted)} {verb} no version; using "
                     f"{AZD_DEFAULT_PROTOCOLS[0]['version']} "
                     "(azd's default protocol version; --protocol or version: sets another)")
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
    startup: Any = None  # the azure.yaml service's startupCommand (what `azd ai agent run` runs)
    docker: bool = False  # the service is `language: docker`: azd deploys it as a container


def from_agent_yaml(path: Path, root: Path, environ: Mapping[str, str] | None, flags: Flags,
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
        entry = service[2]
        props = service_props(entry)
        if props:
            props = resolve_service_refs(props, service[0], service[1])
        _overlay_service(azd, {"container": props.get("container"), "env": entry.get("env")})
        azd.startup, azd.docker = props.get("startupCommand"), entry.get("language") == "docker"
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
            found.update(_PLACEHOLDER.findall(FOUNDRY_SPAN.sub("", item)))
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
                         f"{kind_of(schema)}", "e.g. parameters: {api_key: {schema: {type: "
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
    azd.startup, azd.docker = props.get("startupCommand"), entry.get("language") == "docker"
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
        what = "missing" if azd.kind is None else short(azd.kind)
        raise UsageError(f"{where}: kind is {what}; fbundle builds hosted agents",
                         "set kind: hosted")
    if azd.image and azd.code is None:
        raise UsageError(f"{where}: names an image ({short(azd.image)}) and no "
                         "code_configuration: that is a container deploy",
                         "add code_configuration (runtime, entry_point) for a source deploy, "
                         "or pass --runtime/--entry-point/--mode")
    if environment is None:
        environment = Environment.beside(azd.path.parent, environ)
    definition: dict[str, Any] = {"kind": "hosted"}
    # --protocol replaces the file's protocols (_apply_flags): they are not judged at all
    protocols = None if flags.protocols else _protocols(azd.protocols, f"{where}: protocols",
                                                        notes)
    if protocols is None:
        protocols = [dict(p) for p in AZD_DEFAULT_PROTOCOLS]
        if not flags.protocols:  # a note says only what happens: --protocol replaces it
            notes.append(f"note: {where} declares no protocols; using "
                         f"{said(AZD_DEFAULT_PROTOCOLS)} (azd's default)")
    definition["protocol_versions"] = protocols
    for key, value in (("cpu", azd.cpu), ("memory", azd.memory)):
        text = _scalar(value, f"{where}: resources.{key}")
        if text is not None:
            definition[key] = environment.expand(text)
    code = azd.code or {}
    runtime = code.get("runtime") or None
    if runtime is not None and not isinstance(runtime, str):
        raise UsageError(f"{where}: code_configuration runtime is {kind_of(runtime)}",
                         f"e.g. runtime: python_3_13 ({', '.join(RUNTIMES)})")
    entry = code.get("entry_point")
    mode = code.get("dependency_resolution") or None
    # --runtime wins later (_apply_flags); take it now so a default entry point gets that
    # runtime's command (dotnet, not python) and the note names what is used
    runtime = flags.runtime or runtime or detect_runtime(root)
    startup = azd.startup if isinstance(azd.startup, str) and azd.startup.strip() else None
    from_startup = startup is not None and entry in (None, "") and not flags.entry_point
    if from_startup:
        # The source names no entry point; the service's startupCommand is the command azd's
        # `azd ai agent run` starts (run.go) — a better guess than main.py, and said so.
        entry_point = split_command(str(startup), f"{where}: startupCommand")
        container = "; azd deploys this language: docker service as a container, fbundle " \
            "as source" if azd.docker else ""
        notes.append(f"note: {where} names no entry point; using the service's startupCommand "
                     f"{shlex.join(entry_point)!r} (what azd ai agent run starts{container}) "
                     "— --entry-point overrides it")
    else:
        entry_point = azd_entry_point(entry, runtime, root, where)
    definition["code_configuration"] = {
        "runtime": runtime,
        "entry_point": entry_point,
        "dependency_resolution": mode or AZD_DEFAULT_MODE,
    }
    # Name the defaults that stay ("remote_build" is what surprises a first build); a value a
    # flag replaces is not a default that is used, so no note says it is.
    chosen = definition["code_configuration"]
    if azd.code is None:
        used = [text for text, flag in (
            (chosen["runtime"], flags.runtime), (repr(shlex.join(chosen["entry_point"])),
                                                 flags.entry_point or from_startup),
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
        raise UsageError(f"{where}: entry_point is {kind_of(value)}", "e.g. entry_point: main.py")
    words = split_command(value, where)
    if words[0] in ("python", "python3", "dotnet", "uv", "uvicorn", "gunicorn"):
        return words
    return [prefix, *words]
