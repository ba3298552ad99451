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
    UPLOAD_ROUTES,
    FoundryClient,
    HttpOptions,
    ServiceError,
    Upload,
    version_of,
)
from bundler.deploy.http import check_session, check_version
from bundler.deploy.poll import (
    PollPolicy,
    VersionFailed,
    failure_line,
    status_of,
    wait_until_settled,
)
from bundler.deploy.state import last_session
from bundler.errors import UsageError
from bundler.identity import METADATA, metadata_beside
from bundler.metadata import with_dotenv_values
from bundler.model import file_sha256
from bundler.project import agent_name_problem, metadata_problems, read_metadata
from bundler.settings import float_env


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"{name}={value!r} is not a yes/no value", f"set {name} to 1 or 0")


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Flags every service command shares; each may come from the environment instead."""
    for option in reversed([
        click.option("--endpoint", envvar="FBUNDLE_ENDPOINT", metavar="URL",
                     help="Project endpoint, https://{account}.services.ai.azure.com/api/"
                          "projects/{project} [env FBUNDLE_ENDPOINT]"),
        click.option("--api-version", envvar="FBUNDLE_API_VERSION", default=PREVIEW_API_VERSION,
                     show_default=True,
                     help="The article's preview API, or v1 (GA) [env FBUNDLE_API_VERSION]"),
        click.option("--no-preview-header", "no_preview_header", is_flag=True, default=None,
                     help="Do not send Foundry-Features: CodeAgents=V1Preview,HostedAgents="
                          "V1Preview (sent by default) [env FBUNDLE_PREVIEW_HEADER=0]"),
        click.option("--connect-timeout", type=click.FloatRange(min=0.001), default=None,
                     help="Seconds to connect [env FBUNDLE_CONNECT_TIMEOUT, default 10]"),
        click.option("--read-timeout", type=click.FloatRange(min=0.001), default=None,
                     help="Seconds to wait for a response to any request but invoke's own "
                          "(invoke --timeout) [env FBUNDLE_READ_TIMEOUT, "
                          "default 120]"),
    ]):
        command = option(command)
    return command


agent_option = click.option("--agent", envvar="FBUNDLE_AGENT", metavar="NAME",
                            help="Agent name [env FBUNDLE_AGENT]")


def check_agent(name: str | None) -> str:
    """The agent name, checked against the service's rule before any request is made."""
    if not name:
        raise UsageError("no agent name", "pass --agent NAME or set FBUNDLE_AGENT")
    if problem := agent_name_problem(name):
        raise UsageError(problem, "pass --agent with a valid name")
    return name


def make_client(endpoint: str | None, api_version: str, no_preview_header: bool | None,
                connect_timeout: float | None, read_timeout: float | None, *,
                upload_route: str | None = None) -> FoundryClient:
    """The project client the connection flags describe (no token is asked for yet)."""
    if not endpoint:
        raise UsageError("no endpoint", "pass --endpoint URL or set FBUNDLE_ENDPOINT")
    if not api_version.strip():
        raise UsageError("--api-version is empty", f"pass {PREVIEW_API_VERSION} or v1")
    preview = not no_preview_header if no_preview_header else _env_flag(
        "FBUNDLE_PREVIEW_HEADER", True)
    options = HttpOptions.from_env(connect_timeout=connect_timeout, read_timeout=read_timeout)
    return FoundryClient(endpoint, get_credential, api_version=api_version.strip(),
                         preview_header=preview, upload_route=upload_route, options=options)


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
        check_agent(agent)
    if target.is_dir():
        from bundler.build import build_project  # lazily: deploy of a zip needs no build stack
        from bundler.options import BuildOptions

        result = build_project(target, BuildOptions(metadata=metadata_path))
        metadata = result.spec.metadata  # the effective definition, as written beside the zip
        for note in result.spec.notes:  # defaults filled, warnings: as `fbundle build` says them
            click.echo(note, err=True)
        return result.zip_path, result.sha256, metadata, check_agent(agent or result.spec.name)
    if not target.is_file():
        raise UsageError(f"{target}: no such project folder or zip",
                         "pass a project folder or the zip `fbundle build` wrote")
    from bundler.diff import load

    load(target)  # the zip reader's guards: a zip that unpacks to something else is not sent
    metadata_path = metadata_path or metadata_beside(target) or target.parent / METADATA
    # The file keeps .env-supplied values as ${VAR}; they are expanded here, in memory only.
    metadata = with_dotenv_values(read_metadata(metadata_path),
                                  [metadata_path.parent, metadata_path.parent.parent])
    if problems := metadata_problems(metadata):
        field, problem = problems[0]
        raise UsageError(f"{metadata_path}: {field} {problem}".strip(), "fix metadata.json")
    return target, file_sha256(target), metadata, check_agent(agent)


def _conn(kwargs: dict[str, Any], **extra: Any) -> FoundryClient:
    return make_client(kwargs.pop("endpoint"), kwargs.pop("api_version"),
                       kwargs.pop("no_preview_header"), kwargs.pop("connect_timeout"),
                       kwargs.pop("read_timeout"), **extra)


@click.command("deploy")
@click.argument("target", required=False, default=".", type=click.Path(path_type=Path))
@agent_option
@click.option("--metadata", "metadata_path", type=click.Path(path_type=Path),
              help="The agent definition [default: metadata.json beside the zip]")
@click.option("--no-wait", is_flag=True, help="Return after the upload; do not poll.")
@click.option("--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds to wait for the version to become active.")
@click.option("--upload-route", type=click.Choice(UPLOAD_ROUTES), default=None,
              help="agent: POST /agents (create) or /agents/{name} (update), the article's; "
                   "versions: POST /agents/{name}/versions, the GA SDKs' [default: versions "
                   "under --api-version v1, else agent]")
@click.option("--json", "as_json", is_flag=True, help="Print the result as a JSON object.")
@click.option("--dry-run", is_flag=True, help="Print the requests (token redacted); send nothing.")
@connection_options
def deploy_command(target: Path, agent: str | None, metadata_path: Path | None, no_wait: bool,
                   timeout: float, upload_route: str | None, as_json: bool, dry_run: bool,
                   **conn: Any) -> None:
    """Upload PROJECT (built first) or ZIP as a new version of the agent, then wait for it."""
    zip_path, sha, metadata, name = _inputs(target, metadata_path, agent)
    upload = Upload(name, metadata, zip_path, sha)
    with _conn(conn, upload_route=upload_route) as client:
        if dry_run:
            plan = client.plan_upload(upload)
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
        body = outcome.body
        if not no_wait:
            body = wait_until_settled(
                lambda: client.get_version(name, outcome.version), timeout=timeout,
                policy=PollPolicy.from_env(),
                on_status=lambda s: click.echo(f"{name}: version {outcome.version}: {s}",
                                               err=True),
                what=f"{name} version")
    status = str(body.get("status") or outcome.status)
    if as_json:
        result = {"agent": name, "version": outcome.version, "status": status,
                  "unchanged": outcome.unchanged, "created": outcome.created, "sha256": sha}
        if status != "active" and "error" in body:
            result["error"] = body.get("error")
        _echo_json(result)
    elif not no_wait and status == "active":
        click.echo(f"{name}: version {outcome.version} is active")
    _fail_if_failed(name, outcome.version, status, body)


def _fail_if_failed(name: str, version: object, status: str, body: dict[str, Any]) -> None:
    """A failed (or deleted) version is exit 1 with the service's error.code and error.message."""
    if status == "failed":
        raise VersionFailed(f"{name} version {version} failed: {failure_line(body)}",
                            "fix the cause in error.message and deploy again")
    if status in ("deleting", "deleted"):
        raise VersionFailed(f"{name} version {version} is {status}",
                            "deploy again to make a new version")


@click.command("status")
@agent_option
@click.option("--version", "version", help="A version number [default: the latest].")
@click.option("--json", "as_json", is_flag=True, help="Print the version as a JSON object.")
@connection_options
def status_command(agent: str | None, version: str | None, as_json: bool, **conn: Any) -> None:
    """Show a version's status (exit 1 when it failed or was deleted)."""
    name = check_agent(agent)
    if version is not None:
        check_version(version)
    with _conn(conn) as client:
        if version:
            body = client.get_version(name, version)
        else:
            envelope = client.get_agent(name)
            if envelope is None:
                raise ServiceError(f"agent {name} not found", "check --agent and --endpoint",
                                   status=404)
            body = version_of(envelope)
    status = status_of(body, f"{name} version {version or 'latest'}")
    number = str(body.get("version", version or "?"))
    if as_json:
        _echo_json({"agent": name, "version": number, "status": status,
                    **({"error": body.get("error")} if "error" in body and status != "active"
                       else {})})
    else:
        click.echo(f"{name}: version {number}: {status}")
    _fail_if_failed(name, number, status, body)


@click.command("download")
@agent_option
@click.option("--version", "version", help="A version number [default: the latest].")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Where to write the zip [default: <agent>.zip].")
@connection_options
def download_command(agent: str | None, version: str | None, output: Path | None,
                     **conn: Any) -> None:
    """Download the deployed zip, verified against the sha256 the service stored."""
    name = check_agent(agent)
    if version is not None:
        check_version(version)
    output = output or Path(f"{name}.zip")
    with _conn(conn) as client:
        got = client.download(name, version, output)
    how = f"verified against {got.verified_by}" if got.verified_by else \
        "not verified: the service gave no digest"
    click.echo(f"{name}: version {got.version} -> {output} (sha256 {got.sha256}, {how})")


@click.command("logs")
@agent_option
@click.option("--session", help="x-agent-session-id from an invoke [default: the last one "
                                "`fbundle invoke` got for this agent].")
@click.option("--version", "version", help="Read the versioned logstream of this version.")
@click.option("--kind", type=click.Choice(["console", "system"]), default="console",
              show_default=True)
@click.option("--tail", type=click.IntRange(min=1, max=300, clamp=True),
              help="Only the last N lines (the service allows 1-300).")
@click.option("--follow", is_flag=True, help="Keep streaming; reopen a stream the service ends.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
@connection_options
def logs_command(agent: str | None, session: str | None, version: str | None, kind: str,
                 tail: int | None, follow: bool, as_json: bool, **conn: Any) -> None:
    """Stream a session's container logs, one line per event.

    Without --follow the command stops once the stream ends or has been quiet for
    FBUNDLE_LOGS_IDLE seconds (default 3).
    """
    name = check_agent(agent)
    if version is not None:
        check_version(version)
    idle = None if follow else float_env(os.environ, "FBUNDLE_LOGS_IDLE", 3.0)
    reconnects = int(float_env(os.environ, "FBUNDLE_LOGS_RECONNECTS", 5))
    with _conn(conn) as client:
        if session is None:
            session = last_session(client.endpoint, name)
            if session is None:
                raise UsageError(f"no session remembered for {name}",
                                 "pass --session <x-agent-session-id>, or run `fbundle invoke` "
                                 "first")
            click.echo(f"{name}: session {session} (the last invoke's)", err=True)
        check_session(session)
        for event in client.logstream(name, session, version=version, kind=kind, tail=tail,
                                      follow=follow, idle=idle, reconnects=reconnects):
            if as_json:
                click.echo(json.dumps({"timestamp": event.timestamp, "stream": event.stream,
                                       "message": event.message}, ensure_ascii=False))
            else:
                click.echo(event.line())


@click.command("delete")
@agent_option
@click.option("--version", "version", help="Delete only this version.")
@click.option("--force", is_flag=True, help="Also end the active sessions.")
@click.option("--yes", is_flag=True, help="Do not ask.")
@connection_options
def delete_command(agent: str | None, version: str | None, force: bool, yes: bool,
                   **conn: Any) -> None:
    """Delete an agent (all its versions) or one version. Cannot be undone."""
    name = check_agent(agent)
    if version is not None:
        check_version(version)
    what = f"version {version} of agent {name}" if version else f"agent {name} and all versions"
    with _conn(conn) as client:
        if not yes:
            click.confirm(f"Delete {what}? This cannot be undone", abort=True, err=True)
        try:
            client.delete(name, version, force=force)
        except ServiceError as error:
            if error.status == 409 and not force:
                whose = "the version" if version else "the agent"
                raise ServiceError(error.message, f"{whose} has active sessions; wait for them "
                                   "to go idle, end them with `fbundle sessions stop`, or pass "
                                   "--force to delete them too", status=409, code=error.code,
                                   request_id=error.request_id) from None
            raise
    click.echo(f"deleted {what}")


commands: list[click.Command] = [deploy_command, status_command, download_command,
                                 logs_command, delete_command]
