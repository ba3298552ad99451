"""A thin client of the service's REST contract (the article's "Deploy using the REST API").

Every request goes through :meth:`FoundryClient._send`, the one place that adds headers, applies
timeouts, retries (429 and 5xx with bounded exponential backoff honouring ``Retry-After``;
connection failures only for idempotent GETs or before anything was sent) and turns a failed
response into one :class:`ServiceError` line. The token is added there and nowhere else, and
every text that came back from the service is passed through :meth:`Secret.redact` before it
can reach a message.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlencode, urlsplit

import httpx
from httpx_sse import EventSource

from bundler.deploy.auth import REDACTED, Credential
from bundler.errors import EXIT_FAILURE, FbundleError, UsageError
from bundler.model import CHUNK, MAX_BUNDLE_BYTES
from bundler.settings import float_env
from bundler.write import atomic_output

log = logging.getLogger(__name__)

PREVIEW_API_VERSION = "2025-11-15-preview"
GA_API_VERSION = "v1"
FEATURES_HEADER = "Foundry-Features"
PREVIEW_FEATURES = "CodeAgents=V1Preview,HostedAgents=V1Preview"
RETRYABLE = frozenset({429, 500, 502, 503, 504})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

Progress = Callable[[int], None]


class ServiceError(FbundleError):
    """A request that failed: its HTTP status, the service's error code and the request id."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None,
                 code: str | None = None, request_id: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status
        self.code = code
        self.request_id = request_id


@dataclass(frozen=True)
class HttpOptions:
    """Timeouts and retry policy; every value can be set from the environment (tests use tiny ones).

    ``FBUNDLE_CONNECT_TIMEOUT``, ``FBUNDLE_READ_TIMEOUT``, ``FBUNDLE_RETRIES``,
    ``FBUNDLE_BACKOFF`` (first delay), ``FBUNDLE_BACKOFF_MAX`` (cap, also caps ``Retry-After``).
    """

    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    retries: int = 4
    backoff: float = 1.0
    backoff_max: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: float | None
                 ) -> HttpOptions:
        env = os.environ if env is None else env
        default = cls()
        values: dict[str, Any] = {
            "connect_timeout": float_env(env, "FBUNDLE_CONNECT_TIMEOUT", default.connect_timeout),
            "read_timeout": float_env(env, "FBUNDLE_READ_TIMEOUT", default.read_timeout),
            "retries": int(float_env(env, "FBUNDLE_RETRIES", default.retries)),
            "backoff": float_env(env, "FBUNDLE_BACKOFF", default.backoff),
            "backoff_max": float_env(env, "FBUNDLE_BACKOFF_MAX", default.backoff_max),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def delay(self, attempt: int) -> float:
        """Exponential backoff for retry ``attempt`` (0-based), capped at ``backoff_max``."""
        return float(min(self.backoff_max, self.backoff * (2 ** attempt)))


def check_endpoint(endpoint: str) -> str:
    """The project endpoint without a trailing slash; refuses to send a token over plain http."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError(f"endpoint {endpoint!r} is not an http(s) URL",
                         "pass --endpoint https://{account}.services.ai.azure.com/api/projects/"
                         "{project}")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise UsageError(f"endpoint {endpoint!r} uses plain http",
                         "use https: a bearer token must not cross the network unencrypted")
    return endpoint.strip().rstrip("/")


def preview_headers(api_version: str) -> dict[str, str]:
    """The preview feature header the article asks for; the GA ``v1`` API takes none."""
    return {} if api_version == GA_API_VERSION else {FEATURES_HEADER: PREVIEW_FEATURES}


def latest_version(body: Mapping[str, Any]) -> dict[str, Any]:
    """The version object of a response: ``versions.latest`` of an envelope, or the body itself."""
    versions = body.get("versions")
    if isinstance(versions, dict) and isinstance(versions.get("latest"), dict):
        return dict(versions["latest"])
    return dict(body)


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
    body: dict[str, Any]


class _CountingStream(httpx.SyncByteStream):
    """Passes a request body through unchanged, reporting each chunk's size (upload progress)."""

    def __init__(self, inner: Any, progress: Progress) -> None:
        self._inner = inner
        self._progress = progress

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._progress(len(chunk))
            yield chunk


class FoundryClient:
    """The service's agent endpoints under one project ``endpoint``.

    ``credential`` is a zero-argument callable so the token is only acquired when a request is
    really about to be sent (never for ``--dry-run``), and only once.
    """

    def __init__(self, endpoint: str, credential: Callable[[], Credential], *,
                 api_version: str = PREVIEW_API_VERSION, options: HttpOptions | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.endpoint = check_endpoint(endpoint)
        self.api_version = api_version
        self.options = options or HttpOptions()
        self._get_credential = credential
        self._credential: Credential | None = None
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=httpx.Timeout(self.options.read_timeout, connect=self.options.connect_timeout),
            follow_redirects=False,
        )

    def __enter__(self) -> FoundryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def credential(self) -> Credential:
        if self._credential is None:
            self._credential = self._get_credential()
        return self._credential

    def url(self, path: str, **query: str | None) -> str:
        params = {"api-version": self.api_version}
        params.update({k: v for k, v in query.items() if v is not None})
        return f"{self.endpoint}{path}?{urlencode(params)}"

    def headers(self, *, accept: str = "application/json", preview: bool = True,
                **extra: str) -> dict[str, str]:
        """Request headers without ``Authorization`` (added in :meth:`_send` only)."""
        headers = {"Accept": accept}
        if preview:
            headers.update(preview_headers(self.api_version))
        headers.update({k.replace("_", "-"): v for k, v in extra.items()})
        return headers

    def _redact(self, text: str) -> str:
        return self._credential.token.redact(text) if self._credential else text

    def _send(self, method: str, path: str, *, headers: dict[str, str],
              query: Mapping[str, str | None] | None = None, upload: Upload | None = None,
              progress: Progress | None = None, stream: bool = False,
              ok: tuple[int, ...] = (200, 201, 202, 204),
              timeout: httpx.Timeout | None = None) -> httpx.Response:
        url = self.url(path, **(query or {}))
        idempotent = method in ("GET", "HEAD")
        attempt = 0
        with_auth = {**headers, "Authorization": self.credential.authorization}
        while True:
            code_file = open(upload.zip_path, "rb") if upload else None  # noqa: SIM115
            try:
                files: dict[str, tuple[str | None, bytes | BinaryIO, str]] | None = None
                if upload and code_file:
                    files = {"metadata": (None, upload.metadata_bytes, "application/json"),
                             "code": (f"{upload.agent}.zip", code_file, "application/zip")}
                request = self._http.build_request(method, url, headers=with_auth, files=files,
                                                   timeout=timeout or httpx.USE_CLIENT_DEFAULT)
                if progress is not None and upload:
                    request.stream = _CountingStream(request.stream, progress)
                log.debug("%s %s (attempt %d)", method, url, attempt + 1)
                try:
                    response = self._http.send(request, stream=stream)
                except httpx.TimeoutException as error:
                    raise self._timeout_error(method, url, error) from None
                except httpx.TransportError as error:
                    # Resets are retried only where a repeat cannot do harm: idempotent GETs,
                    # or any request whose connection was never made.
                    if (idempotent or isinstance(error, httpx.ConnectError)) \
                            and attempt < self.options.retries:
                        delay = self.options.delay(attempt)
                        log.info("%s %s: %s; retrying in %.1fs", method, url,
                                 type(error).__name__, delay)
                        attempt += 1
                        self._sleep(delay)
                        continue
                    raise self._transport_error(method, url, error, upload) from None
            finally:
                if code_file:
                    code_file.close()
            if response.status_code in RETRYABLE and attempt < self.options.retries:
                delay = self._retry_delay(response, attempt)
                log.info("%s %s: HTTP %d; retrying in %.1fs", method, url, response.status_code,
                         delay)
                response.close()
                attempt += 1
                self._sleep(delay)
                continue
            if response.status_code not in ok:
                if stream:
                    response.read()
                raise self._service_error(method, url, response)
            return response

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float:
        """``Retry-After`` (seconds or an HTTP date) when given, else backoff; both capped."""
        value = response.headers.get("retry-after", "").strip()
        if value:
            try:
                seconds = float(value)
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(value)
                    seconds = (when - datetime.now(UTC)).total_seconds()
                except (TypeError, ValueError):
                    seconds = self.options.delay(attempt)
            return max(0.0, min(seconds, self.options.backoff_max))
        return self.options.delay(attempt)

    def _timeout_error(self, method: str, url: str, error: httpx.TimeoutException) -> ServiceError:
        if isinstance(error, httpx.ConnectTimeout):
            what, limit, knob = "connecting", self.options.connect_timeout, "--connect-timeout"
        else:
            what, limit, knob = "waiting for the response", self.options.read_timeout, \
                "--read-timeout"
        return ServiceError(f"{method} {_path(url)}: timed out after {limit:g}s {what}",
                            f"check the endpoint and network, or raise {knob}")

    def _transport_error(self, method: str, url: str, error: httpx.TransportError,
                         upload: Upload | None) -> ServiceError:
        detail = self._redact(str(error) or type(error).__name__)
        if upload:
            return ServiceError(
                f"{method} {_path(url)}: connection lost while uploading {upload.zip_path.name} "
                f"({detail})",
                "run deploy again: the service deduplicates an identical upload")
        return ServiceError(f"{method} {_path(url)}: connection failed ({detail})",
                            "check the endpoint and network, then retry")

    def _service_error(self, method: str, url: str, response: httpx.Response) -> ServiceError:
        code = message = None
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        if isinstance(body, dict):
            error = body.get("error", body)
            if isinstance(error, dict):
                code = _text(error.get("code"))
                message = _text(error.get("message"))
        if message is None:
            message = " ".join(response.text.split())[:300] if response.content else None
        request_id = response.headers.get("x-request-id") or response.headers.get(
            "apim-request-id")
        status = response.status_code
        parts = [f"{method} {_path(url)}: HTTP {status} {response.reason_phrase}".rstrip()]
        if code:
            parts.append(code)
        if message:
            parts.append(self._redact(message))
        line = ": ".join(parts)
        if request_id:
            line += f" (x-request-id {request_id})"
        return ServiceError(line, self._hint(status, code), status=status, code=code,
                            request_id=request_id)

    def _hint(self, status: int, code: str | None) -> str | None:
        source = self._credential.source if self._credential else "no credential"
        if status == 401:
            fix = self._credential.fix if self._credential else "set FBUNDLE_TOKEN"
            return (f"the token from {source} was rejected (missing, expired or wrong scope); "
                    f"{fix}")
        if status == 403:
            return (f"the identity behind {source} lacks access to the project; grant it "
                    "Foundry Project Manager (to deploy) or Foundry User at project scope")
        if status == 404:
            return "check --endpoint, --agent and --version"
        if status == 429 or status >= 500:
            return "the service is busy or failing; retry later"
        return None

    # -- the contract ------------------------------------------------------------------------

    def get_agent(self, agent: str) -> dict[str, Any] | None:
        """The agent envelope, or None when there is no such agent."""
        response = self._send("GET", f"/agents/{agent}", headers=self.headers(), ok=(200, 404))
        return None if response.status_code == 404 else _json(response)

    def get_version(self, agent: str, version: str) -> dict[str, Any]:
        return _json(self._send("GET", f"/agents/{agent}/versions/{version}",
                                headers=self.headers()))

    def plan_upload(self, upload: Upload, *, create: bool = True) -> PlannedRequest:
        """The create (or update) request, as ``--dry-run`` shows it; sends nothing."""
        headers = {"Authorization": f"Bearer {REDACTED}",
                   **self.headers(x_ms_code_zip_sha256=upload.sha256)}
        if create:
            headers["x-ms-agent-name"] = upload.agent
        parts = [Part("metadata", "application/json", len(upload.metadata_bytes)),
                 Part("code", "application/zip", upload.size, f"{upload.agent}.zip",
                      upload.sha256)]
        path = "/agents" if create else f"/agents/{upload.agent}"
        note = "create; on 409 (exists) the same body goes to update" if create else "update"
        return PlannedRequest("POST", self.url(path), headers, parts, note)

    def upload(self, upload: Upload, *, create: bool, progress: Progress | None = None
               ) -> httpx.Response:
        headers = self.headers(x_ms_code_zip_sha256=upload.sha256)
        if create:
            headers["x-ms-agent-name"] = upload.agent
        path = "/agents" if create else f"/agents/{upload.agent}"
        ok = (200, 201, 202, 409) if create else (200, 201, 202)
        return self._send("POST", path, headers=headers, upload=upload, progress=progress, ok=ok)

    def deploy(self, upload: Upload, progress: Progress | None = None) -> DeployOutcome:
        """Create the agent, or update it if it exists; say whether a new version was minted.

        The agent is looked up first, to learn its latest version: the service deduplicates by
        content, so an update that returns that same version changed nothing. Create is tried
        only when the lookup found nothing, and a 409 (someone created it meanwhile) falls back
        to update, so two creates never race.
        """
        if upload.size > MAX_BUNDLE_BYTES:
            raise UsageError(f"{upload.zip_path}: {upload.size} bytes is over the service's "
                             "250 MB limit", "use remote_build or trim the bundle")
        before = self.get_agent(upload.agent)
        created = False
        if before is None:
            response = self.upload(upload, create=True, progress=progress)
            if response.status_code == 409:
                log.info("agent %s appeared meanwhile; updating it", upload.agent)
                before = self.get_agent(upload.agent)
            else:
                created = True
        if not created:
            response = self.upload(upload, create=False, progress=progress)
        body = _json(response)
        version = latest_version(body)
        number = str(version.get("version", "?"))
        previous = str(latest_version(before).get("version")) if before else None
        return DeployOutcome(upload.agent, number, str(version.get("status", "unknown")),
                             created, previous == number, body)

    def download(self, agent: str, version: str | None, dest: Path) -> tuple[str, str]:
        """Stream ``code:download`` to ``dest`` atomically; refuse a body that fails its sha."""
        response = self._send("GET", f"/agents/{agent}/code:download",
                              query={"agent_version": version},
                              headers=self.headers(accept="application/zip"), stream=True)
        try:
            expected = response.headers.get("x-ms-code-zip-sha256", "").strip().lower()
            served = response.headers.get("x-ms-agent-version", version or "?")
            digest = hashlib.sha256()
            try:
                with atomic_output(dest) as out:
                    for chunk in response.iter_bytes(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                    if not expected:
                        raise ServiceError(
                            f"download of {agent} version {served}: the service sent no "
                            "x-ms-code-zip-sha256 header, so the body cannot be verified",
                            "nothing was written; retry, or report it to the service")
                    if digest.hexdigest() != expected:
                        raise ServiceError(
                            f"download of {agent} version {served}: body sha256 "
                            f"{digest.hexdigest()} does not match x-ms-code-zip-sha256 "
                            f"{expected}", f"{dest} was not written; retry the download")
            except httpx.TimeoutException as error:
                raise self._timeout_error("GET", str(response.request.url), error) from None
            except httpx.TransportError as error:
                raise self._transport_error("GET", str(response.request.url), error,
                                            None) from None
        finally:
            response.close()
        return served, expected

    def logstream(self, agent: str, session: str, *, kind: str | None = None,
                  tail: int | None = None, idle: float | None = None) -> Iterator[str]:
        """One line per server-sent event; stops when the stream ends or is ``idle`` seconds quiet.

        The logstream endpoint takes no preview header (the article says so).
        """
        timeout = httpx.Timeout(idle, connect=self.options.connect_timeout) if idle else \
            httpx.Timeout(None, connect=self.options.connect_timeout)
        response = self._send(
            "GET", f"/agents/{agent}/sessions/{session}:logstream",
            query={"kind": kind, "tail": str(tail) if tail is not None else None},
            headers=self.headers(accept="text/event-stream", preview=False,
                                 Cache_Control="no-store"),
            stream=True, timeout=timeout)
        try:
            for event in EventSource(response).iter_sse():
                if event.data or event.event not in ("", "message"):
                    yield _event_line(event.event, event.data)
        except httpx.ReadTimeout:
            return  # quiet for `idle` seconds: the backlog is over
        except httpx.TransportError as error:
            raise self._transport_error("GET", str(response.request.url), error, None) from None
        finally:
            response.close()

    def delete(self, agent: str, version: str | None, *, force: bool) -> dict[str, Any]:
        path = f"/agents/{agent}" + (f"/versions/{version}" if version else "")
        response = self._send("DELETE", path, headers=self.headers(),
                              query={"force": "true" if force else None})
        return _json(response) if response.content else {}


def _event_line(kind: str, data: str) -> str:
    """A log event as one line: JSON payloads with a message are shown as ``[time] message``."""
    text = data
    try:
        payload = json.loads(data)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        stamp = payload.get("timestamp")
        text = f"[{stamp}] {payload['message']}" if stamp else payload["message"]
    text = text.replace("\r", "").replace("\n", "\\n")
    return text if kind in ("", "message") else f"{kind}: {text}"


def _path(url: str) -> str:
    """A URL for a message: scheme, host and path, without the query string."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _text(value: Any) -> str | None:
    return None if value is None else " ".join(str(value).split())


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        raise ServiceError(f"{response.request.method} {_path(str(response.request.url))}: "
                           f"HTTP {response.status_code} but the body is not JSON",
                           "check --endpoint points at a Foundry project") from None
    if not isinstance(body, dict):
        raise ServiceError(f"{response.request.method} {_path(str(response.request.url))}: "
                           "expected a JSON object", "check --endpoint") from None
    return body

