"""``fbundle build`` and ``fbundle init``."""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bundler.errors import UsageError
from bundler.identity import METADATA
from bundler.project import MODES, example_metadata
from bundler.resolve import RESOLVERS
from bundler.targets import RUNTIMES
from bundler.write import atomic_output

if TYPE_CHECKING:
    from bundler.build import BuildResult
    from bundler.options import BuildOptions
from bundler.plan import Plan

HELLO_MAIN = '''"""A minimal hosted agent: answers the Responses protocol on port 8088."""

import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200 if self.path.startswith(("/readiness", "/liveness")) else 404
        self.send_response(status)
        self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        request = json.loads(self.rfile.read(length) or b"{}")
        body = json.dumps({"output_text": f"echo: {request.get('input', '')}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    HTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8088"))), Handler).serve_forever()
'''


def build_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The options every command that builds shares (build, lock, audit), handed to the
    command as one typed ``options: BuildOptions`` built from the flags by name."""
    flags = [
        click.option("--runtime", type=click.Choice(RUNTIMES),
                     help="Override code_configuration.runtime."),
        click.option("--mode", type=click.Choice(MODES),
                     help="Override code_configuration.dependency_resolution."),
        click.option("--resolver", type=click.Choice(RESOLVERS), default="uv",
                     show_default=True, help="Which resolver picks the wheels."),
        click.option("--glibc", metavar="X.Y",
                     help="Raise the manylinux floor (default 2.17, manylinux2014)."),
        click.option("--offline", is_flag=True, help="Use only the lock and the wheel cache."),
        click.option("--refresh", is_flag=True,
                     help="Ask the index again even if it answered in the last 10 minutes."),
        click.option("--no-build", is_flag=True,
                     help="Wheels only: never build an sdist or a local package."),
        click.option("--entry-point", metavar="'CMD ARGS'",
                     help="Override code_configuration.entry_point, e.g. 'python main.py'."),
        click.option("--cpu", metavar="CORES", help='Override definition.cpu, e.g. "0.5".'),
        click.option("--memory", metavar="AMOUNT", help='Override definition.memory, e.g. "1Gi".'),
        click.option("--protocol", "protocols", metavar="NAME@VERSION", multiple=True,
                     help="Override protocol_versions (repeatable), e.g. responses@2.0.0."),
        click.option("--name", help="Agent name (default: the definition's name, else the "
                     "project folder's)."),
        click.option("--metadata", type=click.Path(path_type=Path, dir_okay=False),
                     help="The agent definition (default: PROJECT/metadata.json, else azd's "
                     "azure.yaml service or agent.yaml)."),
        click.option("--project", "project_file", help=".NET: which project file to publish."),
        click.option("--exclude-package", "exclude_packages", metavar="NAME", multiple=True,
                     help="Leave out this distribution and what only it pulls in "
                          "(repeatable; adds to fbundle.toml's exclude-packages)."),
        click.option("--slim/--no-slim", default=None,
                     help="Leave out tests/ folders inside packages, *.pyi, and C sources "
                          "next to built extensions (never dist-info)."),
        click.option("--compile/--no-compile", "compile_", default=None,
                     help="Add bytecode made by the target's CPython (unchecked-hash .pyc)."),
        click.option("--python", type=click.Path(path_type=Path, dir_okay=False),
                     help="The target's CPython for --compile (default: python3.X on PATH, "
                          "else uv python find)."),
    ]

    @functools.wraps(function)
    def with_options(*args: Any, runtime: str | None, mode: str | None, resolver: str,
                     glibc: str | None, offline: bool, refresh: bool, no_build: bool,
                     name: str | None,
                     metadata: Path | None, project_file: str | None, entry_point: str | None,
                     cpu: str | None, memory: str | None, protocols: tuple[str, ...],
                     exclude_packages: tuple[str, ...], slim: bool | None,
                     compile_: bool | None, python: Path | None, **kwargs: Any) -> Any:
        from bundler.options import BuildOptions  # lazily: `fbundle --help` needs no build stack

        verbose = bool(click.get_current_context().find_root().params.get("verbose"))
        kwargs["options"] = BuildOptions(
            runtime=runtime, mode=mode, resolver=resolver, glibc=glibc, offline=offline,
            refresh=refresh, no_build=no_build, name=name, metadata=metadata,
            project_file=project_file,
            verbose=verbose, entry_point=entry_point, cpu=cpu, memory=memory,
            protocols=tuple(protocols), exclude_packages=tuple(exclude_packages),
            slim=slim, compile=compile_, python=python)
        return function(*args, **kwargs)

    for flag in reversed(flags):
        with_options = flag(with_options)
    return with_options


def _notes(notes: tuple[str, ...]) -> None:
    """What loading the definition said (defaults filled, warnings): one line each, on stderr,
    so stdout stays the report (and its last line the sha256)."""
    for note in notes:
        click.echo(note, err=True)


def _report(result: BuildResult) -> None:
    """Every warning finding, one line each on stderr, and a note about secrets left out."""
    from bundler.report import finding_line, printable

    for warning in result.warnings:
        click.secho(f"warning: {finding_line(warning)}", fg="yellow", err=True)
    if left := result.secrets_left_out:
        shown = ", ".join(printable(n) for n in left[:5]) + (" ..." if len(left) > 5 else "")
        files = "1 file" if len(left) == 1 else f"{len(left)} files"
        click.echo(f"note: left out {files} that look like secrets: {shown} (`fbundle build "
                   "--list` says why; a `!name` line in .fbundleignore ships one)", err=True)


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        click.echo(message, err=True)


@click.command()
@click.argument("project", default=".", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the zip (default: PROJECT/dist/<agent>.zip).")
@build_options
@click.option("--update-lock", is_flag=True, help="Re-resolve and rewrite pylock.toml.")
@click.option("--list", "list_only", is_flag=True,
              help="Show what would go in (and what was left out, and why); write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def build(project: Path, output: Path | None, update_lock: bool, list_only: bool,
          as_json: bool, options: BuildOptions) -> None:
    """Build PROJECT into a deterministic zip; the last line printed is its sha256."""
    from bundler.build import build_project
    from bundler.plan import plan_project

    opts = dataclasses.replace(options, output=output, update_lock=update_lock)
    if list_only:
        plan = plan_project(project, opts)
        _notes(plan.spec.notes)
        _list(plan, as_json)
        return
    _progress(f"building {project} ...")
    result = build_project(project, opts)
    # A definition warning the finished bundle's check reports again (FB607, FB604, ...) is
    # said once, in the finding's form (it names the file and says what to do).
    reported = {f"warning: {w.code} {w.message}" for w in result.warnings}
    _notes(tuple(note for note in result.spec.notes if note not in reported))
    _report(result)
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
        return
    for note in result.shaped.notes() if result.shaped else []:
        click.echo(note, err=True)
    state = "unchanged" if result.reused else "wrote"
    click.echo(f"{state} {result.zip_path} ({result.size} bytes, {result.entries} files, "
               f"{len(result.packages)} packages)")
    click.echo(f"content digest {result.content_digest}")
    click.echo(result.sha256)


def _list(plan: Plan, as_json: bool) -> None:
    """``build --list``: every entry and what was left out (and why), each distribution's
    size and why it is in, and the findings the build would stop on or warn about — before
    a byte is written."""
    from bundler.build import plan_findings
    from bundler.report import finding_line
    from bundler.sizes import size_table

    table = size_table(plan.bundle, plan.target)
    findings = sorted({*plan_findings(plan), *plan.collection.findings})
    if as_json:
        click.echo(json.dumps({
            "entries": [{"name": e.name, "size": e.size, "origin": e.origin}
                        for e in plan.bundle.files()],
            "skipped": [{"name": n, "reason": r} for n, r in plan.collection.skipped]
            + [{"name": r.name, "reason": r.reason} for r in plan.shaped.removed],
            "sizes": table.as_json(),
            "shaped": plan.shaped.as_json(),
            "links": [{"name": n, "target": t} for n, t in plan.collection.links],
            "findings": [{"code": f.code, "path": f.path, "message": f.message, "hint": f.hint,
                          "severity": f.severity} for f in findings],
        }, indent=2))
        return
    for entry in plan.bundle.files():
        click.echo(f"+ {entry.name}  ({entry.origin}, {entry.size} bytes)")
    for name, reason in plan.collection.skipped:
        click.echo(f"- {name}  ({reason})")
    for removed in plan.shaped.removed:
        click.echo(f"- {removed.name}  ({removed.reason})")
    for name, target in plan.collection.links:
        click.echo(f"> {name} -> {target}  (symlink: stored as a copy of what it points to)")
    click.echo("")
    for line in table.lines():
        click.echo(line)
    for note in plan.shaped.notes():
        click.echo(note)
    for finding in findings:
        click.echo(f"{finding.severity}: {finding_line(finding)}")
    errors = sum(1 for f in findings if f.severity == "error")
    click.echo(f"{errors} errors, {len(findings) - errors} warnings: "
               + ("the build would stop" if errors else "the build would write the zip"))


@click.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--runtime", type=click.Choice(RUNTIMES),
              help="default: python_3_13 (dotnet_10 for a folder with only a .csproj)")
@click.option("--mode", type=click.Choice(MODES), default="bundled", show_default=True)
def init(directory: Path, runtime: str | None, mode: str) -> None:
    """Scaffold a Python agent (main.py, requirements.txt, metadata.json); in a folder that
    already holds a project, add only what is missing: the definition."""
    from bundler.azd import default_entry_file, detect_runtime
    from bundler.definition import load_definition

    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory}: not a folder", "pass a folder")
    existing = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    if [n for n in existing if not n.startswith(".")]:
        # An existing project: never touch its sources, add the definition if it has none.
        try:
            found = load_definition(directory)
        except UsageError as error:
            if "no agent definition" not in error.message:
                raise
        else:
            what = found.path.name if found.path is not None else found.source
            click.echo(f"{directory} already has an agent definition ({what}); "
                       f"nothing written; next: fbundle build {directory}")
            return
        runtime = runtime or detect_runtime(directory)
        prefix = "dotnet" if runtime.startswith("dotnet") else "python"
        entry = [prefix, default_entry_file(directory, runtime)]
        with atomic_output(directory / METADATA) as stream:
            stream.write((json.dumps(example_metadata(runtime, mode, entry), indent=2)
                          + "\n").encode("utf-8"))
        click.echo(f"wrote {directory / METADATA} ({runtime}, {mode}, entry point "
                   f"{' '.join(entry)}); nothing else was changed; next: fbundle build "
                   f"{directory}")
        if prefix == "python" and not (directory / entry[1]).is_file():
            click.echo(f"note: {entry[1]} is not in {directory}: set "
                       "definition.code_configuration.entry_point to your agent's script",
                       err=True)
        return
    runtime = runtime or "python_3_13"
    if not runtime.startswith("python"):
        raise UsageError(f"init scaffolds Python agents, not {runtime}",
                         "run `fbundle init` in your existing .NET project folder to add only "
                         "the definition")
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "main.py": HELLO_MAIN,
        "requirements.txt": "# one requirement per line, e.g. azure-identity\n",
        METADATA: json.dumps(example_metadata(runtime, mode), indent=2) + "\n",
    }
    for name, text in files.items():
        with atomic_output(directory / name) as stream:
            stream.write(text.encode("utf-8"))
    click.echo(f"created {directory}: {', '.join(files)}; next: fbundle build {directory}")


@click.command()
@click.argument("project", default=".", type=click.Path(path_type=Path))
@build_options
def lock(project: Path, options: BuildOptions) -> None:
    """Resolve PROJECT's requirements for its runtime and write PROJECT/pylock.toml (PEP 751)."""
    from bundler.plan import lock_project

    path, locked = lock_project(project, options)
    click.echo(f"wrote {path} ({len(locked.pins)} packages for {locked.runtime}, "
               f"glibc {locked.glibc})")


commands: list[click.Command] = [build, init, lock]
