"""``fbundle sessions create|show|list|stop|delete``, ``fbundle files list|upload|download|delete``
(a session's sandbox), ``fbundle agents list``, ``fbundle versions list``.

Lists follow the spec's paging (``limit``/``order``/``after``, ``has_more``) to the end, or to
``--limit`` items; ``--json`` prints the objects as the service gave them (scrubbed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import click

from bundler.commands.deploy import agent_option, check_agent, connection_options, make_client
from bundler.deploy.client import FoundryClient, content_hash, version_of
from bundler.deploy.http import ServiceError, check_session, check_version
from bundler.deploy.state import last_session, remember_session
from bundler.errors import UsageError
from bundler.redact import redact_urls


def _paging(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--limit", type=click.IntRange(min=1), default=None,
                     help="Show at most N [default: all, page by page]."),
        click.option("--order", type=click.Choice(["asc", "desc"]), default=None,
                     help="By creation time [default: the service's]."),
        click.option("--after", metavar="ID", default=None,
                     help="Start after this id (the last_id of an earlier list)."),
        click.option("--json", "as_json", is_flag=True, help="One JSON array of the objects."),
    ]):
        command = option(command)
    return command


def _client(conn: dict[str, Any]) -> FoundryClient:
    return make_client(conn.pop("endpoint"), conn.pop("api_version"),
                       conn.pop("no_preview_header"), conn.pop("connect_timeout"),
                       conn.pop("read_timeout"))


def _when(value: Any) -> str:
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value) if value else "-"


def _table(rows: Iterator[list[str]], header: list[str], empty: str) -> None:
    """Aligned columns; the rows are gathered first (a list is small: ids and statuses)."""
    every = [header, *rows]
    if len(every) == 1:
        click.echo(empty)
        return
    widths = [max(len(row[i]) for row in every) for i in range(len(header))]
    for row in every:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                       strict=True)).rstrip())


def _emit(items: Iterator[dict[str, Any]], as_json: bool, header: list[str],
          row: Callable[[dict[str, Any]], list[str]], empty: str) -> None:
    if as_json:
        click.echo(json.dumps(list(items), indent=2, sort_keys=True, ensure_ascii=False))
    else:
        _table((row(item) for item in items), header, empty)


SESSION_HEADER = ["SESSION", "STATUS", "VERSION", "LAST USED"]


def _session_row(item: dict[str, Any]) -> list[str]:
    indicator = item.get("version_indicator")
    version = indicator.get("agent_version") if isinstance(indicator, dict) else None
    return [str(item.get("agent_session_id", "?")), str(item.get("status", "?")),
            str(version or "-"), _when(item.get("last_accessed_at"))]


def _not_found(error: ServiceError, name: str, session: str) -> ServiceError:
    if error.status == 404:
        return ServiceError(f"{name}: session {session} not found (deleted, expired, or never "
                            "created)", "`fbundle sessions list` shows the agent's sessions",
                            status=404, code=error.code, request_id=error.request_id)
    return error


@click.group("sessions")
def sessions_group() -> None:
    """An agent's sessions: create, show, list, stop, delete."""


@sessions_group.command("create")
@agent_option
@click.option("--version", "version", metavar="N", default=None,
              help="The agent version to back the session [default: the agent's latest].")
@click.option("--session-id", "session", metavar="ID", default=None,
              help="Your own id for the session (unique within the agent) [default: the "
                   "service picks one].")
@click.option("--json", "as_json", is_flag=True, help="Print the session object as JSON.")
@connection_options
def sessions_create(agent: str | None, version: str | None, session: str | None,
                    as_json: bool, **conn: Any) -> None:
    """Create a session (a long-lived sandbox) for the agent, backed by one version.

    The next `fbundle invoke` reuses it, and `fbundle logs` defaults to it.
    """
    name = check_agent(agent)
    if version is not None:
        check_version(version)
    if session is not None:
        try:
            check_session(session, source="--session-id")
        except UsageError:
            raise UsageError(f"--session-id {redact_urls(session)[:80]!r} is not a session id",
                             "use letters, digits and _.~- (not starting with . or -), at "
                             "most 256") from None
    with _client(conn) as client:
        if version is None:
            envelope = client.get_agent(name)
            if envelope is None:
                raise ServiceError(f"agent {name} not found", "check --agent and --endpoint, "
                                   "or deploy it first", status=404)
            latest = version_of(envelope).get("version")
            if not isinstance(latest, str | int) or str(latest) == "":
                raise ServiceError(f"agent {name} has no version to back a session",
                                   "deploy it first, or pass --version")
            version = check_version(str(latest), source=f"GET agent {name}")
        try:
            created = client.create_session(name, version, session)
        except ServiceError as error:
            if error.status == 409:
                raise ServiceError(error.message, f"session {session} exists already; pick "
                                   "another --session-id, or invoke it with --session",
                                   status=409, code=error.code,
                                   request_id=error.request_id) from None
            raise
        sid = str(created["agent_session_id"])
        remember_session(client.endpoint, name, sid)
    if as_json:
        click.echo(json.dumps(created, indent=2, sort_keys=True, ensure_ascii=False))
        return
    _, status, backing, _ = _session_row(created)
    click.echo(f"{name}: created session {sid} (version {backing}, {status})")


@sessions_group.command("show")
@agent_option
@click.argument("session")
@click.option("--json", "as_json", is_flag=True, help="Print the session object as JSON.")
@connection_options
def sessions_show(agent: str | None, session: str, as_json: bool, **conn: Any) -> None:
    """Show SESSION: its status, the version behind it, when it was created, used, expires."""
    name = check_agent(agent)
    check_session(session, source="SESSION")
    with _client(conn) as client:
        try:
            item = client.get_session(name, session)
        except ServiceError as error:
            raise _not_found(error, name, session) from None
    if as_json:
        click.echo(json.dumps(item, indent=2, sort_keys=True, ensure_ascii=False))
        return
    _table(iter([[*_session_row(item), _when(item.get("created_at")),
                  _when(item.get("expires_at"))]]),
           [*SESSION_HEADER, "CREATED", "EXPIRES"], f"{name}: no session {session}")


@sessions_group.command("list")
@agent_option
@_paging
@connection_options
def sessions_list(agent: str | None, limit: int | None, order: str | None, after: str | None,
                  as_json: bool, **conn: Any) -> None:
    """List the agent's sessions with their status, version and last use."""
    name = check_agent(agent)
    with _client(conn) as client:
        _emit(client.list_sessions(name, limit=limit, order=order, after=after), as_json,
              SESSION_HEADER, _session_row, f"{name}: no sessions")


@sessions_group.command("stop")
@agent_option
@click.argument("session")
@connection_options
def sessions_stop(agent: str | None, session: str, **conn: Any) -> None:
    """Stop SESSION (its files stay; the next invoke of it resumes it)."""
    name = check_agent(agent)
    check_session(session, source="SESSION")
    with _client(conn) as client:
        client.stop_session(name, session)
    click.echo(f"{name}: stopped session {session}")


@sessions_group.command("delete")
@agent_option
@click.argument("session")
@click.option("--yes", is_flag=True, help="Do not ask.")
@connection_options
def sessions_delete(agent: str | None, session: str, yes: bool, **conn: Any) -> None:
    """Delete SESSION and its files. Cannot be undone."""
    name = check_agent(agent)
    check_session(session, source="SESSION")
    with _client(conn) as client:
        if not yes:
            click.confirm(f"Delete session {session} of agent {name}? This cannot be undone",
                          abort=True, err=True)
        client.delete_session(name, session)
    click.echo(f"{name}: deleted session {session}")


@click.group("agents")
def agents_group() -> None:
    """The project's agents."""


@agents_group.command("list")
@_paging
@connection_options
def agents_list(limit: int | None, order: str | None, after: str | None, as_json: bool,
                **conn: Any) -> None:
    """List the project's agents with their latest version and its status."""
    with _client(conn) as client:
        def row(item: dict[str, Any]) -> list[str]:
            latest = version_of(item) if item.get("versions") else {}
            return [str(item.get("name", "?")), str(latest.get("version", "-")),
                    str(latest.get("status", "-"))]

        _emit(client.list_agents(limit=limit, order=order, after=after), as_json,
              ["AGENT", "LATEST", "STATUS"], row, "no agents")


@click.group("versions")
def versions_group() -> None:
    """An agent's versions."""


@versions_group.command("list")
@agent_option
@_paging
@connection_options
def versions_list(agent: str | None, limit: int | None, order: str | None, after: str | None,
                  as_json: bool, **conn: Any) -> None:
    """List the agent's versions: number, status, creation time, stored zip sha256."""
    name = check_agent(agent)
    with _client(conn) as client:
        def row(item: dict[str, Any]) -> list[str]:
            digest = content_hash(item)
            return [str(item.get("version", "?")), str(item.get("status", "-")),
                    _when(item.get("created_at")), digest[:12] if digest else "-"]

        try:
            _emit(client.list_versions(name, limit=limit, order=order, after=after), as_json,
                  ["VERSION", "STATUS", "CREATED", "SHA256"], row, f"{name}: no versions")
        except ServiceError as error:
            if error.status == 404:
                raise ServiceError(f"agent {name} not found", "check --agent and --endpoint",
                                   status=404) from None
            raise


@click.group("files")
def files_group() -> None:
    """Files in a session's sandbox (its home folder): list, upload, download, delete.

    --session defaults to the last invoke's (or `sessions create`'s), as for `fbundle logs`.
    """


session_option = click.option("--session", metavar="ID", default=None,
                              help="The session [default: the last invoke's].")


def _session_for(client: FoundryClient, name: str, session: str | None) -> str:
    if session is not None:
        return check_session(session)
    remembered = last_session(client.endpoint, name)
    if remembered is None:
        raise UsageError(f"{name}: no session to use",
                         "pass --session ID, or invoke the agent (or `fbundle sessions "
                         "create`) first")
    return remembered


def _remote(value: str, what: str) -> str:
    """A sandbox path, relative to the session's home (the spec's ``path`` query)."""
    if not value.strip() or "\0" in value:
        raise UsageError(f"{what} {value!r} is not a path in the sandbox",
                         "pass a path relative to the session's home folder, e.g. data/out.txt")
    return value


def _files_errors(error: ServiceError, name: str, session: str, remote: str) -> ServiceError:
    if error.status == 404:
        return ServiceError(f"{name}: {remote} not found in session {session}", "`fbundle files "
                            "list` shows the folder; `fbundle sessions show` the session",
                            status=404, code=error.code, request_id=error.request_id)
    if error.status == 409:
        return ServiceError(error.message, f"{remote} is a folder that is not empty; pass "
                            "--recursive to delete what is in it", status=409, code=error.code,
                            request_id=error.request_id)
    return error


@files_group.command("list")
@agent_option
@click.argument("remote", metavar="[PATH]", required=False)
@session_option
@_paging
@connection_options
def files_list(agent: str | None, remote: str | None, session: str | None, limit: int | None,
               order: str | None, after: str | None, as_json: bool, **conn: Any) -> None:
    """List one folder of the sandbox (the home folder without PATH): name, size, modified."""
    name = check_agent(agent)
    if remote is not None:
        _remote(remote, "PATH")
    with _client(conn) as client:
        sid = _session_for(client, name, session)

        def row(item: dict[str, Any]) -> list[str]:
            entry = str(item.get("name", "?")) + ("/" if item.get("is_directory") else "")
            return [entry, "-" if item.get("is_directory") else str(item.get("size", "?")),
                    _when(item.get("modified_time"))]

        try:
            _emit(client.list_session_files(name, sid, remote, limit=limit, order=order,
                                            after=after), as_json, ["NAME", "SIZE", "MODIFIED"],
                  row, f"{name}: {remote or 'the home folder'} is empty in session {sid}")
        except ServiceError as error:
            raise _files_errors(error, name, sid, remote or ".") from None


@files_group.command("upload")
@agent_option
@click.argument("local", metavar="FILE", type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path))
@click.option("-t", "--target-path", "remote", metavar="PATH", default=None,
              help="Where in the sandbox [default: the file's name, in the home folder].")
@session_option
@connection_options
def files_upload(agent: str | None, local: Path, remote: str | None, session: str | None,
                 **conn: Any) -> None:
    """Upload FILE (at most 50 MB) into the session's sandbox."""
    name = check_agent(agent)
    target = _remote(remote if remote is not None else local.name, "--target-path")
    with _client(conn) as client:
        sid = _session_for(client, name, session)
        try:
            written = client.upload_session_file(name, sid, local, target)
        except ServiceError as error:
            raise _files_errors(error, name, sid, target) from None
    size = written.get("bytes_written", local.stat().st_size)
    click.echo(f"{name}: uploaded {local} to {written.get('path') or target} in session {sid} "
               f"({size} bytes)")


@files_group.command("download")
@agent_option
@click.argument("remote", metavar="PATH")
@click.option("-t", "--target-path", "-o", "--output", "local", type=click.Path(
    dir_okay=False, path_type=Path), default=None,
    help="Where to write it [default: its name, in this folder].")
@session_option
@connection_options
def files_download(agent: str | None, remote: str, local: Path | None, session: str | None,
                   **conn: Any) -> None:
    """Download PATH from the session's sandbox (written to a temporary file, then renamed)."""
    name = check_agent(agent)
    _remote(remote, "PATH")
    dest = local if local is not None else Path(PurePosixPath(remote).name or "download")
    with _client(conn) as client:
        sid = _session_for(client, name, session)
        try:
            size = client.download_session_file(name, sid, remote, dest)
        except ServiceError as error:
            raise _files_errors(error, name, sid, remote) from None
    click.echo(f"{name}: downloaded {remote} from session {sid} to {dest} ({size} bytes)")


@files_group.command("delete")
@agent_option
@click.argument("remote", metavar="PATH")
@click.option("--recursive", is_flag=True, help="Delete a folder and what is in it.")
@click.option("--yes", is_flag=True, help="Do not ask.")
@session_option
@connection_options
def files_delete(agent: str | None, remote: str, recursive: bool, yes: bool,
                 session: str | None, **conn: Any) -> None:
    """Delete PATH (a file, or with --recursive a folder) from the session's sandbox."""
    name = check_agent(agent)
    _remote(remote, "PATH")
    with _client(conn) as client:
        sid = _session_for(client, name, session)
        if not yes:
            click.confirm(f"Delete {remote} from session {sid} of agent {name}?", abort=True,
                          err=True)
        try:
            client.delete_session_file(name, sid, remote, recursive=recursive)
        except ServiceError as error:
            raise _files_errors(error, name, sid, remote) from None
    click.echo(f"{name}: deleted {remote} from session {sid}")


commands: list[click.Command] = [sessions_group, files_group, agents_group, versions_group]
