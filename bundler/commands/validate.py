"""``fbundle validate``: every mistake the service would punish, found from the bytes.

Exit 0: no error findings (warnings are printed but pass). Exit 1: error findings.
Exit 2: unusable input (not a zip, unreadable, bad flag, malformed metadata.json).
"""

from __future__ import annotations

import json
import shlex
import zipfile
from pathlib import Path
from typing import Any

import click

from bundler.checks import CheckContext, errors, run_checks, select, unknown_codes
from bundler.checks.base import MODES
from bundler.checks.dotnet import PROJECT_SUFFIXES
from bundler.checks.scan import MAX_ENTRIES, TEXT_LIMIT, declared_entries
from bundler.errors import EXIT_FAILURE, EXIT_OK, UsageError
from bundler.model import Bundle, read_dir, read_zip
from bundler.project import DEFAULT_ENTRY_POINT, METADATA, metadata_beside, read_metadata
from bundler.report import FORMATS, Subject, render
from bundler.targets import DEFAULT_GLIBC, PYTHON_RUNTIMES, RUNTIMES, Target, parse_glibc


def load_bundle(path: Path) -> Bundle:
    """A zip or a folder; anything else (or a hostile zip) is exit 2 with one line."""
    if path.is_dir():
        return read_dir(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder", "pass a bundle zip or a folder")
    count = declared_entries(path)
    if count is not None and count > MAX_ENTRIES:
        raise UsageError(f"{path}: declares {count} entries, more than {MAX_ENTRIES}",
                         "a bundle this large cannot be an agent; rebuild it")
    try:
        return read_zip(path)
    except UsageError:
        raise
    # zipfile can fail in many ways on hostile bytes (struct.error, OverflowError, ...).
    except Exception as error:  # noqa: BLE001
        raise UsageError(f"{path}: not a readable zip ({type(error).__name__}: {error})",
                         "rebuild the bundle") from None


def _codes(value: str | None) -> list[str]:
    return [c.strip().upper() for c in (value or "").split(",") if c.strip()]


def _find_metadata(path: Path, bundle: Bundle, explicit: Path | None) -> dict[str, Any] | None:
    if explicit is not None:
        return read_metadata(explicit)
    if path.is_dir():
        candidate = path / METADATA
        return read_metadata(candidate) if candidate.is_file() else None
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


def _code_config(metadata: dict[str, Any] | None) -> dict[str, Any]:
    definition = (metadata or {}).get("definition")
    code = definition.get("code_configuration") if isinstance(definition, dict) else None
    return code if isinstance(code, dict) else {}


def build_context(path: Path, bundle: Bundle, *, metadata_path: Path | None,
                  runtime: str | None, mode: str | None, entry_point: str | None,
                  glibc: str | None) -> CheckContext:
    """Flags win over metadata.json (as in build); without either, infer from the bundle."""
    metadata = _find_metadata(path, bundle, metadata_path)
    code = _code_config(metadata)
    names = bundle.names()
    root = [n for n in names if "/" not in n]
    if runtime is None:
        declared = code.get("runtime")
        if isinstance(declared, str) and declared in RUNTIMES:
            runtime = declared
        elif any(n.endswith((*PROJECT_SUFFIXES, ".runtimeconfig.json")) for n in root):
            runtime = "dotnet_10"
        else:
            runtime = "python_3_13"
    floor = parse_glibc(glibc) if glibc else DEFAULT_GLIBC
    target = Target.for_runtime(runtime, floor)
    if mode is None:
        declared = code.get("dependency_resolution")
        if declared in MODES:
            mode = str(declared)
        elif runtime in PYTHON_RUNTIMES:
            mode = "bundled" if any(n.startswith("packages/") for n in names) else "remote_build"
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
    return CheckContext(target=target, mode=mode, entry_point=entry, metadata=metadata)


@click.command("validate")
@click.argument("bundle_path", metavar="ZIP|DIR", type=click.Path(path_type=Path))
@click.option("--runtime", type=click.Choice(RUNTIMES), help="Runtime (default: metadata.json).")
@click.option("--metadata", "metadata_path", type=click.Path(path_type=Path),
              help="The agent definition (default: metadata.json inside or beside the input).")
@click.option("--entry-point", help="Entry point command, e.g. 'python main.py'.")
@click.option("--mode", type=click.Choice(MODES), help="dependency_resolution.")
@click.option("--glibc", help="glibc floor for binaries (default 2.17, manylinux2014).")
@click.option("--select", "select_", help="Only these codes or prefixes (comma-separated).")
@click.option("--ignore", help="Skip these codes or prefixes (comma-separated).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def validate(bundle_path: Path, runtime: str | None, metadata_path: Path | None,
             entry_point: str | None, mode: str | None, glibc: str | None,
             select_: str | None, ignore: str | None, fmt: str) -> None:
    """Check a bundle zip (or a folder about to be zipped) for every mistake the service
    would punish: layout, unsafe paths, foreign binaries, missing dependencies, size, metadata.

    Exit 0 when there are no errors (warnings are printed), 1 with errors, 2 when the input
    cannot be used. Codes are documented in docs/rules.md.
    """
    chosen, dropped = _codes(select_), _codes(ignore)
    if bad := unknown_codes(chosen + dropped):
        raise UsageError(f"unknown rule code {bad[0]}", "see docs/rules.md for the codes")
    bundle = load_bundle(bundle_path)
    context = build_context(bundle_path, bundle, metadata_path=metadata_path, runtime=runtime,
                            mode=mode, entry_point=entry_point, glibc=glibc)
    findings = select(run_checks(bundle, context), chosen, dropped)
    subject = Subject(str(bundle_path), sum(1 for _ in bundle.files()), bundle.total_size,
                      context.target.runtime, context.mode)
    click.echo(render(findings, subject, fmt), nl=False)
    click.get_current_context().exit(EXIT_FAILURE if errors(findings) else EXIT_OK)


commands: list[click.Command] = [validate]
