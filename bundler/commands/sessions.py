"""``fbundle sessions create|show|list|stop|delete``, ``fbundle agents list``, ``fbundle versions
list``.

Lists follow the spec's paging (``limit``/``order``/``after``, ``has_more``) to the end, or to
``--limit`` items; ``--json`` prints the objects as the service gave them (scrubbed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import click

from bundler.commands.deploy import agent_option, check_agent, connection_options, make_client
from bundler.deploy.client import FoundryClient, content_hash, version_of
from bundler.deploy.http import ServiceError, check_session, check_version
from bundler.deploy.state import remember_session


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
        check_session(session, source="--session-id")
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


commands: list[click.Command] = [sessions_group, agents_group, versions_group]
