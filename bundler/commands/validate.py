"""``fbundle validate``: every mistake the service would punish, found from the bytes.

Exit 0: no error findings (warnings are printed but pass). Exit 1: error findings.
Exit 2: unusable input (not a zip, unreadable, bad flag, malformed metadata.json).
"""

from __future__ import annotations

from pathlib import Path

import click

from bundler.checks import CheckContext, Finding, errors, select, unknown_codes
from bundler.checks.base import MODES
from bundler.checks.layout import LAYOUT_WORDS, dependency_layout
from bundler.errors import EXIT_FAILURE, EXIT_OK, UsageError
from bundler.model import Bundle
from bundler.report import FORMATS, Subject, render
from bundler.targets import RUNTIMES, PythonTarget
from bundler.validate import (
    check_bundle,
    context_for,
    find_definition,
    load_bundle,
    read_project_folder,
)


def _codes(value: str | None) -> list[str]:
    return [c.strip().upper() for c in (value or "").split(",") if c.strip()]


def subject_for(location: str, bundle: Bundle, context: CheckContext) -> Subject:
    """What was validated, for the summary line (``run`` prints the same one)."""
    python = isinstance(context.target, PythonTarget)
    layout = LAYOUT_WORDS[dependency_layout(bundle.names())] if python else ""
    return Subject(location, sum(1 for _ in bundle.files()), bundle.total_size,
                   context.target.runtime, context.mode, layout)


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
    collected: list[Finding] = []
    if bundle_path.is_dir():  # judged as build would ship it
        bundle, collected, definition = read_project_folder(bundle_path, metadata_path,
                                                            entry_point)
    else:
        bundle = load_bundle(bundle_path)
        definition = find_definition(bundle_path, bundle, metadata_path)
    context = context_for(bundle, definition, runtime=runtime, mode=mode,
                          entry_point=entry_point, glibc=glibc)
    found = sorted({*check_bundle(bundle, context), *collected})
    findings = select(found, chosen, dropped)
    click.echo(render(findings, subject_for(str(bundle_path), bundle, context), fmt), nl=False)
    click.get_current_context().exit(EXIT_FAILURE if errors(findings) else EXIT_OK)


commands: list[click.Command] = [validate]
