"""``fbundle invoke``: send a message to a deployed agent (or ``--local`` to one on this machine).

The answer goes to stdout as it arrives; the session, invocation and region headers go to
stderr, so ``fbundle invoke … > answer.txt`` keeps only the answer. The request is built by
``bundler.deploy.invoke`` (shared with ``fbundle run``'s local agent).
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path
from typing import Any

import click

from bundler.commands.deploy import check_agent, connection_options, make_client
from bundler.definition import load_definition
from bundler.deploy.client import ENDPOINT_API_VERSION, FoundryClient, version_of
from bundler.deploy.http import HttpOptions, ServiceError, Transport, check_version
from bundler.deploy.invoke import (
    DEFAULT_LOCAL_URL,
    INVOKE_TIMEOUT,
    INVOKE_TIMEOUT_ENV,
    NOT_INVOCABLE,
    PROTOCOLS,
    Answer,
    InvokeRequest,
    answer_timeout,
    build_request,
    is_provisioning,
    local_transport,
    send,
)
from bundler.deploy.poll import PollPolicy, VersionFailed, failure_line, wait_until_settled
from bundler.deploy.state import last_session, remember_session
from bundler.errors import UsageError
from bundler.identity import METADATA, metadata_beside

SHOWN_HEADERS = ("x-agent-session-id", "x-agent-invocation-id", "x-ms-region")
RETRIES_WHILE_PROVISIONING = 3


PROJECT_FILES = (METADATA, "agent.yaml", "agent.yml", "azure.yaml")


def _declared(source: Path | None, agent: str | None) -> tuple[str, dict[str, Any]] | None:
    """(where, definition) to read the protocol from, or None when there is nothing to read.

    ``--metadata`` may be a definition file (``metadata.json``, ``agent.yaml``), a zip (its
    ``<agent>.metadata.json``) or a project folder (its definition, found as ``build`` finds
    it). Without it: this folder when it is a project, else ``dist/<agent>.metadata.json``.
    """
    if source is None:
        if any(Path(name).is_file() for name in PROJECT_FILES):
            source = Path(".")
        elif agent and (built := Path("dist") / f"{agent}.metadata.json").is_file():
            source = built
        else:
            return None
    if source.is_dir():
        found = load_definition(source)
        return str(found.path or source), found.definition
    if source.is_file() and zipfile.is_zipfile(source):
        beside = metadata_beside(source)
        if beside is None:
            raise UsageError(f"{source}: no <agent>.metadata.json or metadata.json beside it",
                             "pass --metadata with the definition, or --protocol")
        source = beside
    found = load_definition(source.parent, metadata_path=source)
    return str(source), found.definition


def default_protocol(source: Path | None, agent: str | None) -> str:
    """The first HTTP-invocable protocol the definition declares; ``responses`` without one."""
    declared = _declared(source, agent)
    if declared is None:
        return "responses"
    where, definition = declared
    records = definition.get("protocol_versions")
    names = [str(p.get("protocol")) for p in records or [] if isinstance(p, dict)]
    for name in names:
        if name in PROTOCOLS:
            return name
    if names:
        raise UsageError(f"{where}: the agent declares {', '.join(names)}, none of which "
                         f"fbundle can invoke over HTTP ({', '.join(NOT_INVOCABLE)} are not)",
                         "pass --protocol responses or invocations if the agent serves one")
    return "responses"


def _body(value: str | None) -> str | None:
    """``--body`` as given, ``@file`` read from a file, ``-`` read from stdin."""
    if value is None or not (value == "-" or value.startswith("@")):
        return value
    if value == "-":
        return sys.stdin.read()
    file = Path(value[1:])
    try:
        return file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"--body {value}: cannot read it ({error})",
                         "pass a readable UTF-8 JSON file") from None


def _show(headers: dict[str, str]) -> None:
    for name in SHOWN_HEADERS:
        if value := headers.get(name):
            click.echo(f"{name}: {value}", err=True)


def _print(answer: Answer) -> None:
    for piece in answer.text():
        click.echo(piece, nl=False)
        sys.stdout.flush()


def _wait_for_provisioning(client: FoundryClient, agent: str, timeout: float) -> None:
    """The article: poll the version until active, then retry."""
    envelope = client.get_agent(agent)
    number = str(version_of(envelope).get("version") or "")
    if not number:
        raise ServiceError(f"agent {agent} has no version to wait for", "deploy it first")
    check_version(number, source=f"GET agent {agent}")
    click.echo(f"{agent}: version {number} is still being provisioned; waiting", err=True)
    body = wait_until_settled(lambda: client.get_version(agent, number), timeout=timeout,
                              policy=PollPolicy.from_env(), what=f"{agent} version")
    if body.get("status") != "active":
        raise VersionFailed(f"{agent} version {number} is {body.get('status')}: "
                            f"{failure_line(body)}", "fix it and deploy again")


def _invoke_remote(client: FoundryClient, agent: str, request: InvokeRequest,
                   provision_timeout: float, answer_within: float | None) -> Answer:
    for attempt in range(RETRIES_WHILE_PROVISIONING + 1):
        try:
            return send(client, request, agent=agent, api_version=ENDPOINT_API_VERSION,
                        timeout=answer_within)
        except ServiceError as error:
            _show(error.headers)
            if not is_provisioning(error) or attempt == RETRIES_WHILE_PROVISIONING:
                if details := error.headers.get("x-adc-response-details"):
                    click.echo(f"x-adc-response-details: {details}", err=True)
                raise
            _wait_for_provisioning(client, agent, provision_timeout)
    raise AssertionError("unreachable")  # the loop returns or raises


@click.command("invoke")
@click.option("--agent", envvar="FBUNDLE_AGENT", metavar="NAME",
              help="Agent name [env FBUNDLE_AGENT]; not needed with --local")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default=None,
              help="[default: the first the definition declares, else responses]")
@click.option("--input", "input_text", metavar="TEXT", help="The message to send.")
@click.option("--body", metavar="JSON", help="The whole request body (JSON; @file or - for "
                                             "stdin).")
@click.option("--session", help="Send to this session (x-agent-session-id).")
@click.option("--new-session", is_flag=True,
              help="Start a new session instead of reusing the last one.")
@click.option("--stream", is_flag=True, help="Stream the answer (server-sent events).")
@click.option("--metadata", "definition", type=click.Path(path_type=Path),
              help="Definition to read the protocol from: metadata.json, a zip (its "
                   "<agent>.metadata.json) or a project folder.")
@click.option("--local", "local", is_flag=False, flag_value=DEFAULT_LOCAL_URL, default=None,
              metavar="[URL]", help=f"Invoke an agent running here (`fbundle run`) instead "
                                    f"[default URL {DEFAULT_LOCAL_URL}]; no token is sent.")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="How long the agent may take to answer: the wait for the answer to begin, "
                   "for each further piece of a stream, and for a 202 invocation to finish; 0 "
                   f"waits as long as it takes [env {INVOKE_TIMEOUT_ENV}, default "
                   f"{INVOKE_TIMEOUT:g}].")
@click.option("--provision-timeout", type=click.FloatRange(min=0), default=600.0,
              show_default=True, metavar="SECONDS",
              help="Seconds to wait for a version still being provisioned.")
@connection_options
def invoke_command(agent: str | None, protocol: str | None, input_text: str | None,
                   body: str | None, session: str | None, new_session: bool, stream: bool,
                   definition: Path | None, local: str | None, timeout: float | None,
                   provision_timeout: float, **conn: Any) -> None:
    """Send --input TEXT (or --body JSON) to the agent and print its answer.

    Consecutive invokes reuse the session of the last one (an active session keeps serving the
    version it started on, even after a deploy); --new-session starts a fresh one.
    """
    if session is not None and new_session:
        raise UsageError("--session and --new-session contradict each other", "pass one")
    name = check_agent(agent) if agent is not None or local is None else None
    answer_within = answer_timeout(timeout)
    protocol = protocol or default_protocol(definition, name)
    if local is not None:
        options = HttpOptions.from_env(connect_timeout=conn["connect_timeout"],
                                       read_timeout=conn["read_timeout"])
        _invoke_local(local, protocol, input_text, _body(body), stream, session, options,
                      answer_within)
        return
    assert name is not None
    with make_client(conn.pop("endpoint"), conn.pop("api_version"), conn.pop("no_preview_header"),
                     conn.pop("connect_timeout"), conn.pop("read_timeout")) as client:
        if session is None and not new_session:
            session = last_session(client.endpoint, name)
            if session:
                click.echo(f"{name}: reusing session {session} (--new-session for a fresh one)",
                           err=True)
        request = build_request(protocol, input_text=input_text, body=_body(body),
                                stream=stream, session=session)
        answer = _invoke_remote(client, name, request, provision_timeout, answer_within)
        _show(answer.reply.headers)
        if answer.session:
            remember_session(client.endpoint, name, answer.session)
        _print(answer)


def _invoke_local(url: str, protocol: str, input_text: str | None, body: str | None,
                  stream: bool, session: str | None, options: HttpOptions,
                  answer_within: float | None) -> None:
    request = build_request(protocol, input_text=input_text, body=body, stream=stream,
                            session=session)
    transport: Transport
    with local_transport(url, options=options) as transport:
        try:
            answer = send(transport, request, agent=None, timeout=answer_within)
        except ServiceError as error:
            _show(error.headers)
            if "connection failed" in error.message:
                raise ServiceError(error.message, f"is the agent running at {url}? start it "
                                   "with `fbundle run`") from None
            raise
        _show(answer.reply.headers)
        _print(answer)


commands: list[click.Command] = [invoke_command]
