"""A loopback Foundry Agent Service that speaks the spec, not what the client happens to send.

Stdlib only (``http.server``), bound to 127.0.0.1 on an ephemeral port, served from a thread, so
the real ``httpx`` client is tested end to end. Multipart bodies are parsed incrementally (never
held whole), so a 200 MB upload costs the test process no memory.

Where each behaviour comes from (paths in Azure/azure-rest-api-specs are under
``specification/ai-foundry/data-plane/Foundry/src/``; "article" is *Deploy a hosted agent from
source code*, shared/reference/foundry-hosted-agents-source-code-deploy.txt):

- ``api-version`` ``2025-11-15-preview`` (article) and ``v1`` (``common/servicepatterns.tsp``:
  ``FoundryDataPlaneApiVersionParameter``); anything else is 400.
- ``Foundry-Features: CodeAgents=V1Preview,HostedAgents=V1Preview`` required under the preview
  api-version on Create/Update/Delete (article, "include the preview feature header on mutating
  requests"), on ``code:download`` (``agents/routes.tsp`` ``downloadAgentCode``:
  ``required_previews: code_agents_v1_preview``) and on the versioned logstream
  (``agents-sessions/routes.tsp``: ``required_previews: hosted_agents_v1_preview``); missing, the
  answer is ``403 preview_feature_required`` (what azd met, azure-dev CHANGELOG PR 8441/8508).
  :attr:`Config.require_features_on_v1` makes ``v1`` demand it too (preview-era behaviour).
- Errors are ``{"error": {"code", "message", "additionalInfo"}}`` (``common/models.tsp``
  ``ApiErrorResponse``, ``OpenAI.Error`` plus ``additionalInfo``), with ``x-request-id``.
- ``POST /agents`` multipart with ``x-ms-agent-name`` and ``x-ms-code-zip-sha256``
  (``agents/routes.tsp`` ``createAgentFromCode``; article "Create the agent"), 409 when the agent
  exists (article troubleshooting), answering the agent envelope ``AgentObject``.
- ``POST /agents/{name}`` multipart (``updateAgentFromCode``), answering the envelope.
- ``POST /agents/{name}/versions`` multipart (``createAgentVersionFromCode``), answering a bare
  ``AgentVersionObject``; it creates a missing agent as the GA SDKs rely on
  (:attr:`Config.versions_creates_agent`; off, a missing agent is 404 as the routes.tsp text
  "for an existing agent" reads). :attr:`Config.v1_agent_multipart_removed` answers 404 for the
  two ``/agents`` multipart routes under ``v1`` (the spec revision that marks them removed).
- Parts ``metadata`` (application/json, ``CreateAgentVersionFromCodeMetadata``) and ``code``
  (application/zip, filename ``<agent>.zip``): article "Multipart request shape".
- Content-addressed versions: the same zip sha and definition give the latest back (article
  "Update or version an agent"); ``code_configuration.content_hash`` is set from the sha header
  (``agents/models.tsp`` ``CodeConfiguration.content_hash``).
- ``AgentVersionStatus`` ``creating → active | failed``, ``deleting``, ``deleted``
  (``agents/models.tsp``); a failed version carries ``error`` (article; the spec removes the
  field under ``v1``, :attr:`Config.omit_error`).
- ``GET /agents``, ``GET /agents/{name}/versions``, ``GET /agents/{name}/endpoint/sessions``
  paged with ``limit`` (1–100, default 20), ``order`` (asc|desc), ``after``; answers
  ``AgentsPagedResult`` ``{data, first_id, last_id, has_more}`` (``common/servicepatterns.tsp``).
- ``GET /agents/{name}/code:download[?agent_version=N]``: ``application/zip``,
  ``x-ms-agent-version`` (``agents/models.tsp`` ``DownloadAgentCodeResponse``) and, per
  :attr:`Config.digest_in`, the article's ``x-ms-code-zip-sha256`` header and/or the spec's
  ``content_hash``.
- ``DELETE /agents/{name}[?force=true]`` and ``DELETE /agents/{name}/versions/{v}[?force=true]``:
  409 while sessions (of the agent, or of that version) are active, ``force`` cascades
  (``agents/routes.tsp`` ``deleteAgent``/``deleteAgentVersion`` docs; article clean-up).
- Invoke (api-version ``v1``, article "Invoke the agent"):
  ``POST /agents/{name}/endpoint/protocols/openai/responses`` (an OpenAI Responses body,
  ``stream`` giving ``response.output_text.delta``/``response.completed`` events) and
  ``POST /agents/{name}/endpoint/protocols/invocations[?agent_session_id=]``
  (``agents-invocations/routes.tsp`` ``createAgentInvocation``); answers carry
  ``x-agent-session-id`` (also on 424/500, article), ``x-agent-invocation-id`` (routes.tsp) and
  ``x-ms-region`` (article). ``400 bad_request`` "Agent version is still being provisioned"
  while no version is active, and a configurable 424 ``session_not_ready`` with
  ``x-adc-response-details`` (article troubleshooting; the code vocabulary is azd's
  ``nextstep/error_codes.go``). A session keeps the version it was created on.
- Responses' session: the body's ``agent_session_id`` (``openai/responses/models.tsp`` adds it
  to ``OpenAI.CreateResponse``: "When provided, the request is routed to the same sandbox";
  the v1 OpenAPI, ``openapi3/v1/microsoft-foundry-openapi3.yaml``, has no header or query for
  it). Nothing else in the body names a session here: azd's ``session_id`` is not the spec's.
- Sessions (``agents/routes.tsp`` session lifecycle, api-version ``v1``): ``POST
  …/endpoint/sessions`` (``createSession``) takes ``application/json``
  ``CreateAgentSessionRequest`` — ``version_indicator`` required, discriminated by ``type``
  (``version_ref`` needs ``agent_version``, a version of the agent), ``agent_session_id``
  optional and "unique within the agent endpoint" (409 otherwise) — and answers ``201`` with
  the ``AgentSessionResource`` (``ResourceCreatedResponse``), status ``creating`` (it reads
  ``active`` afterwards); list, get, ``DELETE …/sessions/{id}`` (204, also for a session that
  does not exist), ``POST …/sessions/{id}:stop`` (204); ``AgentSessionResource`` from
  ``agents/models.tsp``.
- Session files (``agents-session-files/routes.tsp`` and ``models.tsp``): ``PUT
  …/sessions/{id}/files/content?path=`` takes ``application/octet-stream`` (415 otherwise), at
  most 50 MB (413), and answers ``201 {path, bytes_written}``; ``GET …/files/content?path=``
  streams the bytes; ``GET …/files[?path=]`` lists the immediate children of a folder (the
  home folder without ``path``) as ``SessionDirectoryListResponse`` (``entries`` of ``{name,
  size, is_directory, modified_time}``, paged by ``limit``/``after``); ``DELETE
  …/files?path=[&recursive=true]`` answers 204, or 409 for a folder that is not empty without
  ``recursive``. Paths are relative to the session's home; one that leaves it is 400.
- Logstream: ``GET /agents/{n}/sessions/{s}:logstream`` (article; azd's client, with ``kind``,
  ``tail`` 1–300 and ``follow``) and ``GET /agents/{n}/versions/{v}/sessions/{s}:logstream``
  (``agents-sessions/routes.tsp``); frames are ``event: log`` with ``data: {"timestamp",
  "stream", "message"}``, led by a session metadata frame of another event type that clients
  must ignore ("Clients should gracefully ignore unrecognized event types", ``SessionLogEvent``).
  Without ``follow`` the stream ends after the backlog; with it the server holds the stream
  :attr:`Config.log_hold` seconds and then closes it ("the server terminates the connection").

:class:`Config` switches on the faults a client must survive: 429 with ``Retry-After``, 5xx, a
connection dropped mid-upload, a slow answer, a failing or flickering provisioning, a wrong
download digest, a create race, and a service that echoes the caller's token back in every text
field it has (to prove the client redacts at the door).
"""

from __future__ import annotations

import hashlib
import json
import re
import select
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

PREFIX = "/api/projects/test-project"
TOKEN = "fake-token-s3cr3t-0123456789abcdef"
PREVIEW = "2025-11-15-preview"
V1 = "v1"
API_VERSIONS = (PREVIEW, V1)
FEATURES = ("CodeAgents=V1Preview", "HostedAgents=V1Preview")
REGION = "swedencentral"
CHUNK = 1 << 16
NAME = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"


@dataclass
class Config:
    """What the fake does; tests change it before or between requests."""

    token: str = TOKEN
    polls_until_active: int = 1  # GETs of a version before it leaves `creating` (0: at once)
    fail_with: dict[str, str] | None = None  # error object for versions minted from now on
    omit_error: bool = False  # a failed version without `error` (the spec under v1)
    flicker: bool = False  # report `failed` once while still creating (a status that flickers)
    omit_status: bool = False  # version bodies without `status`
    omit_version: bool = False  # upload answers without `version`
    wrong_content_hash: bool = False  # store a content_hash that is not the upload's sha
    throttle: int = 0  # answer the next N requests with 429
    retry_after: str | None = "0"
    server_errors: int = 0  # answer the next N requests with 503
    drop_upload_after: int | None = None  # close the connection after reading this many bytes
    slow: float = 0.0  # seconds to wait before answering any request
    echo_token: bool = False  # put the received bearer token in every text field there is
    hide_agent_once: bool = False  # the next GET /agents/{name} says 404 (a create race)
    require_features_on_v1: bool = False
    versions_creates_agent: bool = True
    v1_agent_multipart_removed: bool = False
    digest_in: tuple[str, ...] = ("header", "content_hash")  # where the download digest is told
    wrong_download_sha: bool = False
    store_code: bool = True  # keep uploaded zips (for code:download); off for huge uploads
    log_events: list[dict[str, str]] = field(default_factory=list)  # {kind, stream, message,...}
    log_hold: float = 0.0  # with follow=true, keep a logstream open this long after its backlog
    hold_without_follow: bool = False  # hold it open even with follow=false (a lax server)
    on_logstream: Callable[[int], None] | None = None  # called with the connection count
    provisioning_invokes: int = 0  # answer the next N invokes with 400 still-being-provisioned
    invoke_failure: tuple[int, str, str] | None = None  # (status, error.code, adc details)
    invoke_202: bool = False  # invocations answer 202 + poll (a long-running invocation)
    polls_until_done: int = 0  # GETs of a 202 invocation answered in_progress before completed
    invoke_delay: float = 0.0  # seconds an invoke takes before its answer (a thinking agent)
    stream_stall: float = 0.0  # seconds a streamed answer goes quiet after its second event
    agent_error: bool = False  # invoke answers 200 with a failed response (the agent's error)
    no_request_id_header: bool = False  # the id only in error.additionalInfo.request_id


@dataclass
class Part:
    name: str
    content_type: str
    filename: str | None
    size: int
    sha256: str
    path: Path | None  # where the bytes were kept, if kept


@dataclass
class Recorded:
    method: str
    path: str  # without the project prefix, percent-decoded
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    parts: list[Part] = field(default_factory=list)
    status: int = 0
    raw_path: str = ""  # as sent (still percent-encoded)
    body: bytes = b""  # small non-multipart bodies (invoke)


@dataclass
class Version:
    agent: str
    version: str
    sha256: str
    definition: dict[str, Any]
    description: str | None
    code: Path | None
    created_at: int
    polls: int = 0
    status: str = "creating"
    error: dict[str, str] | None = None
    pending_error: dict[str, str] | None = None
    flickered: bool = False

    def as_json(self, cfg: Config) -> dict[str, Any]:
        definition = json.loads(json.dumps(self.definition))
        code = definition.setdefault("code_configuration", {})
        if isinstance(code, dict) and "content_hash" in cfg.digest_in:
            code["content_hash"] = "0" * 64 if cfg.wrong_content_hash else self.sha256
        body: dict[str, Any] = {
            "object": "agent.version", "id": f"{self.agent}:{self.version}",
            "name": self.agent, "version": self.version, "description": self.description,
            "metadata": None, "created_at": self.created_at, "definition": definition,
        }
        if not cfg.omit_status:
            body["status"] = self.status
        if self.error and not cfg.omit_error:
            body["error"] = self.error
        return body


@dataclass
class Session:
    id: str
    agent: str
    version: str
    created_at: int
    status: str = "active"
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # path -> (bytes, mtime)

    def as_json(self) -> dict[str, Any]:
        return {"agent_session_id": self.id,
                "version_indicator": {"type": "version_ref", "agent_version": self.version},
                "status": self.status, "created_at": self.created_at,
                "last_accessed_at": self.created_at, "expires_at": self.created_at + 30 * 86400}


@dataclass
class Agent:
    name: str
    created_at: int
    versions: dict[str, Version] = field(default_factory=dict)
    tombstones: dict[str, int] = field(default_factory=dict)  # deleted version -> reads since
    sessions: dict[str, Session] = field(default_factory=dict)
    minted: int = 0

    @property
    def latest(self) -> Version | None:
        return list(self.versions.values())[-1] if self.versions else None

    @property
    def active(self) -> Version | None:
        ready = [v for v in self.versions.values() if v.status == "active"]
        return ready[-1] if ready else None

    def envelope(self, cfg: Config) -> dict[str, Any]:
        latest = self.latest
        return {"object": "agent", "id": self.name, "name": self.name, "state": "enabled",
                "versions": {"latest": latest.as_json(cfg) if latest else None}}


class _Reply(Exception):
    """Raised inside a handler to answer with an error (after draining the body)."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class _Dropped(Exception):
    """The fake closed the connection on purpose."""


class FakeService:
    """``with FakeService() as fake:`` — then point the client at ``fake.endpoint``."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.agents: dict[str, Agent] = {}
        self.requests: list[Recorded] = []
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.clock = 1_700_000_000
        self.logstreams = 0
        self.invocation_polls = 0
        self.logstream_closed_by_client = 0  # held streams the client hung up on
        self._tmp = tempfile.TemporaryDirectory(prefix="fakeservice-")
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PREFIX}"

    def __enter__(self) -> FakeService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._tmp.cleanup()

    def calls(self, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if method is None or r.method == method]

    def new_code_path(self) -> Path:
        return Path(self._tmp.name) / uuid.uuid4().hex

    def tick(self) -> int:
        with self.lock:
            self.clock += 1
            return self.clock

    def add_session(self, agent: str, version: str | None = None,
                    session: str | None = None) -> str:
        """A session on ``agent`` (backed by ``version``, default the active one)."""
        with self.lock:
            record = self.agents[agent]
            number = version or (record.active or record.latest or Version(
                agent, "1", "", {}, None, None, 0)).version
            sid = session or f"sess-{uuid.uuid4().hex[:12]}"
            record.sessions[sid] = Session(sid, agent, number, self.tick())
            return sid


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeService

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # dropped and timed-out connections are the point of several tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def cfg(self) -> Config:
        return self.server.fake.config

    def _echo(self, text: str) -> str:
        """``text`` with the caller's token in it, when the fake plays a leaky service."""
        if not self.cfg.echo_token:
            return text
        token = self._headers.get("authorization", "").removeprefix("Bearer ")
        return f"{text} [{token}]"

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        cfg = fake.config
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        self._headers = headers
        record = Recorded(method, unquote(url.path.removeprefix(PREFIX)), query, headers,
                          raw_path=url.path.removeprefix(PREFIX))
        with fake.lock:
            fake.requests.append(record)
        self._body_left = int(headers.get("content-length", "0") or 0)
        try:
            if cfg.slow:
                fake.stopping.wait(cfg.slow)
            self._route(method, url.path, query, headers, record)
        except _Reply as reply:
            try:
                self._drain()
            except _Dropped:
                self.close_connection = True
                return
            record.status = reply.status
            request_id = uuid.uuid4().hex
            error = {"code": self._echo(reply.code) if cfg.echo_token else reply.code,
                     "message": self._echo(reply.message),
                     "additionalInfo": {"request_id": request_id}}
            self._json(reply.status, {"error": error}, reply.headers,
                       reason=self._echo("Failed") if cfg.echo_token else None)
        except _Dropped:
            self.close_connection = True

    def _route(self, method: str, raw: str, query: dict[str, str], headers: dict[str, str],
               record: Recorded) -> None:
        fake = self.server.fake
        cfg = fake.config
        if not raw.startswith(PREFIX + "/"):
            raise _Reply(404, "not_found", f"no project at {raw}")
        route = unquote(raw[len(PREFIX):])
        api_version = query.get("api-version")
        if api_version not in API_VERSIONS:
            raise _Reply(400, "invalid_api_version",
                         f"api-version {api_version!r} is not supported")
        with fake.lock:
            if cfg.throttle > 0:
                cfg.throttle -= 1
                extra = {"Retry-After": cfg.retry_after} if cfg.retry_after is not None else {}
                raise _Reply(429, "too_many_requests", "Rate limit is exceeded", extra)
            if cfg.server_errors > 0:
                cfg.server_errors -= 1
                raise _Reply(503, "service_unavailable", "try again")
        authorization = headers.get("authorization", "")
        if authorization != f"Bearer {cfg.token}":
            raise _Reply(401, "PermissionDenied", "Access denied due to invalid token")
        endpoint_route = "/endpoint/" in route
        if endpoint_route and api_version != V1:
            raise _Reply(400, "invalid_api_version",
                         "the agent endpoint takes api-version=v1")
        self._check_features(method, route, api_version)
        status = 200
        body: dict[str, Any] | None
        seg = r"([^/:]+)"
        if method == "POST" and route == "/agents":
            body = self._create(headers, record, api_version)
        elif method == "POST" and (m := re.fullmatch(rf"/agents/{seg}", route)):
            body = self._update(m.group(1), headers, record, api_version)
        elif method == "POST" and (m := re.fullmatch(rf"/agents/{seg}/versions", route)):
            body = self._new_version(m.group(1), headers, record)
        elif method == "GET" and route == "/agents":
            agents = list(fake.agents.values())
            body = self._page([a.envelope(cfg) for a in agents], query, "id",
                              [a.created_at for a in agents])
        elif method == "GET" and (m := re.fullmatch(rf"/agents/{seg}", route)):
            body = self._get_agent(m.group(1))
        elif method == "GET" and (m := re.fullmatch(rf"/agents/{seg}/versions", route)):
            versions = list(self._agent(m.group(1)).versions.values())
            body = self._page([v.as_json(cfg) for v in versions], query, "version",
                              [v.created_at for v in versions])
        elif method == "GET" and (m := re.fullmatch(rf"/agents/{seg}/versions/{seg}", route)):
            body = self._poll(m.group(1), m.group(2))
        elif method == "GET" and (m := re.fullmatch(rf"/agents/{seg}/code:download", route)):
            self._download(m.group(1), query.get("agent_version"), record)
            return
        elif method == "GET" and (m := re.fullmatch(
                rf"/agents/{seg}(?:/versions/{seg})?/sessions/{seg}:logstream", route)):
            self._logstream(m.group(1), m.group(2), m.group(3), query, record)
            return
        elif method == "DELETE" and (m := re.fullmatch(rf"/agents/{seg}(?:/versions/{seg})?",
                                                         route)):
            body = self._delete(m.group(1), m.group(2), query.get("force") == "true")
        elif method == "POST" and (m := re.fullmatch(
                rf"/agents/{seg}/endpoint/protocols/(openai/responses|invocations)", route)):
            self._invoke(m.group(1), m.group(2), query, headers, record)
            return
        elif method == "GET" and (m := re.fullmatch(
                rf"/agents/{seg}/endpoint/protocols/invocations/{seg}", route)):
            with fake.lock:
                fake.invocation_polls += 1
                done = fake.invocation_polls > self.cfg.polls_until_done
            body = {"id": m.group(2), "status": "completed" if done else "in_progress"}
            if done:
                body["output"] = self._echo("done later")
        elif method == "POST" and (m := re.fullmatch(rf"/agents/{seg}/endpoint/sessions",
                                                      route)):
            body = self._create_session(m.group(1), headers, record)
            status = 201
        elif method == "GET" and (m := re.fullmatch(rf"/agents/{seg}/endpoint/sessions", route)):
            sessions = list(self._agent(m.group(1)).sessions.values())
            body = self._page([s.as_json() for s in sessions], query, "agent_session_id",
                              [s.created_at for s in sessions])
        elif m := re.fullmatch(rf"/agents/{seg}/endpoint/sessions/{seg}/files(/content)?",
                               route):
            if self._files(method, m.group(1), m.group(2), m.group(3) is not None, query,
                           headers, record):
                return
            body, status = None, 204
        elif m := re.fullmatch(rf"/agents/{seg}/endpoint/sessions/{seg}(:stop)?", route):
            body = self._session(method, m.group(1), m.group(2), m.group(3) is not None)
            status = 204 if body is None else 200
        else:
            raise _Reply(404, "not_found", f"no route for {method} {route}")
        record.status = status
        if body is None:
            self._empty(status)
        else:
            self._json(status, body)

    def _check_features(self, method: str, route: str, api_version: str | None) -> None:
        """The article's mutating calls, the spec's download and versioned logstream."""
        needs = method in ("POST", "DELETE") and "/endpoint/" not in route \
            or route.endswith("/code:download") \
            or re.fullmatch(r"/agents/[^/]+/versions/[^/]+/sessions/[^/]+:logstream", route)
        if not needs or (api_version == V1 and not self.cfg.require_features_on_v1):
            return
        features = [f.strip() for f in self._headers.get("foundry-features", "").split(",")]
        if not all(f in features for f in FEATURES):
            raise _Reply(403, "preview_feature_required",
                         "Foundry-Features: CodeAgents=V1Preview,HostedAgents=V1Preview is "
                         "required for this operation")

    def _send_head(self, status: int, headers: dict[str, str], reason: str | None = None
                   ) -> None:
        self.send_response(status, reason)
        request_id = uuid.uuid4().hex
        if not self.cfg.no_request_id_header:
            self.send_header("x-request-id", self._echo(request_id) if self.cfg.echo_token
                             else request_id)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None,
              reason: str | None = None) -> None:
        data = json.dumps(body).encode()
        self._send_head(status, {"Content-Type": "application/json",
                                 "Content-Length": str(len(data)), **(headers or {})}, reason)
        self.wfile.write(data)

    def _empty(self, status: int) -> None:
        self._send_head(status, {"Content-Length": "0"})

    def _page(self, items: list[dict[str, Any]], query: dict[str, str], id_field: str,
              created: list[int]) -> dict[str, Any]:
        """``AgentsPagedResult`` over ``items`` with ``limit``/``order``/``after``."""
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            raise _Reply(400, "invalid_parameter", "limit must be an integer") from None
        if not 1 <= limit <= 100:
            raise _Reply(400, "invalid_parameter", "limit must be between 1 and 100")
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise _Reply(400, "invalid_parameter", "order must be asc or desc")
        ordered = [item for _, item in sorted(zip(created, items, strict=True),
                                              key=lambda pair: pair[0],
                                              reverse=order == "desc")]
        ids = [str(item[id_field]) for item in ordered]
        start = 0
        if "after" in query:
            if query["after"] not in ids:
                raise _Reply(400, "invalid_parameter", f"after {query['after']!r} is unknown")
            start = ids.index(query["after"]) + 1
        page = ordered[start:start + limit]
        return {"object": "list", "data": page,
                "first_id": str(page[0][id_field]) if page else None,
                "last_id": str(page[-1][id_field]) if page else None,
                "has_more": start + limit < len(ordered)}

    def _agent(self, name: str) -> Agent:
        agent = self.server.fake.agents.get(name)
        if agent is None:
            raise _Reply(404, "not_found", f"Agent '{name}' not found")
        return agent

    # -- uploads ----------------------------------------------------------------------------

    def _upload(self, name: str, headers: dict[str, str], record: Recorded
                ) -> tuple[dict[str, Any], Part, str]:
        sha = headers.get("x-ms-code-zip-sha256", "")
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise _Reply(400, "bad_request", "x-ms-code-zip-sha256 header is required")
        parts = {p.name: p for p in self._multipart(headers, record)}
        metadata, code = parts.get("metadata"), parts.get("code")
        if metadata is None or code is None:
            raise _Reply(400, "bad_request", "multipart parts 'metadata' and 'code' are required")
        if metadata.content_type != "application/json":
            raise _Reply(400, "bad_request", "part 'metadata' must be application/json")
        if code.content_type != "application/zip":
            raise _Reply(400, "bad_request", "part 'code' must be application/zip")
        if code.filename != f"{name}.zip":
            raise _Reply(400, "bad_request", f"part 'code' must have filename {name}.zip")
        if code.sha256 != sha:
            raise _Reply(400, "code_sha256_mismatch",
                         f"x-ms-code-zip-sha256 {sha} does not match the uploaded zip")
        assert metadata.path is not None
        try:
            definition = json.loads(metadata.path.read_text("utf-8"))
        except ValueError:
            raise _Reply(400, "bad_request", "part 'metadata' is not JSON") from None
        if not isinstance(definition, dict) or not isinstance(definition.get("definition"),
                                                              dict):
            raise _Reply(400, "bad_request", "metadata must hold a 'definition' object")
        code_config = definition["definition"].get("code_configuration")
        if isinstance(code_config, dict) and "content_hash" in code_config:
            raise _Reply(400, "bad_request", "content_hash is read-only (set from the header)")
        return definition, code, sha

    def _mint(self, agent: Agent, metadata: dict[str, Any], code: Part, sha: str) -> Version:
        """Content-addressed: the same zip and definition as the latest give the latest back."""
        fake = self.server.fake
        cfg = fake.config
        latest = agent.latest
        if latest and latest.sha256 == sha and latest.definition == metadata["definition"]:
            return latest
        agent.minted += 1
        version = Version(agent.name, str(agent.minted), sha, metadata["definition"],
                          metadata.get("description"), code.path, fake.tick(),
                          pending_error=dict(cfg.fail_with) if cfg.fail_with else None)
        if cfg.fail_with and cfg.echo_token and version.pending_error:
            version.pending_error["message"] = self._echo(version.pending_error["message"])
        if cfg.polls_until_active <= 0:
            version.status = "failed" if version.pending_error else "active"
            version.error = version.pending_error
        agent.versions[version.version] = version
        return version

    def _version_body(self, version: Version) -> dict[str, Any]:
        body = version.as_json(self.cfg)
        if self.cfg.omit_version:
            body.pop("version", None)
        return body

    def _create(self, headers: dict[str, str], record: Recorded, api_version: str | None
                ) -> dict[str, Any]:
        if api_version == V1 and self.cfg.v1_agent_multipart_removed:
            raise _Reply(404, "not_found", "no route for POST /agents (multipart) in v1")
        name = headers.get("x-ms-agent-name", "")
        if not name:
            raise _Reply(400, "bad_request", "x-ms-agent-name header is required on create")
        if not re.fullmatch(NAME, name):
            raise _Reply(400, "invalid_agent_name", f"agent name {name!r} is not valid")
        fake = self.server.fake
        with fake.lock:
            if name in fake.agents:
                raise _Reply(409, "conflict", f"Agent '{name}' already exists")
        metadata, code, sha = self._upload(name, headers, record)
        with fake.lock:
            if name in fake.agents:
                raise _Reply(409, "conflict", f"Agent '{name}' already exists")
            agent = fake.agents[name] = Agent(name, fake.tick())
            self._mint(agent, metadata, code, sha)
            body = agent.envelope(self.cfg)
            if self.cfg.omit_version:
                body["versions"]["latest"].pop("version", None)
            return body

    def _update(self, name: str, headers: dict[str, str], record: Recorded,
                api_version: str | None) -> dict[str, Any]:
        if api_version == V1 and self.cfg.v1_agent_multipart_removed:
            raise _Reply(404, "not_found", "no route for POST /agents/{name} (multipart) in v1")
        fake = self.server.fake
        with fake.lock:
            agent = self._agent(name)
        metadata, code, sha = self._upload(name, headers, record)
        with fake.lock:
            self._mint(agent, metadata, code, sha)
            body = agent.envelope(self.cfg)
            if self.cfg.omit_version:
                body["versions"]["latest"].pop("version", None)
            return body

    def _new_version(self, name: str, headers: dict[str, str], record: Recorded
                     ) -> dict[str, Any]:
        fake = self.server.fake
        if not re.fullmatch(NAME, name):
            raise _Reply(400, "invalid_agent_name", f"agent name {name!r} is not valid")
        with fake.lock:
            if name not in fake.agents and not self.cfg.versions_creates_agent:
                raise _Reply(404, "not_found", f"Agent '{name}' not found")
        metadata, code, sha = self._upload(name, headers, record)
        with fake.lock:
            agent = fake.agents.get(name)
            if agent is None:
                agent = fake.agents[name] = Agent(name, fake.tick())
            return self._version_body(self._mint(agent, metadata, code, sha))

    # -- reads and deletes -------------------------------------------------------------------

    def _get_agent(self, name: str) -> dict[str, Any]:
        fake = self.server.fake
        with fake.lock:
            if self.cfg.hide_agent_once:
                self.cfg.hide_agent_once = False
                raise _Reply(404, "not_found", f"Agent '{name}' not found")
            return self._agent(name).envelope(self.cfg)

    def _poll(self, name: str, number: str) -> dict[str, Any]:
        fake = self.server.fake
        with fake.lock:
            agent = self._agent(name)
            if number in agent.tombstones:
                agent.tombstones[number] += 1
                status = "deleting" if agent.tombstones[number] == 1 else "deleted"
                return {"object": "agent.version", "id": f"{name}:{number}", "name": name,
                        "version": number, "status": status, "definition": {},
                        "created_at": 0, "metadata": None}
            version = agent.versions.get(number)
            if version is None:
                raise _Reply(404, "not_found", f"Agent '{name}' has no version {number}")
            version.polls += 1
            if version.status == "creating" and self.cfg.flicker and not version.flickered:
                version.flickered = True
                body = version.as_json(self.cfg)
                body["status"] = "failed"  # a transient reading the next poll contradicts
                return body
            if version.status == "creating" and version.polls >= self.cfg.polls_until_active:
                version.status = "failed" if version.pending_error else "active"
                version.error = version.pending_error
            return version.as_json(self.cfg)

    def _download(self, name: str, number: str | None, record: Recorded) -> None:
        fake = self.server.fake
        with fake.lock:
            agent = self._agent(name)
            version = agent.versions.get(number) if number else agent.latest
            if version is None or version.code is None:
                raise _Reply(404, "not_found", f"Agent '{name}' has no version {number}")
        size = version.code.stat().st_size
        record.status = 200
        headers = {"Content-Type": "application/zip", "Content-Length": str(size),
                   "Content-Disposition": f'attachment; filename="{name}.zip"',
                   "x-ms-agent-version": version.version}
        if "header" in self.cfg.digest_in:
            headers["x-ms-code-zip-sha256"] = "0" * 64 if self.cfg.wrong_download_sha \
                else version.sha256
        self._send_head(200, headers)
        with open(version.code, "rb") as stream:
            while chunk := stream.read(CHUNK):
                self.wfile.write(chunk)

    def _logstream(self, name: str, number: str | None, session: str, query: dict[str, str],
                   record: Recorded) -> None:
        fake = self.server.fake
        with fake.lock:
            agent = self._agent(name)
            if number is not None and number not in agent.versions:
                raise _Reply(404, "not_found", f"Agent '{name}' has no version {number}")
            fake.logstreams += 1
            count = fake.logstreams
        if self.cfg.on_logstream:
            self.cfg.on_logstream(count)
        kind = query.get("kind", "console")
        if kind not in ("console", "system"):
            raise _Reply(400, "invalid_parameter", "kind must be console or system")
        follow = query.get("follow", "false")
        if follow not in ("true", "false"):
            raise _Reply(400, "invalid_parameter", "follow must be true or false")
        with fake.lock:
            events = [e for e in self.cfg.log_events if e.get("kind", "console") == kind]
        if "tail" in query:
            try:
                tail = int(query["tail"])
            except ValueError:
                raise _Reply(400, "invalid_parameter", "tail must be an integer") from None
            if not 1 <= tail <= 300:
                raise _Reply(400, "invalid_parameter", "tail must be between 1 and 300")
            events = events[-tail:]
        record.status = 200
        self._send_head(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                              "Connection": "close"})
        meta = {"agent_session_id": session, "agent_version": number or "latest"}
        self.wfile.write(f"event: session\ndata: {json.dumps(meta)}\n\n".encode())
        for event in events:
            data = {"timestamp": event.get("timestamp", "2026-03-10T09:33:17.121Z"),
                    "stream": event.get("stream", "stdout"),
                    "message": self._echo(event["message"])}
            self.wfile.write(f"event: log\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()
        if follow == "true" or self.cfg.hold_without_follow:
            deadline = time.monotonic() + self.cfg.log_hold
            while time.monotonic() < deadline and not fake.stopping.is_set():
                readable, _, _ = select.select([self.connection], [], [], 0.05)
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    with fake.lock:
                        fake.logstream_closed_by_client += 1
                    break
        self.close_connection = True

    def _delete(self, name: str, number: str | None, force: bool) -> dict[str, Any]:
        fake = self.server.fake
        with fake.lock:
            agent = self._agent(name)
            active = [s for s in agent.sessions.values() if s.status == "active"
                      and (number is None or s.version == number)]
            if active and not force:
                whose = f"Agent version {number}" if number else "Agent"
                raise _Reply(409, "conflict", f"{whose} has active sessions")
            for session in active:
                del agent.sessions[session.id]
            if number is not None:
                if agent.versions.pop(number, None) is None:
                    raise _Reply(404, "not_found", f"Agent '{name}' has no version {number}")
                agent.tombstones[number] = 0
                return {"object": "agent.version.deleted", "name": name, "version": number,
                        "deleted": True}
            del fake.agents[name]
            return {"object": "agent.deleted", "name": name, "deleted": True}

    # -- the agent endpoint ------------------------------------------------------------------

    def _sandbox_path(self, query: dict[str, str], required: bool = True) -> str:
        raw = query.get("path")
        if raw is None:
            if required:
                raise _Reply(400, "invalid_parameter", "path is required")
            return ""
        parts = [p for p in raw.split("/") if p not in ("", ".")]
        if raw.startswith("/") or ".." in parts:
            raise _Reply(400, "invalid_parameter", f"path {raw!r} leaves the session home")
        return "/".join(parts)

    def _files(self, method: str, name: str, sid: str, content: bool, query: dict[str, str],
               headers: dict[str, str], record: Recorded) -> bool:
        """Session file operations; True when the answer was sent here, False for a 204."""
        fake = self.server.fake
        with fake.lock:
            session = self._agent(name).sessions.get(sid)
            if session is None:
                raise _Reply(404, "not_found", f"Session '{sid}' not found")
        if content and method == "PUT":
            target = self._sandbox_path(query)
            if headers.get("content-type", "").split(";")[0].strip() != \
                    "application/octet-stream":
                raise _Reply(415, "unsupported_media_type",
                             "the body must be application/octet-stream")
            if self._body_left > 50 * 1024 * 1024:
                raise _Reply(413, "payload_too_large", "files are at most 50 MB")
            data = self._read(self._body_left)
            with fake.lock:
                if any(p.startswith(target + "/") for p in session.files):
                    raise _Reply(409, "conflict", f"{target} is a directory")
                session.files[target] = (data, fake.tick())
            record.status = 201
            self._json(201, {"path": target, "bytes_written": len(data)})
            return True
        if content and method == "GET":
            target = self._sandbox_path(query)
            with fake.lock:
                found = session.files.get(target)
            if found is None:
                raise _Reply(404, "not_found", f"{target} not found")
            record.status = 200
            self._send_head(200, {"Content-Type": "application/octet-stream",
                                  "Content-Length": str(len(found[0]))})
            self.wfile.write(found[0])
            return True
        if not content and method == "GET":
            folder = self._sandbox_path(query, required=False)
            prefix = folder + "/" if folder else ""
            with fake.lock:
                if folder and folder in session.files:
                    raise _Reply(400, "invalid_parameter", f"{folder} is a file")
                children: dict[str, dict[str, Any]] = {}
                for file, (data, mtime) in session.files.items():
                    if not file.startswith(prefix):
                        continue
                    head, _, rest = file[len(prefix):].partition("/")
                    entry = children.setdefault(head, {"name": head, "size": 0,
                                                       "is_directory": bool(rest),
                                                       "modified_time": mtime})
                    if not rest:
                        entry["size"] = len(data)
                    entry["modified_time"] = max(entry["modified_time"], mtime)
            if folder and not children:
                raise _Reply(404, "not_found", f"{folder} not found")
            ordered = sorted(children.values(), key=lambda e: str(e["name"]))
            page = self._page(ordered, {"order": "asc", **query}, "name",
                              list(range(len(ordered))))
            record.status = 200
            self._json(200, {"path": folder or ".", "entries": page["data"],
                             "first_id": page["first_id"], "last_id": page["last_id"],
                             "has_more": page["has_more"]})
            return True
        if not content and method == "DELETE":
            target = self._sandbox_path(query)
            recursive = query.get("recursive", "false") == "true"
            with fake.lock:
                inside = [p for p in session.files if p.startswith(target + "/")]
                if target in session.files:
                    del session.files[target]
                elif not inside:
                    raise _Reply(404, "not_found", f"{target} not found")
                elif not recursive:
                    raise _Reply(409, "conflict", f"{target} is a directory that is not empty")
                for file in inside:
                    del session.files[file]
            return False
        raise _Reply(405, "method_not_allowed", f"{method} is not allowed here")

    def _create_session(self, name: str, headers: dict[str, str], record: Recorded
                        ) -> dict[str, Any]:
        """``createSession``: the body is checked as ``CreateAgentSessionRequest`` says."""
        fake = self.server.fake
        data = self._read(self._body_left)
        record.body = data
        if headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise _Reply(415, "unsupported_media_type", "the body must be application/json")
        try:
            request = json.loads(data)
        except ValueError:
            raise _Reply(400, "invalid_request", "the body is not JSON") from None
        if not isinstance(request, dict):
            raise _Reply(400, "invalid_request", "the body must be a JSON object")
        indicator = request.get("version_indicator")
        if not isinstance(indicator, dict):
            raise _Reply(400, "invalid_parameter", "version_indicator is required")
        if indicator.get("type") != "version_ref":
            raise _Reply(400, "invalid_parameter",
                         f"version_indicator.type {indicator.get('type')!r} is not version_ref")
        number = indicator.get("agent_version")
        if not isinstance(number, str) or not number:
            raise _Reply(400, "invalid_parameter",
                         "version_indicator.agent_version is required for version_ref")
        sid = request.get("agent_session_id")
        if sid is not None and (not isinstance(sid, str) or not sid):
            raise _Reply(400, "invalid_parameter", "agent_session_id must be a string")
        with fake.lock:
            agent = self._agent(name)
            if number not in agent.versions:
                raise _Reply(400, "invalid_parameter",
                             f"Agent '{name}' has no version {number}")
            if sid is not None and sid in agent.sessions:
                raise _Reply(409, "conflict", f"Session '{sid}' already exists")
            sid = sid or f"sess-{uuid.uuid4().hex[:12]}"
            session = agent.sessions[sid] = Session(sid, name, number, fake.tick(), "creating")
            body = session.as_json()
            session.status = "active"  # ready by the time anyone reads it back
            return body

    def _session(self, method: str, name: str, sid: str, stop: bool) -> dict[str, Any] | None:
        fake = self.server.fake
        with fake.lock:
            agent = self._agent(name)
            session = agent.sessions.get(sid)
            if method == "DELETE" and not stop:
                agent.sessions.pop(sid, None)  # 204 "when the session is deleted or does not exist"
                return None
            if session is None:
                raise _Reply(404, "not_found", f"Session '{sid}' not found")
            if method == "POST" and stop:
                session.status = "idle"
                return None
            if method == "GET" and not stop:
                return session.as_json()
        raise _Reply(405, "method_not_allowed", f"{method} is not allowed here")

    def _invoke(self, name: str, protocol: str, query: dict[str, str], headers: dict[str, str],
                record: Recorded) -> None:
        fake = self.server.fake
        data = self._read(self._body_left)
        record.body = data
        with fake.lock:
            agent = self._agent(name)
        try:
            payload = json.loads(data or b"null")
        except ValueError:
            payload = data.decode("utf-8", "replace")
        responses = protocol == "openai/responses"
        sid = (payload.get("agent_session_id") if responses and isinstance(payload, dict)
               else query.get("agent_session_id"))
        with fake.lock:
            session = agent.sessions.get(str(sid)) if sid else None
            if self.cfg.provisioning_invokes > 0:
                self.cfg.provisioning_invokes -= 1
                raise _Reply(400, "bad_request", "Agent version is still being provisioned")
            if session is None:
                version = agent.active
                if version is None:
                    raise _Reply(400, "bad_request", "Agent version is still being provisioned")
                sid = str(sid) if sid else f"sess-{uuid.uuid4().hex[:12]}"
                session = agent.sessions[sid] = Session(sid, name, version.version, fake.tick())
            session.status = "active"
        meta = {"x-agent-session-id": session.id, "x-agent-invocation-id": uuid.uuid4().hex,
                "x-ms-region": REGION}
        if self.cfg.invoke_delay:
            fake.stopping.wait(self.cfg.invoke_delay)
        if self.cfg.invoke_failure:
            status, code, details = self.cfg.invoke_failure
            raise _Reply(status, code, "The session is not ready",
                         {**meta, "x-adc-response-details": details})
        text = f"v{session.version} says: " + (
            str(payload.get("input")) if isinstance(payload, dict) else str(payload))
        text = self._echo(text)
        record.status = 200
        if responses:
            self._responses(payload, text, meta)
        elif self.cfg.invoke_202:
            self._json(202, {"invocation_id": meta["x-agent-invocation-id"],
                             "status": "in_progress"}, meta)
        elif headers.get("accept") == "text/event-stream":
            self._sse(meta, [("message", json.dumps({"delta": w})) for w in text.split()])
        else:
            self._json(200, {"output": text, "version": session.version}, meta)

    def _responses(self, payload: Any, text: str, meta: dict[str, str]) -> None:
        response: dict[str, Any] = {"id": f"caresp_{uuid.uuid4().hex[:16]}", "object": "response",
                    "status": "completed",
                    "output": [{"type": "message", "role": "assistant",
                                "content": [{"type": "output_text", "text": text}]}]}
        if self.cfg.agent_error:
            response["status"] = "failed"
            response["error"] = {"code": "server_error", "message": "the agent raised"}
        if isinstance(payload, dict) and payload.get("stream"):
            words = text.split(" ")
            events = [("response.created", json.dumps({"response": {"status": "in_progress"}}))]
            events += [("response.output_text.delta",
                        json.dumps({"delta": w + (" " if i < len(words) - 1 else "")}))
                       for i, w in enumerate(words)]
            events.append(("response.completed", json.dumps({"response": response})))
            self._sse(meta, events)
        else:
            self._json(200, response, meta)

    def _sse(self, headers: dict[str, str], events: list[tuple[str, str]]) -> None:
        self._send_head(200, {"Content-Type": "text/event-stream", "Connection": "close",
                              **headers})
        for index, (event, data) in enumerate(events):
            if index == 2 and self.cfg.stream_stall:  # the agent goes quiet mid-answer
                self.server.fake.stopping.wait(self.cfg.stream_stall)
            self.wfile.write(f"event: {event}\ndata: {data}\n\n".encode())
            self.wfile.flush()
        self.close_connection = True

    # -- multipart and raw body reading -------------------------------------------------------

    def _read(self, size: int) -> bytes:
        size = min(size, self._body_left)
        if size <= 0:
            return b""
        data = self.rfile.read(size)
        self._body_left -= len(data)
        self._read_total = getattr(self, "_read_total", 0) + len(data)
        limit = self.cfg.drop_upload_after
        if limit is not None and self._read_total >= limit:
            self.connection.shutdown(socket.SHUT_RDWR)
            raise _Dropped()
        return data

    def _drain(self) -> None:
        while self._body_left > 0 and self._read(CHUNK):
            pass


    # -- uploads ----------------------------------------------------------------------------

    def _multipart(self, headers: dict[str, str], record: Recorded) -> list[Part]:
        """Parse the body part by part, streaming each part to a file (or just hashing it)."""
        match = re.match(r"multipart/form-data;\s*boundary=\"?([^\";]+)\"?",
                         headers.get("content-type", ""))
        if not match:
            raise _Reply(400, "bad_request", "Content-Type must be multipart/form-data")
        if "content-length" not in headers:
            raise _Reply(411, "length_required", "Content-Length is required")
        boundary = match.group(1).encode()
        delimiter = b"\r\n--" + boundary
        buffer = b"\r\n"  # so the first boundary looks like every other one
        parts: list[Part] = []
        while True:  # find the next delimiter, then what follows it
            while delimiter not in buffer:
                more = self._read(CHUNK)
                if not more:
                    raise _Reply(400, "bad_request", "multipart body ends early")
                buffer += more
            buffer = buffer[buffer.index(delimiter) + len(delimiter):]
            while len(buffer) < 2:
                buffer += self._read(CHUNK) or b"--"
            if buffer.startswith(b"--"):
                self._drain()
                break
            while b"\r\n\r\n" not in buffer:
                more = self._read(CHUNK)
                if not more:
                    raise _Reply(400, "bad_request", "part headers end early")
                buffer += more
            head, buffer = buffer[2:].split(b"\r\n\r\n", 1)
            part_headers = {}
            for line in head.decode("utf-8").split("\r\n"):
                name, _, value = line.partition(":")
                part_headers[name.strip().lower()] = value.strip()
            disposition = part_headers.get("content-disposition", "")
            name_match = re.search(r'\bname="([^"]*)"', disposition)
            file_match = re.search(r'\bfilename="([^"]*)"', disposition)
            digest = hashlib.sha256()
            size = 0
            keep = self.cfg.store_code or (
                name_match is not None and name_match.group(1) != "code")
            path = self.server.fake.new_code_path() if keep else None
            sink: BinaryIO | None = open(path, "wb") if path else None  # noqa: SIM115
            try:
                while True:
                    index = buffer.find(delimiter)
                    if index >= 0:
                        chunk, buffer = buffer[:index], buffer[index:]
                    else:  # keep a possible partial delimiter for the next round
                        cut = max(0, len(buffer) - len(delimiter))
                        chunk, buffer = buffer[:cut], buffer[cut:]
                    digest.update(chunk)
                    size += len(chunk)
                    if sink:
                        sink.write(chunk)
                    if index >= 0:
                        break
                    more = self._read(CHUNK)
                    if not more:
                        raise _Reply(400, "bad_request", "part body ends early")
                    buffer += more
            finally:
                if sink:
                    sink.close()
            parts.append(Part(name_match.group(1) if name_match else "",
                              part_headers.get("content-type", ""),
                              file_match.group(1) if file_match else None, size,
                              digest.hexdigest(), path))
        record.parts = parts
        return parts

