"""``fbundle deploy / status / download / logs / delete``: the service's REST contract, thinly.

The library (``bundler.deploy``) does the work and raises ``FbundleError``; these commands parse
flags, print, and draw the upload progress bar (on a terminal only, on stderr).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from bundler.deploy.auth import get_credential
from bundler.deploy.client import (
    PREVIEW_API_VERSION,
    FoundryClient,
    HttpOptions,
    ServiceError,
    Upload,
    latest_version,
)
from bundler.deploy.poll import PollPolicy, VersionFailed, failure_line, wait_until_settled
from bundler.errors import UsageError
from bundler.identity import METADATA, metadata_beside
from bundler.model import file_sha256
from bundler.project import agent_name_problem, metadata_problems, read_metadata
from bundler.settings import float_env


def _connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Flags every command shares; each may come from the environment instead."""
    for option in reversed([
        click.option("--endpoint", envvar="FBUNDLE_ENDPOINT", metavar="URL",
                     help="Project endpoint, https://{account}.services.ai.azure.com/api/"
                          "projects/{project} [env FBUNDLE_ENDPOINT]"),
        click.option("--api-version", envvar="FBUNDLE_API_VERSION", default=PREVIEW_API_VERSION,
                     show_default=True,
                     help="v1 is the GA API (no preview header) [env FBUNDLE_API_VERSION]"),
        click.option("--connect-timeout", type=click.FloatRange(min=0.001), default=None,
                     help="Seconds to connect [env FBUNDLE_CONNECT_TIMEOUT, default 10]"),
        click.option("--read-timeout", type=click.FloatRange(min=0.001), default=None,
                     help="Seconds to wait for a response [env FBUNDLE_READ_TIMEOUT, "
                          "default 120]"),
    ]):
        command = option(command)
    return command


_agent_option = click.option("--agent", envvar="FBUNDLE_AGENT", metavar="NAME",
                             help="Agent name [env FBUNDLE_AGENT]")


def _agent(name: str | None) -> str:
    """The agent name, checked against the service's rule before any request is made."""
    if not name:
        raise UsageError("no agent name", "pass --agent NAME or set FBUNDLE_AGENT")
    if problem := agent_name_problem(name):
        raise UsageError(problem, "pass --agent with a valid name")
    return name


def _client(endpoint: str | None, api_version: str, connect_timeout: float | None,
            read_timeout: float | None) -> FoundryClient:
    if not endpoint:
        raise UsageError("no endpoint", "pass --endpoint URL or set FBUNDLE_ENDPOINT")
    options = HttpOptions.from_env(connect_timeout=connect_timeout, read_timeout=read_timeout)
    return FoundryClient(endpoint, get_credential, api_version=api_version, options=options)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr when it is a terminal; nothing otherwise (CI logs stay clean)."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr,
                           show_pos=False, show_percent=True) as bar:
        sent = 0

        def update(size: int) -> None:
            nonlocal sent
            step = min(size, max(0, total - sent))  # a retried upload restarts the count
            sent += step
            bar.update(step)

        yield update


def _inputs(target: Path, metadata_path: Path | None, agent: str | None
            ) -> tuple[Path, str, dict[str, Any], str]:
    """(zip, sha256, metadata, agent name): built from a project folder, or a zip as given."""
    if agent is not None:
        _agent(agent)
    if target.is_dir():
        from bundler.build import build_project  # lazily: deploy of a zip needs no build stack
        from bundler.plan import BuildOptions

        result = build_project(target, BuildOptions(metadata=metadata_path))
        metadata = result.spec.metadata  # the effective definition, as written beside the zip
        return result.zip_path, result.sha256, metadata, _agent(agent or result.spec.name)
    if not target.is_file():
        raise UsageError(f"{target}: no such project folder or zip",
                         "pass a project folder or the zip `fbundle build` wrote")
    from bundler.diff import load

    load(target)  # the zip reader's guards: a zip that unpacks to something else is not sent
    metadata_path = metadata_path or metadata_beside(target) or target.parent / METADATA
    metadata = read_metadata(metadata_path)
    if problems := metadata_problems(metadata):
        field, problem = problems[0]
        raise UsageError(f"{metadata_path}: {field} {problem}".strip(), "fix metadata.json")
    return target, file_sha256(target), metadata, _agent(agent)


@click.command("deploy")
@click.argument("target", required=False, default=".", type=click.Path(path_type=Path))
@_agent_option
@click.option("--metadata", "metadata_path", type=click.Path(path_type=Path),
              help="The agent definition [default: metadata.json beside the zip]")
@click.option("--no-wait", is_flag=True, help="Return after the upload; do not poll.")
@click.option("--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds to wait for the version to become active.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as a JSON object.")
@click.option("--dry-run", is_flag=True, help="Print the requests (token redacted); send nothing.")
@_connection_options
def deploy_command(target: Path, agent: str | None, metadata_path: Path | None, no_wait: bool,
                   timeout: float, as_json: bool, dry_run: bool, endpoint: str | None,
                   api_version: str, connect_timeout: float | None,
                   read_timeout: float | None) -> None:
    """Upload PROJECT (built first) or ZIP as a new version of the agent, then wait for it."""
    zip_path, sha, metadata, name = _inputs(target, metadata_path, agent)
    upload = Upload(name, metadata, zip_path, sha)
    with _client(endpoint, api_version, connect_timeout, read_timeout) as client:
        if dry_run:
            plan = [client.plan_upload(upload, create=True), client.plan_upload(upload,
                                                                                create=False)]
            if as_json:
                _echo_json({"dry_run": True, "requests": [p.as_json() for p in plan]})
            else:
                for request in plan:
                    click.echo("\n".join(request.lines()))
            return
        with _progress(upload.size, f"uploading {zip_path.name}") as progress:
            outcome = client.deploy(upload, progress)
        if outcome.unchanged:
            click.echo(f"{name}: unchanged, version {outcome.version} ({outcome.status})",
                       err=as_json)
        else:
            verb = "created" if outcome.created else "uploaded"
            click.echo(f"{name}: {verb} version {outcome.version} ({outcome.status})",
                       err=as_json)
        body = latest_version(outcome.body)
        if not no_wait and outcome.status not in ("active", "failed"):
            body = wait_until_settled(
                lambda: client.get_version(name, outcome.version), timeout=timeout,
                policy=PollPolicy.from_env(),
                on_status=lambda s: click.echo(f"{name}: version {outcome.version}: {s}",
                                               err=True))
    status = str(body.get("status", outcome.status))
    if as_json:
        result = {"agent": name, "version": outcome.version, "status": status,
                  "unchanged": outcome.unchanged, "created": outcome.created, "sha256": sha}
        if status == "failed":
            result["error"] = body.get("error")
        _echo_json(result)
    elif not no_wait and status == "active":
        click.echo(f"{name}: version {outcome.version} is active")
    _fail_if_failed(name, outcome.version, status, body)


def _fail_if_failed(name: str, version: object, status: str, body: dict[str, Any]) -> None:
    """A failed version is exit 1 with the service's error.code and error.message."""
    if status == "failed":
        raise VersionFailed(f"{name} version {version} failed: {failure_line(body)}",
                            "fix the cause in error.message and deploy again")


@click.command("status")
@_agent_option
@click.option("--version", "version", help="A version number [default: the latest].")
@click.option("--json", "as_json", is_flag=True, help="Print the version as a JSON object.")
@_connection_options
def status_command(agent: str | None, version: str | None, as_json: bool,
                   endpoint: str | None, api_version: str, connect_timeout: float | None,
                   read_timeout: float | None) -> None:
    """Show a version's status (exit 1 when it failed)."""
    name = _agent(agent)
    with _client(endpoint, api_version, connect_timeout, read_timeout) as client:
        if version:
            body = client.get_version(name, version)
        else:
            envelope = client.get_agent(name)
            if envelope is None:
                raise ServiceError(f"agent {name} not found", "check --agent and --endpoint",
                                   status=404)
            body = latest_version(envelope)
    status = str(body.get("status", "unknown"))
    number = str(body.get("version", version or "?"))
    if as_json:
        _echo_json({"agent": name, "version": number, "status": status,
                    **({"error": body.get("error")} if status == "failed" else {})})
    else:
        click.echo(f"{name}: version {number}: {status}")
    _fail_if_failed(name, number, status, body)


@click.command("download")
@_agent_option
@click.option("--version", "version", help="A version number [default: the latest].")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Where to write the zip [default: <agent>.zip].")
@_connection_options
def download_command(agent: str | None, version: str | None, output: Path | None,
                     endpoint: str | None, api_version: str, connect_timeout: float | None,
                     read_timeout: float | None) -> None:
    """Download the deployed zip, verified against the sha256 the service stored."""
    name = _agent(agent)
    output = output or Path(f"{name}.zip")
    with _client(endpoint, api_version, connect_timeout, read_timeout) as client:
        served, sha = client.download(name, version, output)
    click.echo(f"{name}: version {served} -> {output} (sha256 {sha})")


@click.command("logs")
@_agent_option
@click.option("--session", required=True, help="x-agent-session-id from an invoke response.")
@click.option("--kind", type=click.Choice(["console", "system"]), default="console",
              show_default=True)
@click.option("--tail", type=click.IntRange(min=0), help="Only the last N lines.")
@click.option("--follow", is_flag=True, help="Keep streaming until the service ends the stream.")
@_connection_options
def logs_command(agent: str | None, session: str, kind: str, tail: int | None, follow: bool,
                 endpoint: str | None, api_version: str, connect_timeout: float | None,
                 read_timeout: float | None) -> None:
    """Stream a session's container logs, one line per event.

    Without --follow the command stops once the stream has been quiet for FBUNDLE_LOGS_IDLE
    seconds (default 3).
    """
    name = _agent(agent)
    idle = None if follow else float_env(os.environ, "FBUNDLE_LOGS_IDLE", 3.0)
    with _client(endpoint, api_version, connect_timeout, read_timeout) as client:
        for line in client.logstream(name, session, kind=kind, tail=tail, idle=idle):
            click.echo(line)


@click.command("delete")
@_agent_option
@click.option("--version", "version", help="Delete only this version.")
@click.option("--force", is_flag=True, help="Also end the agent's active sessions.")
@click.option("--yes", is_flag=True, help="Do not ask.")
@_connection_options
def delete_command(agent: str | None, version: str | None, force: bool, yes: bool,
                   endpoint: str | None, api_version: str, connect_timeout: float | None,
                   read_timeout: float | None) -> None:
    """Delete an agent (all its versions) or one version. Cannot be undone."""
    name = _agent(agent)
    what = f"version {version} of agent {name}" if version else f"agent {name} and all versions"
    with _client(endpoint, api_version, connect_timeout, read_timeout) as client:
        if not yes:
            click.confirm(f"Delete {what}? This cannot be undone", abort=True, err=True)
        try:
            client.delete(name, version, force=force)
        except ServiceError as error:
            if error.status == 409 and not force:
                raise ServiceError(error.message, "the agent has active sessions; wait for them "
                                   "to go idle or pass --force to end them",
                                   status=409, code=error.code,
                                   request_id=error.request_id) from None
            raise
    click.echo(f"deleted {what}")


commands: list[click.Command] = [deploy_command, status_command, download_command,
                                 logs_command, delete_command]
