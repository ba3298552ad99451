"""A thin client of the service's REST contract, for the article's preview API and GA ``v1``.

Sources, in the order they were read: the article (*Deploy a hosted agent from source code*,
``api-version=2025-11-15-preview``), the REST spec (Azure/azure-rest-api-specs,
``specification/ai-foundry/data-plane/Foundry/src/agents/routes.tsp`` and ``models.tsp``,
``src/common/servicepatterns.tsp``, ``src/agents-sessions/routes.tsp``), the GA SDKs and azd's
``azure.ai.agents`` extension. Where they disagree and only a live service could settle it, both
are supported and docs/deploy.md says which is the default and why.

Every request goes through :class:`bundler.deploy.http.Transport` (headers, retries, one error
line, scrubbed replies); this module only knows routes and bodies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from bundler.deploy.auth import Credential
from bundler.deploy.http import (
    HttpOptions,
    Progress,
    Reply,
    ServiceError,
    Transport,
    check_endpoint,
    check_session,
    check_version,
    one_line,
    path,
    redacted_authorization,
    short_url,
)
from bundler.errors import UsageError
from bundler.model import CHUNK, MAX_BUNDLE_BYTES
from bundler.write import atomic_output

log = logging.getLogger(__name__)

PREVIEW_API_VERSION = "2025-11-15-preview"
GA_API_VERSION = "v1"
#: The agent endpoint (invoke, sessions) is addressed with ``api-version=v1`` even in the
#: article's preview examples; azd's ``AgentEndpointAPIVersion`` is the same.
ENDPOINT_API_VERSION = "v1"
FEATURES_HEADER = "Foundry-Features"
PREVIEW_FEATURES = "CodeAgents=V1Preview,HostedAgents=V1Preview"
UPLOAD_ROUTES = ("agent", "versions")
SHA256 = re.compile(r"[0-9a-f]{64}")
TAIL_RANGE = (1, 300)  # the spec: "Number of trailing lines returned. Enforced to 1-300."
#: ``uploadSessionFile``: "Maximum file size is 50 MB. Uploads exceeding this limit return 413".
MAX_SESSION_FILE_BYTES = 50 * 1024 * 1024

__all__ = ["ENDPOINT_API_VERSION", "GA_API_VERSION", "PREVIEW_API_VERSION", "FoundryClient",
           "HttpOptions", "ServiceError", "Upload", "version_of"]


def feature_headers(enabled: bool) -> dict[str, str]:
    """The preview opt-in header, decoupled from the api-version (sent unless turned off).

    During preview a request without it earned ``403 preview_feature_required`` even under
    ``v1`` (azd hit it and added it, azure-dev PR 8441/8508); the spec marks it required for
    ``code:download`` and the versioned logstream and conditional elsewhere.
    """
    return {FEATURES_HEADER: PREVIEW_FEATURES} if enabled else {}


def version_of(body: dict[str, Any] | None) -> dict[str, Any]:
    """The version object of an answer: ``versions.latest`` of an agent envelope, or the body."""
    if not body:
        return {}
    versions = body.get("versions")
    if isinstance(versions, dict) and isinstance(versions.get("latest"), dict):
        return dict(versions["latest"])
    return dict(body)


def content_hash(version: dict[str, Any]) -> str | None:
    """``definition.code_configuration.content_hash`` (the stored zip's sha256), if given."""
    definition = version.get("definition")
    code = definition.get("code_configuration") if isinstance(definition, dict) else None
    value = code.get("content_hash") if isinstance(code, dict) else None
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True)
class Part:
    """One multipart part as the dry run describes it."""

    name: str
    content_type: str
    size: int
    filename: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class PlannedRequest:
    """A request as it would be sent, with the token already redacted."""

    method: str
    url: str
    headers: dict[str, str]
    parts: list[Part] = field(default_factory=list)
    note: str = ""

    def lines(self) -> list[str]:
        out = [f"{self.method} {self.url}" + (f"    ({self.note})" if self.note else "")]
        out += [f"  {name}: {value}" for name, value in self.headers.items()]
        for part in self.parts:
            extra = f"; filename={part.filename}" if part.filename else ""
            digest = f"; sha256 {part.sha256}" if part.sha256 else ""
            out.append(f"  part {part.name} ({part.content_type}{extra}): {part.size} bytes"
                       f"{digest}")
        return out

    def as_json(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "headers": self.headers,
                "parts": [part.__dict__ for part in self.parts], "note": self.note}


@dataclass(frozen=True)
class Upload:
    """What ``deploy`` sends: the definition and the zip, streamed from disk."""

    agent: str
    metadata: dict[str, Any]
    zip_path: Path
    sha256: str

    @property
    def metadata_bytes(self) -> bytes:
        return json.dumps(self.metadata, indent=2, sort_keys=True).encode("utf-8")

    @property
    def size(self) -> int:
        return self.zip_path.stat().st_size


@dataclass(frozen=True)
class DeployOutcome:
    agent: str
    version: str
    status: str
    created: bool  # the agent did not exist before
    unchanged: bool  # the service returned the version it already had
    body: dict[str, Any]  # the version object
    route: str  # which upload route was used


@dataclass(frozen=True)
class Downloaded:
    version: str
    sha256: str
    verified_by: str | None  # the header or field the digest was checked against; None: neither


@dataclass(frozen=True)
class LogEvent:
    """One ``event: log`` frame; ``data`` is "currently JSON, not contractual" (the spec)."""

    message: str
    timestamp: str | None = None
    stream: str | None = None

    @classmethod
    def parse(cls, data: str) -> LogEvent:
        try:
            payload = json.loads(data)
        except ValueError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("message"), str):
            stamp, stream = payload.get("timestamp"), payload.get("stream")
            return cls(payload["message"], stamp if isinstance(stamp, str) else None,
                       stream if isinstance(stream, str) else None)
        return cls(data)

    def line(self) -> str:
        """``[timestamp] stream: message`` on one line (newlines inside shown as ``\\n``)."""
        text = self.message.replace("\r", "").replace("\n", "\\n")
        prefix = f"[{self.timestamp}] " if self.timestamp else ""
        stream = f"{self.stream}: " if self.stream else ""
        return f"{prefix}{stream}{text}"

    @property
    def key(self) -> tuple[str | None, str | None, str]:
        return self.timestamp, self.stream, self.message


class FoundryClient(Transport):
    """The service's agent endpoints under one project ``endpoint``."""

    def __init__(self, endpoint: str, credential: Callable[[], Credential], *,
                 api_version: str = PREVIEW_API_VERSION, preview_header: bool = True,
                 upload_route: str | None = None, options: HttpOptions | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        if upload_route is not None and upload_route not in UPLOAD_ROUTES:
            raise UsageError(f"upload route {upload_route!r} is not one of "
                             f"{', '.join(UPLOAD_ROUTES)}", "pass --upload-route agent|versions")
        extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        super().__init__(check_endpoint(endpoint), credential, api_version=api_version,
                         options=options, default_headers=feature_headers(preview_header),
                         **extra)
        self.preview_header = preview_header
        self._upload_route = upload_route

    @property
    def upload_route(self) -> str:
        """``versions`` (the GA SDKs' ``POST /agents/{name}/versions``) under v1, else ``agent``."""
        if self._upload_route:
            return self._upload_route
        return "versions" if self.api_version == GA_API_VERSION else "agent"

    # -- agents and versions -----------------------------------------------------------------

    def get_agent(self, agent: str) -> dict[str, Any] | None:
        """The agent envelope, or None when there is no such agent."""
        reply = self.send("GET", path("agents", agent), headers=self.headers(), ok=(200, 404))
        return None if reply.status == 404 else reply.json()

    def get_version(self, agent: str, version: str) -> dict[str, Any]:
        return self.send("GET", path("agents", agent, "versions", check_version(version)),
                         headers=self.headers()).json()

    def pages(self, route: str, *, limit: int | None = None, order: str | None = None,
              after: str | None = None, api_version: str | None = None,
              id_field: str = "id", items: str = "data",
              query: Mapping[str, str | None] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a paged list (``AgentsPagedResult``), following ``has_more``.

        The spec pages with ``limit/order/after`` and answers ``data/has_more/last_id``; azd's
        sessions list reads a ``pagination_token`` instead. Both are followed. ``limit`` caps the
        number of items yielded (and the page size, at most 100). ``items`` names the array
        (a session's directory listing calls it ``entries``); ``query`` adds parameters.
        """
        cursor, token, yielded = after, None, 0
        seen: set[tuple[str | None, str | None]] = set()
        while True:
            page = None if limit is None else str(max(1, min(100, limit - yielded)))
            reply = self.send("GET", route, headers=self.headers(), api_version=api_version,
                              query={**(query or {}), "limit": page, "order": order,
                                     "after": cursor, "pagination_token": token})
            body = reply.json()
            data = body.get(items)
            if not isinstance(data, list):
                raise ServiceError(f"GET {short_url(reply.url)}: the list has no {items} array",
                                   "check --endpoint and --api-version")
            last: str | None = None
            for item in data:
                if isinstance(item, dict):
                    yield item
                    yielded += 1
                    last = str(item.get(id_field) or item.get("id") or "") or last
                    if limit is not None and yielded >= limit:
                        return
            if body.get("has_more") is True:
                cursor, token = str(body.get("last_id") or last or ""), None
            elif isinstance(body.get("pagination_token"), str) and body["pagination_token"]:
                token = body["pagination_token"]
            else:
                return
            if (cursor, token) in seen or not (cursor or token):
                raise ServiceError(f"GET {short_url(reply.url)}: has_more is true but the next "
                                   "page's cursor does not move", "report it to the service")
            seen.add((cursor, token))

    def list_agents(self, **paging: Any) -> Iterator[dict[str, Any]]:
        return self.pages("/agents", **paging)

    def list_versions(self, agent: str, **paging: Any) -> Iterator[dict[str, Any]]:
        return self.pages(path("agents", agent, "versions"), id_field="version", **paging)

    # -- upload ----------------------------------------------------------------------------

    def _upload_request(self, upload: Upload, kind: str) -> tuple[str, dict[str, str]]:
        headers = self.headers(x_ms_code_zip_sha256=upload.sha256)
        if kind == "create":
            headers["x-ms-agent-name"] = upload.agent
            return "/agents", headers
        if kind == "update":
            return path("agents", upload.agent), headers
        return path("agents", upload.agent, "versions"), headers

    def plan_upload(self, upload: Upload) -> list[PlannedRequest]:
        """The upload requests, as ``--dry-run`` shows them; sends nothing."""
        parts = [Part("metadata", "application/json", len(upload.metadata_bytes)),
                 Part("code", "application/zip", upload.size, f"{upload.agent}.zip",
                      upload.sha256)]
        if self.upload_route == "versions":
            plan = [("versions", "create a version (and the agent when missing); a bare "
                                 "version comes back")]
        else:
            plan = [("create", "create; on 409 (exists) the same body goes to update"),
                    ("update", "update")]
        out = []
        for kind, note in plan:
            route, headers = self._upload_request(upload, kind)
            shown = {"Authorization": redacted_authorization(), **headers}
            out.append(PlannedRequest("POST", self.url(route), shown, parts, note))
        return out

    def upload(self, upload: Upload, kind: str, *, progress: Progress | None = None,
               ok: tuple[int, ...] = (200, 201, 202)) -> Reply:
        """POST the multipart body (``kind``: create, update or versions), streamed from disk."""
        route, headers = self._upload_request(upload, kind)

        def files() -> dict[str, tuple[str | None, Any, str]]:
            return {"metadata": (None, upload.metadata_bytes, "application/json"),
                    "code": (f"{upload.agent}.zip", open(upload.zip_path, "rb"),  # noqa: SIM115
                             "application/zip")}

        reply = self.send("POST", route, headers=headers, files_factory=files,
                          upload_name=upload.zip_path.name, progress=progress, ok=ok)
        reply.read()
        return reply

    def deploy(self, upload: Upload, progress: Progress | None = None) -> DeployOutcome:
        """Upload a new version; say whether the agent was created and whether anything changed.

        The agent is looked up first, to learn its latest version: the service deduplicates by
        content, so an answer with that same version changed nothing. Under ``agent`` routing
        an absent agent is created with ``POST /agents`` and a ``409`` (someone created it
        meanwhile) falls back to ``POST /agents/{name}``; under ``versions`` routing the GA
        SDKs' ``POST /agents/{name}/versions`` is used, and a ``404`` from it (a revision where
        it does not create the agent) falls back to ``POST /agents``.
        """
        if upload.size > MAX_BUNDLE_BYTES:
            raise UsageError(f"{upload.zip_path}: {upload.size} bytes is over the service's "
                             "250 MB limit", "use remote_build or trim the bundle")
        before = self.get_agent(upload.agent)
        created = False
        route = self.upload_route
        if route == "versions":
            reply = self.upload(upload, "versions", progress=progress, ok=(200, 201, 202, 404))
            if reply.status == 404 and before is None:
                log.info("POST /agents/%s/versions: 404; creating the agent", upload.agent)
                route = "agent"
            elif reply.status == 404:
                raise self.service_error(reply)
            else:
                created = before is None
        if route == "agent":
            if before is None:
                reply = self.upload(upload, "create", progress=progress, ok=(200, 201, 202, 409))
                if reply.status == 409:
                    log.info("agent %s appeared meanwhile; updating it", upload.agent)
                    before = self.get_agent(upload.agent)
                else:
                    created = True
            if not created:
                reply = self.upload(upload, "update", progress=progress)
        version = version_of(reply.json())
        number = version.get("version")
        if not isinstance(number, str | int) or str(number) == "":
            raise ServiceError(f"POST {short_url(reply.url)}: HTTP {reply.status} but the answer "
                               "names no version", "check --endpoint and --api-version; "
                               "`fbundle versions list` shows what the service holds")
        number = check_version(str(number), source=f"POST {short_url(reply.url)}")
        stored = content_hash(version)
        if stored and stored != upload.sha256:
            raise ServiceError(f"{upload.agent} version {number}: the service stored sha256 "
                               f"{stored} but the zip sent has {upload.sha256}",
                               "the upload was altered on the way; deploy again")
        previous = version_of(before).get("version") if before else None
        return DeployOutcome(upload.agent, number, str(version.get("status") or "creating"),
                             created, previous is not None and str(previous) == number, version,
                             route)

    # -- download ----------------------------------------------------------------------------

    def download(self, agent: str, version: str | None, dest: Path) -> Downloaded:
        """Stream ``code:download`` to ``dest`` atomically, verified when the service says how.

        The article echoes the stored digest in ``x-ms-code-zip-sha256``; the spec declares it
        as the served version's ``code_configuration.content_hash``. Whichever is given is
        checked; only a real mismatch is refused (nothing is written then).
        """
        if version is not None:
            check_version(version)
        reply = self.send("GET", path("agents", agent) + "/code:download",
                          query={"agent_version": version},
                          headers=self.headers(accept="application/zip"), stream=True)
        try:
            served = reply.header("x-ms-agent-version") or version
            if served is not None:
                served = check_version(served, source="the download's x-ms-agent-version")
            expected = (reply.header("x-ms-code-zip-sha256") or "").lower() or None
            verified_by = "x-ms-code-zip-sha256" if expected else None
            if expected and not SHA256.fullmatch(expected):
                raise ServiceError(f"download of {agent}: x-ms-code-zip-sha256 "
                                   f"{one_line(expected, 80)!r} is not a sha256",
                                   "nothing was written; report it to the service")
            digest = hashlib.sha256()
            with atomic_output(dest) as out:
                self._copy_body(reply, out, "the zip", digest)
                if expected is None and served is not None:
                    expected = content_hash(self.get_version(agent, served))
                    verified_by = "code_configuration.content_hash" if expected else None
                if expected is not None and digest.hexdigest() != expected:
                    raise ServiceError(
                        f"download of {agent} version {served or '?'}: body sha256 "
                        f"{digest.hexdigest()} does not match {verified_by} {expected}",
                        f"{dest} was not written; retry the download")
        finally:
            reply.close()
        return Downloaded(served or "?", digest.hexdigest(), verified_by)

    # -- logs --------------------------------------------------------------------------------

    def logstream(self, agent: str, session: str, *, version: str | None = None,
                  kind: str | None = None, tail: int | None = None, follow: bool = False,
                  idle: float | None = None, reconnects: int = 5) -> Iterator[LogEvent]:
        """The session's log events (``event: log`` frames; other event types are skipped).

        ``version`` selects the spec's ``/agents/{n}/versions/{v}/sessions/{s}:logstream``;
        without it the article's ``/agents/{n}/sessions/{s}:logstream`` is read. ``tail`` is
        clamped to the spec's 1–300. Without ``follow`` the stream ends when the server closes
        it or it has been quiet for ``idle`` seconds; with ``follow`` a stream the server
        closes is reopened (with ``tail``, skipping lines already shown) until ``reconnects``
        reopenings in a row bring nothing new.
        """
        check_session(session)
        if version is not None:
            check_version(version)
            route = path("agents", agent, "versions", version, "sessions", session)
        else:
            route = path("agents", agent, "sessions", session)
        route += ":logstream"
        if tail is not None:
            tail = max(TAIL_RANGE[0], min(TAIL_RANGE[1], tail))
        timeout = httpx.Timeout(idle if idle else None, connect=self.options.connect_timeout)
        recent: deque[tuple[str | None, str | None, str]] = deque(maxlen=TAIL_RANGE[1] * 2)
        quiet_reopenings = 0
        while True:
            new = 0
            reply = self.send(
                "GET", route,
                query={"kind": kind, "tail": str(tail) if tail is not None else None,
                       "follow": "true" if follow else "false"},
                headers=self.headers(accept="text/event-stream", Cache_Control="no-store"),
                stream=True, timeout=timeout)
            try:
                for event, data in reply.iter_sse():
                    if event not in ("log", "message"):
                        log.debug("logstream: skipping a %r event", event)
                        continue
                    if not data:
                        continue
                    item = LogEvent.parse(data)
                    if item.key in recent:
                        continue  # shown before the stream was reopened
                    recent.append(item.key)
                    new += 1
                    yield item
            except httpx.ReadTimeout:
                return  # quiet for `idle` seconds: the backlog is over
            except httpx.TransportError as error:
                if not follow:
                    raise self.transport_error("GET", reply.url, error) from None
                log.info("logstream: %s; reopening", type(error).__name__)
            finally:
                reply.close()
            if not follow:
                return
            quiet_reopenings = 0 if new else quiet_reopenings + 1
            if quiet_reopenings > reconnects:
                log.warning("the service ended the log stream %d times in a row without new "
                            "lines; stopping", quiet_reopenings)
                return
            self._sleep(self.options.delay(max(0, quiet_reopenings - 1)))
            tail = tail or 20

    # -- delete ------------------------------------------------------------------------------

    def delete(self, agent: str, version: str | None, *, force: bool) -> dict[str, Any]:
        route = path("agents", agent)
        if version is not None:
            route += path("versions", check_version(version))
        reply = self.send("DELETE", route, headers=self.headers(),
                          query={"force": "true" if force else None})
        return reply.json()

    # -- sessions (the agent endpoint: api-version v1) -------------------------------------

    def list_sessions(self, agent: str, **paging: Any) -> Iterator[dict[str, Any]]:
        return self.pages(path("agents", agent, "endpoint", "sessions"),
                          api_version=ENDPOINT_API_VERSION, id_field="agent_session_id",
                          **paging)

    def create_session(self, agent: str, version: str, session: str | None = None
                       ) -> dict[str, Any]:
        """A new session backed by ``version`` (the spec's ``createSession``).

        ``POST /agents/{name}/endpoint/sessions`` with the spec's ``CreateAgentSessionRequest``:
        ``version_indicator`` — a ``version_ref`` to ``agent_version`` — and, when given, the
        caller's own ``agent_session_id`` ("must be unique within the agent endpoint"). The
        answer is ``201`` and the ``AgentSessionResource``; one that names no usable session id
        is an error (it could not be stopped, deleted or invoked).
        """
        body: dict[str, Any] = {"version_indicator": {"type": "version_ref",
                                                      "agent_version": check_version(version)}}
        if session is not None:
            body["agent_session_id"] = check_session(session, source="--session-id")
        reply = self.send("POST", path("agents", agent, "endpoint", "sessions"),
                          headers=self.headers(Content_Type="application/json"),
                          content=json.dumps(body).encode("utf-8"),
                          api_version=ENDPOINT_API_VERSION, ok=(200, 201))
        resource = reply.json()
        created = resource.get("agent_session_id")
        if not isinstance(created, str) or not created:
            raise ServiceError(f"POST {short_url(reply.url)}: HTTP {reply.status} but the answer "
                               "names no agent_session_id", "`fbundle sessions list` shows what "
                               "the service holds")
        check_session(created, source=f"POST {short_url(reply.url)}")
        return resource

    def get_session(self, agent: str, session: str) -> dict[str, Any]:
        """``GET /agents/{name}/endpoint/sessions/{id}``: the ``AgentSessionResource``."""
        return self.send("GET", path("agents", agent, "endpoint", "sessions",
                                     check_session(session)),
                         headers=self.headers(), api_version=ENDPOINT_API_VERSION).json()

    def stop_session(self, agent: str, session: str) -> None:
        self.send("POST", path("agents", agent, "endpoint", "sessions",
                               check_session(session)) + ":stop",
                  headers=self.headers(), api_version=ENDPOINT_API_VERSION).read()

    def delete_session(self, agent: str, session: str) -> None:
        self.send("DELETE", path("agents", agent, "endpoint", "sessions", check_session(session)),
                  headers=self.headers(), api_version=ENDPOINT_API_VERSION).read()

    # -- session files (agents-session-files/routes.tsp, api-version v1) --------------------

    def _files_route(self, agent: str, session: str, *tail: str) -> str:
        return path("agents", agent, "endpoint", "sessions", check_session(session), "files",
                    *tail)

    def list_session_files(self, agent: str, session: str, remote: str | None = None,
                           **paging: Any) -> Iterator[dict[str, Any]]:
        """The entries of one folder of the session's sandbox (``listSessionFiles``: the
        immediate children, ``{name, size, is_directory, modified_time}``; the home folder
        when ``remote`` is None), following ``has_more``."""
        return self.pages(self._files_route(agent, session), api_version=ENDPOINT_API_VERSION,
                          items="entries", id_field="name", query={"path": remote}, **paging)

    def upload_session_file(self, agent: str, session: str, local: Path, remote: str
                            ) -> dict[str, Any]:
        """``PUT …/files/content?path=REMOTE`` with the file's bytes, streamed from disk
        (``uploadSessionFile``; 201 ``{path, bytes_written}``). Over 50 MB is refused first,
        as the service would (413); an answer whose ``bytes_written`` is not the file's size
        is an error."""
        size = local.stat().st_size
        if size > MAX_SESSION_FILE_BYTES:
            raise UsageError(f"{local}: {size} bytes is over the service's 50 MB limit for a "
                             "session file", "upload a smaller file, or split it")

        def chunks() -> Iterator[bytes]:
            with open(local, "rb") as stream:
                while chunk := stream.read(CHUNK):
                    yield chunk

        reply = self.send("PUT", self._files_route(agent, session, "content"),
                          query={"path": remote}, api_version=ENDPOINT_API_VERSION,
                          headers=self.headers(Content_Type="application/octet-stream",
                                               Content_Length=str(size)),
                          content_factory=chunks, upload_name=local.name, ok=(200, 201))
        body = reply.json()
        written = body.get("bytes_written")
        if written is not None and written != size:
            raise ServiceError(f"upload of {local.name}: the service wrote {written} bytes of "
                               f"{size}", "upload it again")
        return body

    def download_session_file(self, agent: str, session: str, remote: str, dest: Path) -> int:
        """``GET …/files/content?path=REMOTE`` (``downloadSessionFile``) streamed to ``dest``
        through a temporary file; returns the byte count. Nothing is written on failure."""
        reply = self.send("GET", self._files_route(agent, session, "content"),
                          query={"path": remote}, api_version=ENDPOINT_API_VERSION,
                          headers=self.headers(accept="application/octet-stream"), stream=True)
        try:
            with atomic_output(dest) as out:
                return self._copy_body(reply, out, remote)
        finally:
            reply.close()

    def _copy_body(self, reply: Reply, out: BinaryIO, what: str,
                   digest: hashlib._Hash | None = None) -> int:
        """Copy a streamed answer's body into ``out`` (and ``digest``); its byte count. A read
        that times out or breaks off is one line naming ``what`` was being read."""
        size = 0
        try:
            for chunk in reply.iter_bytes(CHUNK):
                size += len(chunk)
                if digest is not None:
                    digest.update(chunk)
                out.write(chunk)
        except httpx.TimeoutException:
            raise ServiceError(f"GET {short_url(reply.url)}: timed out after "
                               f"{self.options.read_timeout:g}s reading {what}",
                               "retry, or raise --read-timeout") from None
        except httpx.TransportError as error:
            raise self.transport_error("GET", reply.url, error) from None
        return size

    def delete_session_file(self, agent: str, session: str, remote: str, *,
                            recursive: bool = False) -> None:
        """``DELETE …/files?path=REMOTE[&recursive=true]`` (``deleteSessionFile``); a folder
        that is not empty answers 409 unless ``recursive``."""
        self.send("DELETE", self._files_route(agent, session), api_version=ENDPOINT_API_VERSION,
                  query={"path": remote, "recursive": "true" if recursive else None},
                  headers=self.headers()).read()
