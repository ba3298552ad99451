"""The bundle to boot: built from a project or read from a zip, unpacked the way the service
unpacks it, and the environment the container gives its entry point.

The environment is made from nothing, not copied from fbundle's own: the service's container
has no ``VIRTUAL_ENV``, no user site, no ``PYTHONHOME``; what the agent sees is ``PORT``,
``PYTHONPATH`` (``packages/``, bundled mode), the variables the service injects (as azd's local
run adds them: :func:`service_environment`), the definition's ``environment_variables`` and the
local secrets of an env file — plus a ``PATH``, ``HOME`` and locale a container also has.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from bundler.checks import CheckContext, Finding
from bundler.envexpand import read_dotenv
from bundler.errors import UsageError
from bundler.model import CHUNK, Bundle
from bundler.options import BuildOptions
from bundler.project import default_agent_name
from bundler.targets import PythonTarget, Target

DOTENV = ".env"
#: What the hosted-agent container is given by the service, passed through when set locally
#: (the host environment, the project's .env, the azd environment), as azd's
#: ``appendFoundryEnvVars`` does; FOUNDRY_AGENT_NAME / _VERSION are always set.
PASSED_THROUGH = ("FOUNDRY_PROJECT_ENDPOINT", "FOUNDRY_PROJECT_ARM_ID",
                  "APPLICATIONINSIGHTS_CONNECTION_STRING")
SERVICE_VARIABLES = (*PASSED_THROUGH, "FOUNDRY_AGENT_NAME", "FOUNDRY_AGENT_VERSION")
LOCAL_VERSION = "local"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass
class Runnable:
    """A zip, what it is meant to be (``context``) and its agent definition."""

    zip_path: Path
    bundle: Bundle
    context: CheckContext
    definition: dict[str, Any] | None
    dotenv: Path  # where a local .env would be (the project's, or beside the zip)
    built: bool = False
    agent_name: str = "agent"  # FOUNDRY_AGENT_NAME: the project's agent name, or the zip's
    #: A project's build already ran validate's checks on the plan (refusing errors): these
    #: are its warnings. None for a zip, which has not been checked yet.
    build_warnings: list[Finding] | None = None

    @property
    def target(self) -> Target:
        return self.context.target

    @property
    def protocols(self) -> list[str]:
        declared = (self.definition or {}).get("definition", {})
        versions = declared.get("protocol_versions") if isinstance(declared, dict) else None
        return [str(p["protocol"]) for p in versions or []
                if isinstance(p, dict) and isinstance(p.get("protocol"), str)]

    @property
    def environment_variables(self) -> dict[str, str]:
        declared = (self.definition or {}).get("definition", {})
        values = declared.get("environment_variables") if isinstance(declared, dict) else None
        if not isinstance(values, dict):
            return {}
        return {str(k): "" if v is None else str(v) for k, v in values.items()}


def load(path: Path, options: BuildOptions) -> Runnable:
    """A project folder is built first (``build_project``: same cache, same zip in dist/); a
    zip is used as it is, with the definition beside it (or ``--metadata``)."""
    from bundler.validate import context_for, find_definition, load_bundle

    if path.is_dir():
        from bundler.build import build_project

        result = build_project(path, options)
        built = load_bundle(result.zip_path)
        return Runnable(result.zip_path, built, context_for(built, result.spec.metadata),
                        result.spec.metadata, path / DOTENV, built=True,
                        build_warnings=list(result.warnings), agent_name=result.spec.name)
    bundle = load_bundle(path)
    definition = find_definition(path, bundle, options.metadata)
    context = context_for(bundle, definition, runtime=options.runtime, mode=options.mode,
                          glibc=options.glibc)
    named = definition.get("name") if isinstance(definition, dict) else None
    return Runnable(path, bundle, context, definition, path.parent / DOTENV,
                    agent_name=named if isinstance(named, str) and named
                    else default_agent_name(Path(path.stem)))


def validate(runnable: Runnable) -> list[Finding]:
    """What ``fbundle validate`` says about the bundle, before it is booted: a zip is checked
    with validate's own function and context; a project's build has just run the same checks
    on the plan it wrote (and refused errors), so its warnings are reused, not recomputed."""
    if runnable.build_warnings is not None:
        return runnable.build_warnings
    from bundler.validate import check_bundle

    return check_bundle(runnable.bundle, runnable.context)


def check_runnable(runnable: Runnable) -> PythonTarget:
    """The CPython the bundle needs: only Python bundles boot here (a .NET one needs the .NET
    runtime and a dotnet host)."""
    target = runnable.target
    if not isinstance(target, PythonTarget):
        raise UsageError(f"{runnable.zip_path} is a {target.runtime} bundle; "
                         "fbundle run boots python_3_13 / python_3_14 bundles",
                         "run a .NET bundle with `dotnet <entry>.dll` in an unpacked copy")
    if not runnable.context.entry_point:
        raise UsageError(f"{runnable.zip_path}: the definition has no entry_point",
                         'set code_configuration.entry_point, e.g. ["python", "main.py"]')
    return target


def unsafe_name(name: str) -> str | None:
    """Why a member name must not be written under the unpack folder, or None."""
    if not name or "\0" in name:
        return "an empty name or a NUL byte"
    if "\\" in name:
        return "a backslash"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "a '..' part"
    return None


def unpack(bundle: Bundle, root: Path) -> None:
    """Write every member under ``root`` from the zip reader's own names and bytes; a name
    that would land outside ``root``, or a symlink, is refused before anything is written."""
    for entry in bundle.entries:
        if problem := unsafe_name(entry.name):
            raise UsageError(f"{bundle.location}: member {entry.name!r} has {problem}; "
                             "fbundle run does not unpack it", "rebuild the zip with fbundle build")
        if entry.kind == "symlink":
            raise UsageError(f"{bundle.location}: member {entry.name!r} is a symlink "
                             "(FB208); fbundle run does not create links from a zip",
                             "rebuild the zip with fbundle build")
    # With those names refused and no link ever written, every path below stays under root.
    made: set[Path] = set()
    for entry in bundle.entries:
        target = root.joinpath(*PurePosixPath(entry.name).parts)
        folder = target if entry.kind == "dir" else target.parent
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(folder)
        if entry.kind == "dir":
            continue
        with entry.open() as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink, CHUNK)
        if entry.mode & 0o111:
            target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of a dotenv file (python-dotenv's grammar: quotes, ``export``, comments,
    ``${VAR}`` from earlier lines). Values are secrets: they never reach a message."""
    if not path.is_file():
        raise UsageError(f"--env-file {path}: not found", "pass an existing dotenv file")
    values = read_dotenv(path, f"--env-file {path}", "check the file")
    return {k: v for k, v in values.items() if v is not None}


def service_environment(runnable: Runnable, secrets: dict[str, str],
                        lookup: Callable[[str], str | None]) -> tuple[dict[str, str],
                                                                       dict[str, str]]:
    """The variables the service injects, as azd's local run sets them: (those set here —
    FOUNDRY_AGENT_NAME, FOUNDRY_AGENT_VERSION ``local`` —, those passed through). A pass-through
    value comes from ``secrets`` (--env-file), else ``lookup`` (the host environment, then the
    project's .env, then the azd environment); FOUNDRY_PROJECT_ARM_ID falls back to
    AZURE_AI_PROJECT_ID as azd's does. Unset ones stay unset. Values are secrets (a connection
    string holds a key): they go to the masks, never to a message."""

    def value(name: str) -> str | None:
        return secrets.get(name) or lookup(name) or None

    passed = {name: found for name in PASSED_THROUGH if (found := value(name))}
    if "FOUNDRY_PROJECT_ARM_ID" not in passed and (arm := value("AZURE_AI_PROJECT_ID")):
        passed["FOUNDRY_PROJECT_ARM_ID"] = arm
    here = {"FOUNDRY_AGENT_NAME": value("FOUNDRY_AGENT_NAME") or runnable.agent_name,
            "FOUNDRY_AGENT_VERSION": value("FOUNDRY_AGENT_VERSION") or LOCAL_VERSION}
    return here, passed


def agent_environment(root: Path, home: Path, shims: Path, port: int, mode: str,
                      variables: dict[str, str], secrets: dict[str, str],
                      site: Path | None = None,
                      service: dict[str, str] | None = None) -> dict[str, str]:
    """The whole environment of the entry point (nothing inherited from fbundle's); ``site``
    is where a remote_build bundle's requirements were installed; ``service`` the variables
    the service injects (the definition's non-empty values and the secrets win over them, as
    azd lets a service's own env win)."""
    env = {
        "PATH": f"{shims}{os.pathsep}{SYSTEM_PATH}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PORT": str(port),
        "PYTHONNOUSERSITE": "1",
        "PYTHONUNBUFFERED": "1",  # so output streams as it is written, as a container log does
    }
    if mode == "bundled":
        env["PYTHONPATH"] = str(root / "packages")
    elif site is not None:
        env["PYTHONPATH"] = str(site)
    env.update(service or {})
    env.update({k: v for k, v in variables.items() if v or k not in (service or {})})
    env.update(secrets)
    env["PORT"] = str(port)  # the port the readiness probe asks on wins over any file
    return env
