"""A loopback package index, so pip and uv resolve against the test session's own wheels.

:class:`SimpleIndex` serves a folder of wheels (and sdists) as a PEP 503 simple repository with
PEP 691 JSON and PEP 658/714 core metadata, bound to 127.0.0.1 only. It records every request so
a test can prove a warm cache asked for nothing, and can be told to fail or to go away.
"""

from __future__ import annotations

import hashlib
import html
import json
import threading
import time
import zipfile
from collections import Counter
from email.parser import HeaderParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
API_VERSION = "1.1"


class _Server(ThreadingHTTPServer):
    # uv opens many connections at once; the default backlog of 5 would drop SYNs and cost a
    # one-second retransmit each.
    request_queue_size = 128
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer (a resolver that has read enough) is not a
        failure of the index; socketserver would print a traceback into the test's stderr."""
        import sys

        error = sys.exc_info()[1]
        if not isinstance(error, (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class _Artifact:
    """One file of the folder, with what the index pages say about it."""

    def __init__(self, path: Path, project: str) -> None:
        self.path = path
        self.project = project
        data = path.read_bytes()
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.metadata: bytes | None = None
        self.requires_python: str | None = None
        if path.name.endswith(".whl"):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
                if len(names) == 1:
                    self.metadata = archive.read(names[0])
            if self.metadata is not None:
                headers = HeaderParser().parsestr(self.metadata.decode("utf-8", "replace"))
                self.requires_python = headers.get("Requires-Python")

    @property
    def metadata_sha256(self) -> str | None:
        return None if self.metadata is None else hashlib.sha256(self.metadata).hexdigest()


class SimpleIndex:
    """A PEP 503 / 691 simple index over ``folder``, served on an ephemeral loopback port.

    - ``GET /simple/`` lists projects; ``GET /simple/<normalized-name>/`` lists files as
      ``<a href="../../files/<file>#sha256=<hex>">`` with ``data-requires-python`` (escaped)
      and ``data-core-metadata``/``data-dist-info-metadata`` when the wheel has METADATA.
      A non-normalized name redirects (301) to its normalized page; unknown names are 404.
    - The JSON form (PEP 691, ``api-version`` 1.1) is served when the ``Accept`` header names
      ``application/vnd.pypi.simple.v1+json`` and ``json`` is true.
    - ``GET /files/<file>`` is the file; ``/files/<file>.metadata`` its METADATA (PEP 658).
    - The folder is rescanned on every page, so wheels written later are served too.
    - ``hits`` counts requests per path (``Counter``); ``requests`` keeps them in order.
    - ``yanked[filename] = reason`` marks a file yanked (PEP 592: ``data-yanked``, JSON
      ``yanked``); an empty reason yanks without one.
    - ``fail_with = 500`` (any status) answers every request with that status until reset
      to ``None``; ``close()`` stops the server so further connections are refused.
      ``fail_times = n`` fails only the next ``n`` requests (then serves again), and
      ``retry_after = "7"`` (seconds or an HTTP date) is sent with each failure as
      ``Retry-After`` — a rate-limited (429) or overloaded (503) index.
    - ``trickle = 0.5`` sends each file one byte every 0.5 s (headers at once, with the true
      ``Content-Length``): an index that never stalls long enough for a read timeout.

    Use as a context manager, or call ``close()``. Nothing is bound beyond 127.0.0.1.
    """

    def __init__(self, folder: Path, *, json: bool = True) -> None:
        self.folder = Path(folder)
        self.json = json
        self.fail_with: int | None = None
        self.fail_times: int | None = None
        self.retry_after: str | None = None
        self.trickle: float | None = None
        self.yanked: dict[str, str] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._artifacts: dict[tuple[str, int, int], _Artifact] = {}
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # close() waits at most this long
            name=f"SimpleIndex({folder})",
            daemon=True,
        )
        self._thread.start()
        self._closed = False

    @property
    def root(self) -> str:
        """``http://127.0.0.1:<port>``, with no trailing slash."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        """The ``/simple`` URL to give pip or uv as ``--index-url``."""
        return f"{self.root}/simple"

    def file_url(self, filename: str) -> str:
        """The absolute URL of one served file."""
        return f"{self.root}/files/{quote(filename)}"

    @property
    def total(self) -> int:
        """How many requests were made since start (or the last ``reset()``)."""
        with self._lock:
            return sum(self.hits.values())

    def reset(self) -> None:
        """Forget counted requests, ``fail_with`` and ``yanked``, so a shared index is reusable."""
        with self._lock:
            self.hits.clear()
            self.requests.clear()
        self.fail_with = None
        self.fail_times = None
        self.retry_after = None
        self.trickle = None
        self.yanked.clear()

    def close(self) -> None:
        """Stop serving and release the port; later connections are refused. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SimpleIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- the repository --------------------------------------------------------------------

    def projects(self) -> dict[str, list[_Artifact]]:
        """Normalized project name -> its files, sorted by filename."""
        found: dict[str, list[_Artifact]] = {}
        for path in sorted(self.folder.iterdir()):
            project = _project_of(path.name)
            if project is None or not path.is_file():
                continue
            found.setdefault(project, []).append(self._artifact(path, project))
        return found

    def _artifact(self, path: Path, project: str) -> _Artifact:
        stat = path.stat()
        key = (path.name, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._artifacts.get(key)
        if cached is None:
            cached = _Artifact(path, project)
            with self._lock:
                self._artifacts[key] = cached
        return cached

    def _take_failure(self) -> bool:
        """Whether this request fails (``fail_with``), counting down ``fail_times``."""
        with self._lock:
            if self.fail_times is None:
                return True
            if self.fail_times <= 0:
                return False
            self.fail_times -= 1
            return True

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.hits[path] += 1
            self.requests.append((method, path))


def _project_of(filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        if filename.endswith((".tar.gz", ".zip")):
            return str(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def _root_html(projects: dict[str, list[_Artifact]]) -> str:
    links = "".join(f'    <a href="{name}/">{name}</a>\n' for name in projects)
    return f"<!DOCTYPE html>\n<html>\n  <body>\n{links}  </body>\n</html>\n"


def _project_html(index: SimpleIndex, name: str, artifacts: list[_Artifact]) -> str:
    links = []
    for artifact in artifacts:
        attributes = ""
        if (reason := index.yanked.get(artifact.path.name)) is not None:
            attributes += f' data-yanked="{html.escape(reason)}"'
        if artifact.requires_python:
            attributes += f' data-requires-python="{html.escape(artifact.requires_python)}"'
        if artifact.metadata_sha256:
            digest = f"sha256={artifact.metadata_sha256}"
            attributes += f' data-core-metadata="{digest}" data-dist-info-metadata="{digest}"'
        href = f"../../files/{quote(artifact.path.name)}#sha256={artifact.sha256}"
        links.append(
            f'    <a href="{href}"{attributes}>{html.escape(artifact.path.name)}</a><br/>\n'
        )
    return (
        f'<!DOCTYPE html>\n<html>\n  <head><meta name="pypi:repository-version" '
        f'content="{API_VERSION}"><title>Links for {name}</title></head>\n  <body>\n'
        f"    <h1>Links for {name}</h1>\n{''.join(links)}  </body>\n</html>\n"
    )


def _project_json(index: SimpleIndex, name: str, artifacts: list[_Artifact]) -> dict[str, Any]:
    files: list[dict[str, Any]] = []
    versions: set[str] = set()
    for artifact in artifacts:
        entry: dict[str, Any] = {
            "filename": artifact.path.name,
            "url": index.file_url(artifact.path.name),
            "hashes": {"sha256": artifact.sha256},
            "size": artifact.path.stat().st_size,
        }
        if artifact.requires_python:
            entry["requires-python"] = artifact.requires_python
        if (reason := index.yanked.get(artifact.path.name)) is not None:
            entry["yanked"] = reason or True
        if artifact.metadata_sha256:
            entry["core-metadata"] = {"sha256": artifact.metadata_sha256}
            entry["dist-info-metadata"] = {"sha256": artifact.metadata_sha256}
        files.append(entry)
        if artifact.path.name.endswith(".whl"):
            versions.add(str(parse_wheel_filename(artifact.path.name)[1]))
        else:
            versions.add(str(parse_sdist_filename(artifact.path.name)[1]))
    return {
        "meta": {"api-version": API_VERSION},
        "name": name,
        "versions": sorted(versions),
        "files": files,
    }


def _handler_for(index: SimpleIndex) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fbundle-test-index/1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: requests are counted in ``index.hits``, not printed."""

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(head=True)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(head=False)

        def _serve(self, *, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            index._record(self.command, path)
            if index.fail_with is not None and index._take_failure():
                self._send(index.fail_with, b"failing on purpose\n", "text/plain", head,
                           retry_after=index.retry_after)
                return
            wants_json = index.json and JSON_TYPE in self.headers.get("Accept", "")
            parts = [part for part in path.split("/") if part]
            if path == "/simple":
                self._redirect("/simple/")
            elif parts == ["simple"]:
                projects = index.projects()
                if wants_json:
                    body = {
                        "meta": {"api-version": API_VERSION},
                        "projects": [{"name": name} for name in projects],
                    }
                    self._send_json(body, head)
                else:
                    self._send_html(_root_html(projects), head)
            elif len(parts) == 2 and parts[0] == "simple":
                name = canonicalize_name(parts[1])
                if name != parts[1] or not path.endswith("/"):
                    self._redirect(f"/simple/{name}/")
                    return
                artifacts = index.projects().get(name)
                if artifacts is None:
                    self._send(404, b"no such project\n", "text/plain", head)
                elif wants_json:
                    self._send_json(_project_json(index, name, artifacts), head)
                else:
                    self._send_html(_project_html(index, name, artifacts), head)
            elif len(parts) == 2 and parts[0] == "files":
                self._send_file(parts[1], head)
            else:
                self._send(404, b"not found\n", "text/plain", head)

        def _send_file(self, filename: str, head: bool) -> None:
            metadata = filename.endswith(".metadata")
            target = filename.removesuffix(".metadata") if metadata else filename
            for artifacts in index.projects().values():
                for artifact in artifacts:
                    if artifact.path.name != target:
                        continue
                    if metadata:
                        if artifact.metadata is None:
                            break
                        self._send(200, artifact.metadata, "text/plain", head)
                    else:
                        self._send(
                            200, artifact.path.read_bytes(), "application/octet-stream", head,
                            trickle=index.trickle,
                        )
                    return
            self._send(404, b"no such file\n", "text/plain", head)

        def _redirect(self, location: str) -> None:
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _send_html(self, text: str, head: bool) -> None:
            self._send(200, text.encode(), "text/html; charset=utf-8", head)

        def _send_json(self, body: dict[str, Any], head: bool) -> None:
            self._send(200, json.dumps(body, indent=1).encode(), JSON_TYPE, head)

        def _send(self, status: int, body: bytes, content_type: str, head: bool, *,
                  retry_after: str | None = None, trickle: float | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            if head:
                return
            if not trickle:
                self.wfile.write(body)
                return
            try:
                for offset in range(len(body)):
                    self.wfile.write(body[offset:offset + 1])
                    self.wfile.flush()
                    time.sleep(trickle)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up, as it should

    return Handler
