"""A loopback stand-in for Foundry Agent Service that implements the article's REST contract.

Stdlib only (``http.server``), bound to 127.0.0.1 on an ephemeral port, served from a thread.
It checks what the article says the service checks — the multipart parts and their types, the
required headers, the sha256 header against the bytes of the ``code`` part, the token — and keeps
agents and content-addressed versions in memory, so the real ``httpx`` client can be tested end to
end. :class:`Config` switches on the faults the client must survive: 429 with ``Retry-After``,
5xx, a connection dropped mid-upload, a slow answer, a failing provisioning, a wrong download sha.

Multipart bodies are parsed incrementally (never held whole), so a 200 MB upload costs the test
process no memory.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

PREFIX = "/api/projects/test-project"
TOKEN = "fake-token-s3cr3t-0123456789abcdef"
PREVIEW = "2025-11-15-preview"
API_VERSIONS = (PREVIEW, "v1")
FEATURES = ("CodeAgents=V1Preview", "HostedAgents=V1Preview")
CHUNK = 1 << 16


@dataclass
class Config:
    """What the fake does; tests change it before or between requests."""

    token: str = TOKEN
    polls_until_active: int = 1  # GETs of a version before it leaves `creating` (0: at once)
    fail_with: dict[str, str] | None = None  # error object for versions minted from now on
    throttle: int = 0  # answer the next N requests with 429
    retry_after: str | None = "0"
    server_errors: int = 0  # answer the next N requests with 503
    drop_upload_after: int | None = None  # close the connection after reading this many bytes
    slow: float = 0.0  # seconds to wait before answering any request
    echo_authorization: bool = False  # put the received Authorization header in 401 bodies
    wrong_download_sha: bool = False
    store_code: bool = True  # keep uploaded zips (for code:download); off for huge uploads
    log_events: list[tuple[str, str]] = field(default_factory=list)  # (kind, data)
    log_hold: float = 0.0  # keep a logstream open this long after its backlog
    active_sessions: set[str] = field(default_factory=set)  # agents whose delete needs force


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
    path: str  # without the project prefix
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    parts: list[Part] = field(default_factory=list)
    status: int = 0


@dataclass
class Version:
    agent: str
    version: str
    sha256: str
    definition: dict[str, Any]
    description: str | None
    code: Path | None
    polls: int = 0
    status: str = "creating"
    error: dict[str, str] | None = None
    pending_error: dict[str, str] | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "object": "agent.version", "id": f"{self.agent}:{self.version}",
            "name": self.agent, "version": self.version, "description": self.description,
            "created_at": 1700000000, "definition": self.definition, "status": self.status,
        }
        if self.error:
            body["error"] = self.error
        return body


@dataclass
class Agent:
    name: str
    versions: dict[str, Version] = field(default_factory=dict)
    minted: int = 0

    @property
    def latest(self) -> Version | None:
        return list(self.versions.values())[-1] if self.versions else None

    def envelope(self) -> dict[str, Any]:
        latest = self.latest
        return {"object": "agent", "id": self.name, "name": self.name,
                "versions": {"latest": latest.as_json() if latest else None}}


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

    # -- plumbing ---------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        cfg = fake.config
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = Recorded(method, url.path.removeprefix(PREFIX), query, headers)
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
            self._json(reply.status, {"error": {"code": reply.code, "message": reply.message}},
                       reply.headers)
        except _Dropped:
            self.close_connection = True

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               record: Recorded) -> None:
        fake = self.server.fake
        cfg = fake.config
        if not path.startswith(PREFIX + "/"):
            raise _Reply(404, "not_found", f"no project at {path}")
        if query.get("api-version") not in API_VERSIONS:
            raise _Reply(400, "invalid_api_version",
                         f"api-version {query.get('api-version')!r} is not supported")
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
            echo = f" (received {authorization!r})" if cfg.echo_authorization else ""
            raise _Reply(401, "PermissionDenied", f"Access denied due to invalid token{echo}")
        if method in ("POST", "DELETE") and query["api-version"] == PREVIEW:
            features = headers.get("foundry-features", "")
            if not all(f in features for f in FEATURES):
                raise _Reply(400, "preview_feature_required",
                             "Foundry-Features: CodeAgents=V1Preview,HostedAgents=V1Preview is "
                             "required for this api-version")
        route = path[len(PREFIX):]
        status = 200
        body: dict[str, Any]
        if method == "POST" and route == "/agents":
            body = self._create(headers, record)
        elif method == "POST" and (m := re.fullmatch(r"/agents/([^/:]+)(/versions)?", route)):
            version, _ = self._update(m.group(1), headers, record)
            agent = fake.agents[m.group(1)]
            body = version.as_json() if m.group(2) else agent.envelope()
        elif method == "GET" and (m := re.fullmatch(r"/agents/([^/:]+)", route)):
            body = self._agent(m.group(1)).envelope()
        elif method == "GET" and (m := re.fullmatch(r"/agents/([^/:]+)/versions/([^/]+)", route)):
            body = self._poll(m.group(1), m.group(2))
        elif method == "GET" and (m := re.fullmatch(r"/agents/([^/:]+)/code:download", route)):
            self._download(m.group(1), query.get("agent_version"), record)
            return
        elif method == "GET" and (
                m := re.fullmatch(r"/agents/([^/:]+)/sessions/([^/:]+):logstream", route)):
            self._logstream(m.group(1), query, record)
            return
        elif method == "DELETE" and (
                m := re.fullmatch(r"/agents/([^/:]+)(?:/versions/([^/]+))?", route)):
            body = self._delete(m.group(1), m.group(2), query.get("force") == "true")
        else:
            raise _Reply(404, "not_found", f"no route for {method} {route}")
        record.status = status
        self._json(status, body)

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
              ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", uuid.uuid4().hex)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _read(self, size: int) -> bytes:
        size = min(size, self._body_left)
        if size <= 0:
            return b""
        data = self.rfile.read(size)
        self._body_left -= len(data)
        self._read_total = getattr(self, "_read_total", 0) + len(data)
        limit = self.server.fake.config.drop_upload_after
        if limit is not None and self._read_total >= limit:
            self.connection.shutdown(socket.SHUT_RDWR)
            raise _Dropped()
        return data

    def _drain(self) -> None:
        while self._body_left > 0 and self._read(CHUNK):
            pass

    def _agent(self, name: str) -> Agent:
        agent = self.server.fake.agents.get(name)
        if agent is None:
            raise _Reply(404, "not_found", f"Agent '{name}' not found")
        return agent

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
            keep = self.server.fake.config.store_code or (
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
        return definition, code, sha

    def _mint(self, agent: Agent, metadata: dict[str, Any], code: Part, sha: str
              ) -> tuple[Version, bool]:
        """Content-addressed: the same zip and definition as the latest give the latest back."""
        cfg = self.server.fake.config
        latest = agent.latest
        if latest and latest.sha256 == sha and latest.definition == metadata["definition"]:
            return latest, False
        agent.minted += 1
        version = Version(agent.name, str(agent.minted), sha, metadata["definition"],
                          metadata.get("description"), code.path,
                          pending_error=dict(cfg.fail_with) if cfg.fail_with else None)
        if cfg.polls_until_active <= 0:
            version.status = "failed" if version.pending_error else "active"
            version.error = version.pending_error
        agent.versions[version.version] = version
        return version, True

    def _create(self, headers: dict[str, str], record: Recorded) -> dict[str, Any]:
        name = headers.get("x-ms-agent-name", "")
        if not name:
            raise _Reply(400, "bad_request", "x-ms-agent-name header is required on create")
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", name):
            raise _Reply(400, "invalid_agent_name", f"agent name {name!r} is not valid")
        fake = self.server.fake
        with fake.lock:
            if name in fake.agents:
                raise _Reply(409, "conflict", f"Agent '{name}' already exists")
        metadata, code, sha = self._upload(name, headers, record)
        with fake.lock:
            if name in fake.agents:
                raise _Reply(409, "conflict", f"Agent '{name}' already exists")
            agent = fake.agents[name] = Agent(name)
            self._mint(agent, metadata, code, sha)
            return agent.envelope()

    def _update(self, name: str, headers: dict[str, str], record: Recorded
                ) -> tuple[Version, bool]:
        fake = self.server.fake
        with fake.lock:
            agent = self._agent(name)
        metadata, code, sha = self._upload(name, headers, record)
        with fake.lock:
            return self._mint(agent, metadata, code, sha)

    # -- reads and deletes -------------------------------------------------------------------

    def _poll(self, name: str, number: str) -> dict[str, Any]:
        fake = self.server.fake
        with fake.lock:
            version = self._agent(name).versions.get(number)
            if version is None:
                raise _Reply(404, "not_found", f"Agent '{name}' has no version {number}")
            version.polls += 1
            if version.status == "creating" and version.polls >= fake.config.polls_until_active:
                version.status = "failed" if version.pending_error else "active"
                version.error = version.pending_error
            return version.as_json()

    def _download(self, name: str, number: str | None, record: Recorded) -> None:
        fake = self.server.fake
        with fake.lock:
            agent = self._agent(name)
            version = agent.versions.get(number) if number else agent.latest
            if version is None or version.code is None:
                raise _Reply(404, "not_found", f"Agent '{name}' has no version {number}")
        sha = "0" * 64 if fake.config.wrong_download_sha else version.sha256
        size = version.code.stat().st_size
        record.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(size))
        self.send_header("Content-Disposition", f'attachment; filename="{name}.zip"')
        self.send_header("x-ms-agent-version", version.version)
        self.send_header("x-ms-code-zip-sha256", sha)
        self.send_header("x-request-id", uuid.uuid4().hex)
        self.end_headers()
        with open(version.code, "rb") as stream:
            while chunk := stream.read(CHUNK):
                self.wfile.write(chunk)

    def _logstream(self, name: str, query: dict[str, str], record: Recorded) -> None:
        fake = self.server.fake
        with fake.lock:
            self._agent(name)
        kind = query.get("kind", "console")
        events = [data for k, data in fake.config.log_events if k == kind]
        if "tail" in query:
            events = events[-int(query["tail"]):] if int(query["tail"]) else []
        record.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        for data in events:
            lines = "".join(f"data: {line}\n" for line in data.split("\n"))
            self.wfile.write(f"{lines}\n".encode())
            self.wfile.flush()
        deadline = time.monotonic() + fake.config.log_hold
        while time.monotonic() < deadline and not fake.stopping.is_set():
            fake.stopping.wait(0.05)
        self.close_connection = True

    def _delete(self, name: str, number: str | None, force: bool) -> dict[str, Any]:
        fake = self.server.fake
        with fake.lock:
            agent = self._agent(name)
            if number is not None:
                if agent.versions.pop(number, None) is None:
                    raise _Reply(404, "not_found", f"Agent '{name}' has no version {number}")
                return {"object": "agent.version.deleted", "name": name, "version": number,
                        "deleted": True}
            if name in fake.config.active_sessions and not force:
                raise _Reply(409, "conflict", "Agent has active sessions")
            del fake.agents[name]
            fake.config.active_sessions.discard(name)
            return {"object": "agent.deleted", "name": name, "deleted": True}
