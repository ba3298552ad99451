"""Invoking an agent: one request builder for the service and for a locally running agent.

The article's last lifecycle step. Two protocols can be invoked over HTTP:

- ``responses`` — ``POST …/agents/{name}/endpoint/protocols/openai/responses`` (an OpenAI
  Responses body: ``{"input": …, "stream": …}``; the session in the body's ``agent_session_id``,
  the spec's ``OpenAI.CreateResponse`` as ``openai/responses/models.tsp`` extends it); a local
  agent serves it at ``/responses``.
- ``invocations`` — ``POST …/agents/{name}/endpoint/protocols/invocations`` (the spec's
  ``src/agents-invocations/routes.tsp``: the body is the agent's own; the session goes in the
  ``agent_session_id`` query); a local agent serves it at ``/invocations``.

:func:`build_request` turns flags into an :class:`InvokeRequest` and :func:`send` sends it
through any :class:`~bundler.deploy.http.Transport` — the project's (token, ``api-version=v1``,
preview header) or a plain local one (:func:`local_transport`: no auth, no api-version) — and
returns an :class:`Answer` whose :meth:`Answer.text` yields what to print as it arrives.

How long an answer may take is :func:`answer_timeout` (``--timeout``, ``FBUNDLE_INVOKE_TIMEOUT``,
30 minutes as azd's ``azd ai agent invoke --timeout``): long-running agents exist, and the
other requests' 120 s read timeout is no limit for an agent that thinks for ten minutes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from bundler.deploy.http import (
    HttpOptions,
    Reply,
    ServiceError,
    Transport,
    check_endpoint,
    check_session,
    path,
    short_url,
)
from bundler.errors import UsageError
from bundler.settings import RetryPolicy, float_env

log = logging.getLogger(__name__)

PROTOCOLS = ("responses", "invocations")
#: Protocols a definition may declare that cannot be invoked over plain HTTP here.
NOT_INVOCABLE = ("invocations_ws", "a2a", "activity", "activity_protocol", "mcp")
DEFAULT_LOCAL_URL = "http://127.0.0.1:8088"
PROVISIONING = "still being provisioned"
#: ``azd ai agent invoke --timeout`` defaults to 30 minutes (``defaultInvokeTimeoutSeconds``).
INVOKE_TIMEOUT = 1800.0
INVOKE_TIMEOUT_ENV = "FBUNDLE_INVOKE_TIMEOUT"
TIMEOUT_HINT = "raise --timeout (or FBUNDLE_INVOKE_TIMEOUT; 0 waits as long as it takes)"

#: ``x-adc-response-details`` codes (the platform's session errors, as azd's extension mirrors
#: them in nextstep/error_codes.go) and what to do about each.
SESSION_HINTS = {
    "ReadinessTimeout": "the container did not answer /readiness in time; read "
                        "`fbundle logs --kind system` and the console logs, fix startup, "
                        "redeploy (or retry: a slow start can pass)",
    "session_not_ready": "the container started but /readiness did not return 200; read "
                         "`fbundle logs` for the startup error, fix it and redeploy",
    "ProxyTimeout": "the container hung mid-request; read `fbundle logs --tail 100`",
    "SandboxIdle": "the session was paused for idleness and resumes on retry; invoke again",
    "SandboxNotFound": "the session expired; invoke again without --session for a new one",
    "QuotaExceeded": "the session quota is reached; `fbundle sessions list` and delete "
                     "sessions you no longer need",
    "RegionalQuotaExceeded": "the region has no capacity left; retry later or use a project "
                             "in another region",
    "AgentVersionNotReady": "the version is still being deployed; wait for `fbundle status` "
                            "to say active",
    "AgentVersionProvisioningFailed": "the version failed to deploy; `fbundle status` shows "
                                      "its error",
}


@dataclass(frozen=True)
class InvokeRequest:
    """One invocation, independent of where it is sent."""

    protocol: str
    body: bytes
    content_type: str
    stream: bool = False
    session: str | None = None

    def route(self, agent: str | None) -> str:
        """The remote route for ``agent``, or the local one (``/responses``) when None."""
        tail = ("openai", "responses") if self.protocol == "responses" else ("invocations",)
        if agent is None:
            return "/" + tail[-1]
        return path("agents", agent, "endpoint", "protocols", *tail)

    @property
    def query(self) -> dict[str, str | None]:
        if self.protocol == "invocations" and self.session:
            return {"agent_session_id": self.session}
        return {}

    @property
    def accept(self) -> str:
        return "text/event-stream" if self.stream else "application/json"


def build_request(protocol: str, *, input_text: str | None = None, body: str | None = None,
                  stream: bool = False, session: str | None = None) -> InvokeRequest:
    """The request for ``--input TEXT`` or ``--body JSON`` (one of them), ``--stream``, a session.

    ``responses``: ``--input`` becomes ``{"input": TEXT, "stream": …}``; a ``--body`` object
    is sent as given (``stream`` set when ``--stream``). The session rides in the body: the
    spec's ``agent_session_id`` (``CreateResponse``: the spec has no header or query for it),
    and ``session_id`` beside it, the name azd's client sends and local agents read. A
    ``--body`` that already names either keeps its own. ``invocations``: ``--input`` becomes
    ``{"input": TEXT}`` (the article's example), a ``--body`` is sent as given, and the session
    rides in the ``agent_session_id`` query (the spec).
    """
    if protocol in NOT_INVOCABLE:
        raise UsageError(f"the {protocol} protocol cannot be invoked over HTTP by fbundle",
                         "pass --protocol responses or --protocol invocations")
    if protocol not in PROTOCOLS:
        raise UsageError(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}",
                         "pass --protocol responses or --protocol invocations")
    if (input_text is None) == (body is None):
        raise UsageError("pass exactly one of --input TEXT and --body JSON",
                         "--input sends a message; --body sends a whole request body")
    if session is not None:
        check_session(session)
    payload: Any
    if body is not None:
        try:
            payload = json.loads(body)
        except ValueError as error:
            raise UsageError(f"--body is not JSON ({error})",
                             "pass a JSON document, or @file.json to read one") from None
    else:
        payload = {"input": input_text}
    if protocol == "responses":
        if not isinstance(payload, dict):
            raise UsageError("--body for the responses protocol must be a JSON object",
                             'pass for example --body \'{"input": "Hello"}\'')
        if stream or "stream" not in payload:
            payload["stream"] = stream
        stream = bool(payload["stream"])
        if session is not None and "agent_session_id" not in payload \
                and "session_id" not in payload:
            payload["agent_session_id"] = payload["session_id"] = session
    data = json.dumps(payload).encode("utf-8") if body is None or protocol == "responses" \
        else body.encode("utf-8")
    return InvokeRequest(protocol, data, "application/json", stream, session)


def answer_timeout(flag: float | None = None, env: Mapping[str, str] | None = None
                   ) -> float | None:
    """Seconds an agent may take to answer: ``--timeout``, else ``FBUNDLE_INVOKE_TIMEOUT``, else
    30 minutes; ``0`` is no limit (None).

    It is the invoke request's read timeout — the wait for the answer to begin and, for a
    streamed answer, the longest quiet between two of its events — and the deadline for
    polling a ``202`` invocation. Connecting keeps its own ``--connect-timeout``.
    """
    seconds = flag if flag is not None else float_env(
        os.environ if env is None else env, INVOKE_TIMEOUT_ENV, INVOKE_TIMEOUT)
    return seconds or None


def local_transport(url: str = DEFAULT_LOCAL_URL, *, options: HttpOptions | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> Transport:
    """A plain agent on this machine (``fbundle run``): no token, no api-version, no opt-in."""
    base = check_endpoint(url, what="--local URL",
                          hint=f"pass --local {DEFAULT_LOCAL_URL} (where `fbundle run` listens)")
    return Transport(base, None, api_version=None, options=options, sleep=sleep)


@dataclass
class Answer:
    """An invocation's answer: the headers to show, then the text (as it arrives when streamed).

    ``timeout`` (seconds, None for no limit) bounds each wait for more of the answer and the
    polling of a ``202``; between polls it waits as retries do (``policy``: ``FBUNDLE_BACKOFF``
    doubling up to ``FBUNDLE_BACKOFF_MAX``), through ``sleep``.
    """

    reply: Reply
    protocol: str
    poll: Callable[[str], Reply] | None = None
    notes: list[str] = field(default_factory=list)
    timeout: float | None = INVOKE_TIMEOUT
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    @property
    def session(self) -> str | None:
        value = self.reply.header("x-agent-session-id")
        return check_session(value, source="x-agent-session-id") if value else None

    @property
    def invocation(self) -> str | None:
        return self.reply.header("x-agent-invocation-id")

    @property
    def region(self) -> str | None:
        return self.reply.header("x-ms-region")

    def text(self) -> Iterator[str]:
        """The answer's text pieces (a newline ends the last one); agent errors raise.

        A wait longer than ``timeout`` for more of the answer, or a connection lost while it
        arrives, is one :class:`ServiceError` line (never a traceback).
        """
        try:
            if self.reply.content_type == "text/event-stream":
                yield from (_responses_stream(self.reply) if self.protocol == "responses"
                            else _data_lines(self.reply))
            elif self.reply.status == 202 and self.protocol == "invocations":
                yield from self._long_running()
            elif self.reply.content_type.endswith("json"):
                yield _render_json(self.reply.json_value(), self.protocol)
            else:
                text = self.reply.text()
                yield text if text.endswith("\n") else text + "\n"
        except httpx.TimeoutException:
            raise ServiceError(f"{self.reply.method} {short_url(self.reply.url)}: the agent "
                               f"sent nothing more for {self.timeout or 0:g}s",
                               TIMEOUT_HINT) from None
        except httpx.TransportError as error:
            raise ServiceError(f"{self.reply.method} {short_url(self.reply.url)}: the "
                               f"connection was lost while the answer arrived "
                               f"({type(error).__name__})",
                               "invoke again; `fbundle logs` shows the agent's side") from None
        finally:
            self.reply.close()

    def _long_running(self) -> Iterator[str]:
        """A ``202`` invocation: poll ``GET …/invocations/{id}`` (the spec) until it ends,
        backing off between polls, for at most ``timeout`` seconds."""
        invocation = self.invocation
        if not invocation or self.poll is None:
            raise ServiceError("the invocation was accepted (202) without an "
                               "x-agent-invocation-id to poll", "report it to the agent's owner")
        deadline = None if self.timeout is None else self.clock() + self.timeout
        attempt = 0
        while True:
            body = self.poll(invocation).json()
            status = str(body.get("status", ""))
            if status == "completed":
                yield _render_json(body, "invocations")
                return
            if status in ("failed", "cancelled"):
                raise ServiceError(f"invocation {invocation} {status}: {_agent_error(body)}",
                                   "read `fbundle logs` for the agent's side")
            delay = self.policy.delay(attempt)
            if deadline is not None and self.clock() + delay > deadline:
                raise ServiceError(f"invocation {invocation} is still {status or 'running'} "
                                   f"after {self.timeout or 0:g}s", TIMEOUT_HINT)
            attempt += 1
            self.sleep(delay)


def _agent_error(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        label = error.get("code") or error.get("type") or "error"
        return f"{label}: {' '.join(str(error.get('message') or '').split())}"
    return "no error object"


def _output_text(body: dict[str, Any]) -> list[str]:
    texts = []
    for item in body.get("output") or []:
        for content in (item.get("content") or []) if isinstance(item, dict) else []:
            if isinstance(content, dict) and content.get("type") == "output_text":
                texts.append(str(content.get("text", "")))
    return texts


def answer_error(body: Any, protocol: str) -> str | None:
    """Why a 2xx answer is still a failure (a response whose ``status`` is ``failed``, an
    invocation that carries an ``error`` object), or None: ``invoke`` and ``run --invoke``
    judge an answer the same way."""
    if isinstance(body, dict) and (body.get("status") == "failed" or (
            isinstance(body.get("error"), dict) and protocol == "invocations")):
        return _agent_error(body)
    return None


def _render_json(body: Any, protocol: str) -> str:
    if isinstance(body, dict):
        if (why := answer_error(body, protocol)) is not None:
            raise ServiceError(f"the agent answered with an error: {why}",
                               "read `fbundle logs` for the agent's side")
        if protocol == "responses" and (texts := _output_text(body)):
            return "\n".join(texts) + "\n"
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def _responses_stream(reply: Reply) -> Iterator[str]:
    """OpenAI Responses events: text deltas as they come; the completed response otherwise."""
    printed = False
    for event, data in reply.iter_sse():
        if event == "response.output_text.delta":
            try:
                delta = json.loads(data).get("delta", "")
            except (ValueError, AttributeError):
                continue
            if delta:
                printed = True
                yield str(delta)
        elif event in ("response.completed", "response.failed", "response.incomplete"):
            try:
                response = json.loads(data).get("response", {})
            except (ValueError, AttributeError):
                response = {}
            if isinstance(response, dict) and response.get("status") == "failed":
                raise ServiceError(f"the agent's response failed: {_agent_error(response)}",
                                   "read `fbundle logs` for the agent's side")
            if not printed and isinstance(response, dict):
                yield _render_json(response, "responses")
                return
            break
        elif event == "error":
            try:
                error = json.loads(data)
            except ValueError:
                error = {"message": data}
            raise ServiceError(f"the agent's stream failed: {_agent_error({'error': error})}",
                               "read `fbundle logs` for the agent's side")
    if printed:
        yield "\n"


def _data_lines(reply: Reply) -> Iterator[str]:
    """An invocations stream is the agent's own format: each event's data, one per line."""
    for _, data in reply.iter_sse():
        if data == "[DONE]":
            break
        yield data + "\n"


def send(transport: Transport, request: InvokeRequest, *, agent: str | None,
         api_version: str | None = None, timeout: float | None = INVOKE_TIMEOUT) -> Answer:
    """POST ``request`` to ``agent``'s endpoint (or a local agent's root when ``agent`` is None).

    ``timeout`` (seconds; None waits as long as it takes) is the read timeout of this request
    and of a ``202``'s polls, in place of the transport's own (see :func:`answer_timeout`).
    A failed answer is a :class:`ServiceError` whose hint comes from
    ``x-adc-response-details`` when the platform classified it.
    """
    route = request.route(agent)
    headers = transport.headers(accept=request.accept, Content_Type=request.content_type)
    limits = httpx.Timeout(timeout, connect=transport.options.connect_timeout)
    try:
        reply = transport.send("POST", route, headers=headers, content=request.body,
                               query=request.query, api_version=api_version, stream=True,
                               timeout=limits, timeout_hint=TIMEOUT_HINT)
    except ServiceError as error:
        raise _with_session_hint(error) from None

    def poll(invocation: str) -> Reply:
        return transport.send("GET", route + path(invocation), headers=transport.headers(),
                              api_version=api_version, timeout=limits,
                              timeout_hint=TIMEOUT_HINT)

    log.debug("invoke %s: HTTP %d", short_url(reply.url), reply.status)
    return Answer(reply, request.protocol, poll, timeout=timeout, policy=transport.options,
                  sleep=transport.wait)


def _with_session_hint(error: ServiceError) -> ServiceError:
    code = (error.details or "").split(";")[0].split(",")[0].strip()
    hint = SESSION_HINTS.get(code) or SESSION_HINTS.get(error.code or "")
    if hint is None:
        return error
    return ServiceError(error.message, hint, status=error.status, code=error.code,
                        request_id=error.request_id, details=error.details,
                        headers=error.headers)


def is_provisioning(error: ServiceError) -> bool:
    """The article's ``400 bad_request (Agent version is still being provisioned)``."""
    return (error.status == 400 and PROVISIONING in error.message) or \
        (error.details or "").startswith("AgentVersionNotReady")
