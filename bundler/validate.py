"""``fbundle validate`` as a library: a bundle and a definition -> the context -> findings.

``build`` checks its plan through the same two functions (``context_for``, ``check_bundle``) that
``fbundle validate`` uses on a zip or a folder, so for the same bundle and definition the two
cannot disagree. ``commands/validate.py`` is only the click shell around this module.
"""

from __future__ import annotations

import json
import shlex
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bundler.checks import CheckContext, Finding, run_checks
from bundler.checks.base import MODES
from bundler.checks.dotnet import PROJECT_SUFFIXES
from bundler.checks.layout import dependency_layout
from bundler.checks.scan import TEXT_LIMIT
from bundler.collect import scan_sources
from bundler.errors import UsageError
from bundler.identity import METADATA, definition_path, metadata_beside
from bundler.model import Bundle, is_folder, read_zip
from bundler.project import DEFAULT_ENTRY_POINT, read_metadata
from bundler.targets import DEFAULT_GLIBC, PYTHON_RUNTIMES, RUNTIMES, Target, parse_glibc


def read_folder(path: Path, entry_point: Sequence[str] = (), *,
                git: bool = True) -> tuple[Bundle, list[Finding]]:
    """A folder as ``build`` would ship it, and what collecting it found (FB112, FB114).

    The same collection as ``build``'s (``collect.scan_sources``): the default excludes, the
    folder's ``.fbundleignore``/``.agentignore``, no ``dist/``, no ``metadata.json`` (it travels
    as its own part), links inside the folder followed. Unlike build, a ``packages/`` folder is
    kept: a folder staged for zipping holds its dependencies there. ``git``: ask git which
    files it ignores (FB114); a listing needs no such finding.
    """
    collection = scan_sources(path, entry_point=entry_point, git=git)
    return Bundle(collection.entries, str(path), "dir").sorted(), list(collection.findings)


def read_project_folder(path: Path, metadata: Path | None = None,
                        entry_point: str | None = None, *, git: bool = True,
                        ) -> tuple[Bundle, list[Finding], dict[str, Any] | None]:
    """``read_folder`` with the entry point the folder's definition (or ``metadata``, or the
    ``entry_point`` flag) declares, which decides whether ``agent.yaml`` ships; and that
    definition. What ``validate DIR``, ``inspect DIR`` and ``diff DIR`` read."""
    definition = find_definition(path, Bundle([]), metadata)
    bundle, found = read_folder(path, declared_entry_point(definition, entry_point), git=git)
    return bundle, found, definition


def declared_entry_point(definition: dict[str, Any] | None, flag: str | None) -> list[str]:
    """The entry point as far as it is known before the bundle is read (for ``read_folder``)."""
    if flag is not None:
        try:
            return shlex.split(flag)
        except ValueError:
            return []  # context_for reports it
    declared = _code_config(definition).get("entry_point")
    return [x for x in declared if isinstance(x, str)] if isinstance(declared, list) else []


def load_bundle(path: Path) -> Bundle:
    """A zip or a folder (as ``build`` would ship it); anything else (or a zip the reader
    refuses) is exit 2 with one line."""
    if is_folder(path):
        return read_project_folder(path, git=False)[0]
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder", "pass a bundle zip or a folder")
    return read_zip(path)  # a folder is read as one


def find_definition(path: Path, bundle: Bundle, explicit: Path | None) -> dict[str, Any] | None:
    """The agent definition for a bundle: ``--metadata``; for a folder, its metadata.json; for a
    zip, the ``<stem>.metadata.json`` that ``build`` wrote beside it (the effective definition,
    flags applied: what ``deploy`` sends), else the metadata.json inside it, else a plain
    metadata.json beside it."""
    if explicit is not None:
        return read_metadata(explicit)
    if path.is_dir():
        candidate = path / METADATA
        return read_metadata(candidate) if candidate.is_file() else None
    if definition_path(path).is_file():
        return read_metadata(definition_path(path))
    inside = bundle.by_name().get(METADATA)
    if inside is not None and inside.is_file and inside.size <= TEXT_LIMIT:
        try:
            data = json.loads(inside.read().decode("utf-8"))
        except (ValueError, zipfile.BadZipFile, OSError, EOFError) as error:
            raise UsageError(f"{path}!{METADATA}: not valid JSON ({error})",
                             "fix metadata.json, or pass --metadata") from None
        return data if isinstance(data, dict) else None
    beside = metadata_beside(path)
    return read_metadata(beside) if beside else None


def _code_config(definition: dict[str, Any] | None) -> dict[str, Any]:
    inner = (definition or {}).get("definition")
    code = inner.get("code_configuration") if isinstance(inner, dict) else None
    return code if isinstance(code, dict) else {}


def context_for(bundle: Bundle, definition: dict[str, Any] | None, *,
                runtime: str | None = None, mode: str | None = None,
                entry_point: str | None = None, glibc: str | None = None,
                target: Target | None = None) -> CheckContext:
    """What ``bundle`` is meant to be. Overrides (flags) win over the definition; without
    either, runtime and mode are inferred from the bundle. ``target`` (build's, with its floor)
    replaces ``runtime``/``glibc`` when given."""
    code = _code_config(definition)
    names = bundle.names()
    root = [n for n in names if "/" not in n]
    if target is not None:
        runtime = target.runtime
    elif runtime is None:
        declared = code.get("runtime")
        if isinstance(declared, str) and declared in RUNTIMES:
            runtime = declared
        elif any(n.endswith((*PROJECT_SUFFIXES, ".runtimeconfig.json")) for n in root):
            runtime = "dotnet_10"
        else:
            runtime = "python_3_13"
    if target is None:
        target = Target.for_runtime(runtime, parse_glibc(glibc) if glibc else DEFAULT_GLIBC)
    if mode is None:
        declared = code.get("dependency_resolution")
        if declared in MODES:
            mode = str(declared)
        elif runtime in PYTHON_RUNTIMES:
            # packages/, or azd's layout (dependencies installed at the root)
            mode = "bundled" if dependency_layout(names) != "none" else "remote_build"
        else:
            mode = "bundled" if any(n.endswith(".runtimeconfig.json") for n in root) \
                else "remote_build"
    if entry_point is not None:
        try:
            entry = shlex.split(entry_point)
        except ValueError as error:
            raise UsageError(f"--entry-point {entry_point!r}: {error}",
                             "quote it like a shell command: 'python main.py'") from None
    else:
        declared_entry = code.get("entry_point")
        if isinstance(declared_entry, list) and all(isinstance(x, str) for x in declared_entry):
            entry = list(declared_entry)
        else:
            entry = list(DEFAULT_ENTRY_POINT) if runtime in PYTHON_RUNTIMES else []
    return CheckContext(target=target, mode=mode, entry_point=entry, metadata=definition)


def check_bundle(bundle: Bundle, context: CheckContext) -> list[Finding]:
    """Every finding for ``bundle`` in ``context`` (the rules of docs/rules.md)."""
    return run_checks(bundle, context)
