"""The one HTTP floor under every service call: headers, retries, errors, and what comes back.

:class:`Transport` sends; :class:`Reply` is the only way the program reads what was sent back.
Every text a server answers with — the reason phrase, every header, JSON bodies, plain bodies,
server-sent events — enters the program through :class:`Reply`, which passes it through
:func:`Scrub` first (the bearer token and URL credentials replaced by ``<redacted>``). So a
message, a ``--json`` document, a log line or a printed log event can only carry redacted text,
whatever field of the answer it came from. Raw bytes (a downloaded zip) are the one exception:
they are written to a file and hashed, never printed.

The token is added to a request in :meth:`Transport._send` and nowhere else; httpx's own log
records pass through a filter that redacts them too. Paths are built from segments with
:func:`path`, which percent-encodes each one and refuses ``.``/``..``, so a value from a flag or
from the service's own answer can never reach another route.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, Self
from urllib.parse import quote, urlencode, urlsplit

import httpx
from httpx_sse import EventSource

from bundler import __version__
from bundler.deploy.auth import Credential, Secret
from bundler.errors import EXIT_FAILURE, FbundleError, UsageError
from bundler.redact import REDACTED, redact_url, redact_urls
from bundler.settings import RetryPolicy, float_env

log = logging.getLogger(__name__)

RETRYABLE = frozenset({429, 500, 502, 503, 504})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
USER_AGENT = f"fbundle/{__version__}"
VERSION_PATTERN = re.compile(r"[0-9]{1,18}")
# Session ids are opaque to the spec; this is what they look like in practice (uuids, the
# service's own ids) and nothing that could be a path segment of its own ('.', '..').
SESSION_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.~-]{0,255}")
REQUEST_ID_HEADERS = ("x-request-id", "apim-request-id", "x-ms-request-id")
# A logging filter acts only on records made by the logger it is attached to, not on records
# its children propagate: httpcore logs from these children (its _trace module).
HTTP_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2",
                "httpcore.proxy", "httpcore.socks")

Progress = Callable[[int], None]


class ServiceError(FbundleError):
    """A request that failed: its HTTP status, the service's error code and the request id."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None,
                 code: str | None = None, request_id: str | None = None,
                 details: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message, hint)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.details = details  # x-adc-response-details (the platform's session error code)
        self.headers = dict(headers or {})  # the answer's headers, scrubbed (lower-case names)


class Scrub:
    """Takes the token and URL credentials out of text a server sent (the one redactor here).

    Built on ``bundler.redact`` (URL userinfo) and ``Secret.redact`` (the token's own value);
    ``secret`` is None until a token was acquired (nothing to take out but URL credentials).
    """

    def __init__(self, secret: Callable[[], Secret | None]) -> None:
        self._secret = secret

    def __call__(self, text: str) -> str:
        secret = self._secret()
        if secret is not None:
            text = secret.redact(text)
        return redact_urls(text)

    def value(self, data: Any) -> Any:
        """A parsed JSON value with every string (keys too) scrubbed."""
        if isinstance(data, str):
            return self(data)
        if isinstance(data, list):
            return [self.value(item) for item in data]
        if isinstance(data, dict):
            return {self(str(k)): self.value(v) for k, v in data.items()}
        return data


class _LogScrubber(logging.Filter):
    """Redacts httpx/httpcore log records (``HTTP Request: … "HTTP/1.1 401 <reason>"``)."""

    def __init__(self, scrub: Scrub) -> None:
        super().__init__()
        self._scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class Reply:
    """What a server answered, as the program may see it: every text already scrubbed."""

    def __init__(self, response: httpx.Response, scrub: Scrub) -> None:
        self._response = response
        self._scrub = scrub
        self.status = response.status_code
        self.reason = scrub(response.reason_phrase or "")
        self.headers = {name.lower(): scrub(value) for name, value in response.headers.items()}
        self.method = response.request.method
        self.url = str(response.request.url)

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.lower(), "").strip()
        return value or None

    @property
    def request_id(self) -> str | None:
        for name in REQUEST_ID_HEADERS:
            if value := self.header(name):
                # A proxy may fold duplicate headers into "a, b": the first id is the request's.
                return next((p.strip() for p in value.split(",") if p.strip()), None)
        return None

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    def read(self) -> bytes:
        return self._response.read()

    def text(self) -> str:
        self._response.read()
        return self._scrub(self._response.text)

    def json_value(self) -> Any:
        """The parsed body (scrubbed), or :class:`ServiceError` when it is not JSON."""
        self._response.read()
        try:
            return self._scrub.value(self._response.json())
        except (ValueError, UnicodeDecodeError):
            raise ServiceError(f"{self.method} {short_url(self.url)}: HTTP {self.status} but the "
                               "body is not JSON",
                               "check --endpoint points at a Foundry project") from None

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; anything else is :class:`ServiceError`."""
        if not self._response.content:
            return {}
        body = self.json_value()
        if not isinstance(body, dict):
            raise ServiceError(f"{self.method} {short_url(self.url)}: expected a JSON object",
                               "check --endpoint points at a Foundry project")
        return body

    def iter_bytes(self, size: int) -> Iterator[bytes]:
        """Raw body bytes (for files and hashes only: never printed)."""
        return self._response.iter_bytes(size)

    def iter_lines(self) -> Iterator[str]:
        for line in self._response.iter_lines():
            yield self._scrub(line)

    def iter_sse(self) -> Iterator[tuple[str, str]]:
        """``(event, data)`` per server-sent event; ``event`` is ``message`` when unnamed."""
        for event in EventSource(self._response).iter_sse():
            yield self._scrub(event.event or "message"), self._scrub(event.data)

    def close(self) -> None:
        self._response.close()


@dataclass(frozen=True)
class HttpOptions(RetryPolicy):
    """Timeouts and retry policy; every value can be set from the environment (tests use tiny ones).

    ``FBUNDLE_CONNECT_TIMEOUT``, ``FBUNDLE_READ_TIMEOUT``, and the retry knobs of
    ``settings.RetryPolicy`` (``FBUNDLE_RETRIES``, ``FBUNDLE_BACKOFF``, ``FBUNDLE_BACKOFF_MAX``).
    """

    connect_timeout: float = 10.0
    read_timeout: float = 120.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: float | None
                 ) -> HttpOptions:
        env = os.environ if env is None else env
        default = cls()
        values: dict[str, Any] = {
            "connect_timeout": float_env(env, "FBUNDLE_CONNECT_TIMEOUT", default.connect_timeout),
            "read_timeout": float_env(env, "FBUNDLE_READ_TIMEOUT", default.read_timeout),
            **RetryPolicy.knobs(env),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def check_endpoint(endpoint: str, *, what: str = "endpoint",
                   hint: str = "pass --endpoint https://{account}.services.ai.azure.com/api/"
                               "projects/{project}") -> str:
    """The endpoint without a trailing slash; refuses plain http off loopback and credentials."""
    text = endpoint.strip()
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise UsageError(f"{what} {redact_urls(text)!r} is not a URL", hint) from None
    if parts.scheme not in ("https", "http") or not hostname:
        raise UsageError(f"{what} {redact_urls(text)!r} is not an http(s) URL", hint)
    if parts.username or parts.password:
        raise UsageError(f"{what} {redact_url(text)!r} carries credentials in the URL",
                         "drop the user:password@ part; the token comes from FBUNDLE_TOKEN, "
                         "az or azure-identity")
    if parts.query or parts.fragment:
        raise UsageError(f"{what} {redact_urls(text)!r} has a query string or fragment",
                         "pass the project endpoint alone (api-version is added per request)")
    if parts.scheme == "http" and hostname not in LOOPBACK:
        raise UsageError(f"{what} {redact_urls(text)!r} uses plain http",
                         "use https: a bearer token must not cross the network unencrypted")
    return text.rstrip("/")


def segment(value: str) -> str:
    """One path segment, percent-encoded; ``''``, ``.`` and ``..`` are refused (they are routes)."""
    if value in ("", ".", ".."):
        raise UsageError(f"{value!r} cannot be a name in a URL path", "pass a real name")
    return quote(value, safe="")


def path(*segments: str) -> str:
    """``/a/b/c`` from segments, each percent-encoded (``path("agents", name)``)."""
    return "".join("/" + segment(s) for s in segments)


def _from_user(source: str) -> bool:
    """A flag (``--version``) or an argument (``SESSION``) names the user's input."""
    return source.startswith("--") or source.isupper()


def check_version(value: str, *, source: str = "--version") -> str:
    """A version number as the service mints them (digits); anything else is refused.

    A value from a flag is a usage error (exit 2); one from the service's own answer is a
    :class:`ServiceError` (``source`` names where it came from).
    """
    if VERSION_PATTERN.fullmatch(value):
        return value
    shown = redact_urls(value)[:80]
    if _from_user(source):
        raise UsageError(f"{source} {shown!r} is not a version number",
                         "pass the number `fbundle versions list` shows, for example 3")
    raise ServiceError(f"{source} gave version {shown!r}, which is not a version number",
                       "nothing was requested with it; report it to the service")


def check_session(value: str, *, source: str = "--session") -> str:
    """A session id: letters, digits, ``_.~-``, at most 256, not starting with ``.`` or ``-``."""
    if SESSION_PATTERN.fullmatch(value):
        return value
    shown = redact_urls(value)[:80]
    if _from_user(source):
        raise UsageError(f"{source} {shown!r} is not a session id",
                         "pass the x-agent-session-id an invoke printed "
                         "(or `fbundle sessions list`)")
    raise ServiceError(f"{source} gave session id {shown!r}, which is not a session id",
                       "nothing was requested with it; report it to the service")


def short_url(url: str) -> str:
    """A URL for a message: scheme, host and path, without the query string or credentials."""
    parts = urlsplit(url)
    return redact_url(f"{parts.scheme}://{parts.netloc}{parts.path}")


def one_line(value: Any, limit: int = 500) -> str | None:
    """``value`` as one line of at most ``limit`` characters (None stays None)."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _CountingStream(httpx.SyncByteStream):
    """Passes a request body through unchanged, reporting each chunk's size (upload progress)."""

    def __init__(self, inner: Any, progress: Progress) -> None:
        self._inner = inner
        self._progress = progress

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._progress(len(chunk))
            yield chunk


Files = dict[str, tuple[str | None, bytes | BinaryIO, str]]


class Transport:
    """Requests to one base URL: headers, timeouts, retries, one error line, scrubbed replies.

    ``credential`` is a zero-argument callable so the token is only acquired when a request is
    really about to be sent (never for ``--dry-run``), and only once; None sends no
    ``Authorization`` at all (a local agent). ``api_version`` None sends no ``api-version``.
    """

    def __init__(self, base_url: str, credential: Callable[[], Credential] | None, *,
                 api_version: str | None, options: HttpOptions | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 default_headers: Mapping[str, str] | None = None) -> None:
        self.endpoint = base_url
        self.api_version = api_version
        self.options = options or HttpOptions()
        self._get_credential = credential
        self._credential: Credential | None = None
        self._sleep = sleep
        self._default_headers = dict(default_headers or {})
        self.scrub = Scrub(lambda: self._credential.token if self._credential else None)
        self._log_filter = _LogScrubber(self.scrub)
        for name in HTTP_LOGGERS:
            logging.getLogger(name).addFilter(self._log_filter)
        self._http = httpx.Client(
            timeout=httpx.Timeout(self.options.read_timeout, connect=self.options.connect_timeout),
            follow_redirects=False,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for name in HTTP_LOGGERS:
            logging.getLogger(name).removeFilter(self._log_filter)
        self._http.close()

    @property
    def credential(self) -> Credential | None:
        if self._credential is None and self._get_credential is not None:
            self._credential = self._get_credential()
        return self._credential

    def url(self, route: str, *, api_version: str | None = None, **query: str | None) -> str:
        params: dict[str, str] = {}
        version = api_version or self.api_version
        if version:
            params["api-version"] = version
        params.update({k: v for k, v in query.items() if v is not None})
        return f"{self.endpoint}{route}" + (f"?{urlencode(params)}" if params else "")

    def headers(self, *, accept: str = "application/json", **extra: str) -> dict[str, str]:
        """Request headers without ``Authorization`` (added in :meth:`_send` only)."""
        headers = {"Accept": accept, "User-Agent": USER_AGENT, **self._default_headers}
        headers.update({k.replace("_", "-"): v for k, v in extra.items()})
        return headers

    def send(self, method: str, route: str, *, headers: dict[str, str],
             query: Mapping[str, str | None] | None = None, api_version: str | None = None,
             content: bytes | None = None, files_factory: Callable[[], Files] | None = None,
             content_factory: Callable[[], Iterator[bytes]] | None = None,
             upload_name: str | None = None, progress: Progress | None = None,
             stream: bool = False, ok: tuple[int, ...] = (200, 201, 202, 204),
             timeout: httpx.Timeout | None = None, timeout_hint: str | None = None) -> Reply:
        """Send one request (with retries); a status outside ``ok`` is a :class:`ServiceError`.

        ``timeout`` replaces the client's timeouts for this request; ``timeout_hint`` is what a
        timed-out wait tells the user to raise (default: ``--read-timeout``).
        ``files_factory`` opens a fresh multipart body per attempt (a retried upload restarts);
        ``content_factory`` a fresh raw body (a file streamed from disk).
        Connection resets are retried only for GETs, or for anything never sent (connect
        errors); 429 and 5xx answers are retried for every method, honouring ``Retry-After``.
        """
        url = self.url(route, api_version=api_version, **(query or {}))
        idempotent = method in ("GET", "HEAD")
        attempt = 0
        sent_headers = {**headers, "x-ms-client-request-id": str(uuid.uuid4())}
        credential = self.credential
        if credential is not None:
            sent_headers["Authorization"] = credential.authorization
        while True:
            files = files_factory() if files_factory else None
            try:
                request = self._http.build_request(method, url, headers=sent_headers,
                                                   content=content_factory() if
                                                   content_factory else content, files=files,
                                                   timeout=timeout or httpx.USE_CLIENT_DEFAULT)
                if progress is not None:
                    request.stream = _CountingStream(request.stream, progress)
                log.debug("%s %s (attempt %d)", method, short_url(url), attempt + 1)
                try:
                    response = self._http.send(request, stream=stream)
                except httpx.TimeoutException as error:
                    raise self._timeout_error(method, url, error, timeout,
                                              timeout_hint) from None
                except httpx.TransportError as error:
                    if (idempotent or isinstance(error, httpx.ConnectError)) \
                            and attempt < self.options.retries:
                        delay = self.options.delay(attempt)
                        log.info("%s %s: %s; retrying in %.1fs", method, short_url(url),
                                 type(error).__name__, delay)
                        attempt += 1
                        self._sleep(delay)
                        continue
                    raise self.transport_error(method, url, error, upload_name) from None
            finally:
                for _, body, _ in (files or {}).values():
                    if hasattr(body, "close"):
                        body.close()
            reply = Reply(response, self.scrub)
            if response.status_code in RETRYABLE and attempt < self.options.retries:
                delay = self._retry_delay(reply, attempt)
                log.info("%s %s: HTTP %d; retrying in %.1fs", method, short_url(url),
                         response.status_code, delay)
                response.close()
                attempt += 1
                self._sleep(delay)
                continue
            if response.status_code not in ok:
                try:
                    raise self.service_error(reply)
                finally:
                    response.close()
            return reply

    def _retry_delay(self, reply: Reply, attempt: int) -> float:
        """``Retry-After`` (seconds or an HTTP date) when given, else backoff; both capped
        (the one reading downloads use too: ``settings.retry_delay``)."""
        return self.options.delay(attempt, reply.header("retry-after"))

    def _timeout_error(self, method: str, url: str, error: httpx.TimeoutException,
                       timeout: httpx.Timeout | None = None,
                       hint: str | None = None) -> ServiceError:
        """The limit that was really in force (this request's, else the client's) and its knob."""
        if isinstance(error, httpx.ConnectTimeout):
            limit = timeout.connect if timeout and timeout.connect else \
                self.options.connect_timeout
            return ServiceError(f"{method} {short_url(url)}: timed out after {limit:g}s "
                                "connecting", "check the endpoint and network, or raise "
                                "--connect-timeout")
        limit = timeout.read if timeout and timeout.read else self.options.read_timeout
        return ServiceError(f"{method} {short_url(url)}: timed out after {limit:g}s waiting for "
                            "the response", hint or "check the endpoint and network, or raise "
                            "--read-timeout")

    def wait(self, seconds: float) -> None:
        """Pause as this transport's retries do (tests inject an instant sleep)."""
        self._sleep(seconds)

    def transport_error(self, method: str, url: str, error: httpx.TransportError,
                        upload_name: str | None = None) -> ServiceError:
        detail = one_line(self.scrub(str(error) or type(error).__name__), 300)
        if upload_name:
            return ServiceError(
                f"{method} {short_url(url)}: connection lost while uploading {upload_name} "
                f"({detail})",
                "run deploy again: the service deduplicates an identical upload")
        return ServiceError(f"{method} {short_url(url)}: connection failed ({detail})",
                            "check the endpoint and network, then retry")

    def service_error(self, reply: Reply) -> ServiceError:
        """One line for a failed answer: status, error.code, error.message, request id."""
        code = message = None
        request_id = reply.request_id
        try:
            body = json.loads(reply.text()) if reply.read() else None
        except ValueError:
            body = None
        if isinstance(body, dict):
            error = body.get("error", body)
            if isinstance(error, dict):
                code = one_line(error.get("code"), 100)
                message = one_line(error.get("message"))
                info = error.get("additionalInfo") or error.get("additional_info")
                if not request_id and isinstance(info, dict):
                    request_id = one_line(info.get("request_id"), 100)
        if message is None and reply.read():
            message = one_line(reply.text(), 300)
        details = reply.header("x-adc-response-details")
        parts = [f"{reply.method} {short_url(reply.url)}: HTTP {reply.status} "
                 f"{one_line(reply.reason, 80) or ''}".rstrip()]
        if code:
            parts.append(code)
        if message:
            parts.append(message)
        line = ": ".join(parts)
        if details:
            line += f" [x-adc-response-details {one_line(details, 120)}]"
        if request_id:
            line += f" (x-request-id {request_id})"
        return ServiceError(line, self.hint(reply.status, code), status=reply.status, code=code,
                            request_id=request_id, details=details, headers=reply.headers)

    def hint(self, status: int, code: str | None) -> str | None:
        """What to do about a failed answer (401 names the token's source, 403 reads the code)."""
        credential = self._credential
        source = credential.source if credential else "no credential"
        if status == 401:
            fix = credential.fix if credential else "set FBUNDLE_TOKEN"
            return (f"the token from {source} was rejected (missing, expired or wrong scope); "
                    f"{fix}")
        if status == 403 and code == "preview_feature_required":
            return ("the service wants the preview opt-in header Foundry-Features: drop "
                    "--no-preview-header (and unset FBUNDLE_PREVIEW_HEADER), or use the article's "
                    "--api-version 2025-11-15-preview")
        if status == 403:
            return (f"the identity behind {source} lacks access to the project; grant it "
                    "Foundry Project Manager (to deploy) or Foundry User at project scope")
        if status == 404:
            return "check --endpoint, --agent and --version"
        if status == 429 or status >= 500:
            return "the service is busy or failing; retry later"
        return None


def redacted_authorization() -> str:
    """The Authorization header as ``--dry-run`` prints it."""
    return f"Bearer {REDACTED}"
