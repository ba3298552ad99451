"""A content-addressed wheel store: wheels keyed by sha256, verified on every read.

A tampered or truncated entry is detected on read, dropped, and fetched again. Location:
``FBUNDLE_CACHE_DIR``, else ``$XDG_CACHE_HOME/fbundle``, else ``~/.cache/fbundle``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bundler.errors import BuildError
from bundler.indexes import IndexConfig
from bundler.lock import WheelRef
from bundler.model import file_sha256
from bundler.redact import redact_url
from bundler.write import atomic_output

log = logging.getLogger(__name__)
RETRIES = 3


def cache_root() -> Path:
    if value := os.environ.get("FBUNDLE_CACHE_DIR"):
        return Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fbundle"


class WheelCache:
    def __init__(self, root: Path | None = None, indexes: IndexConfig | None = None) -> None:
        self.root = root or cache_root()
        self.indexes = indexes or IndexConfig()
        self._client: Any = None
        self._client_lock = threading.Lock()

    def _http(self) -> Any:
        """One HTTP client for every download (thread-safe; keeps connections to the index
        alive across wheels). httpx is imported here: a warm build never downloads."""
        with self._client_lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client(
                    timeout=httpx.Timeout(60.0, connect=15.0), verify=self.indexes.verify(),
                    follow_redirects=True,
                    limits=httpx.Limits(max_connections=16, max_keepalive_connections=16))
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def path_for(self, ref: WheelRef) -> Path:
        return self.root / "wheels" / ref.sha256[:2] / ref.sha256 / ref.filename

    def get(self, ref: WheelRef) -> Path | None:
        """The cached wheel if its bytes still hash to ``ref.sha256``; else None (and dropped)."""
        path = self.path_for(ref)
        if not path.is_file():
            return None
        if file_sha256(path) != ref.sha256:
            log.warning("cache entry %s does not match its sha256; fetching it again", path)
            path.unlink(missing_ok=True)
            return None
        return path

    def fetch(self, ref: WheelRef, *, offline: bool = False, base: Path | None = None) -> Path:
        if cached := self.get(ref):
            return cached
        if offline:
            raise BuildError(
                f"{ref.filename} is not in the cache and --offline forbids fetching it",
                "run the build once without --offline to fill the cache",
            )
        path = self.path_for(ref)
        for attempt in range(RETRIES):
            try:
                # Renamed into the cache only once the bytes hash to what was locked.
                with atomic_output(path) as out:
                    digest = _copy_from_source(ref, out, self.indexes, base, self._http)
                    if digest != ref.sha256:
                        raise BuildError(
                            f"{ref.filename} from {redact_url(ref.location)} has sha256 {digest}, "
                            f"expected {ref.sha256}",
                            "the index served different bytes than were locked; check the "
                            "index or re-lock with `fbundle lock`",
                        )
                return path
            except _Transient as error:
                if attempt + 1 == RETRIES:
                    raise BuildError(
                        f"fetching {redact_url(ref.location)} failed ({error})",
                        "check your network or index, or use --offline with a warm cache",
                    ) from None
                log.info("retrying %s after %s", redact_url(ref.location), error)
        raise AssertionError("unreachable: the last attempt returns or raises")


def _credentials_for(url: str, indexes: IndexConfig) -> tuple[str, str] | None:
    """Basic-auth credentials of a configured index on the same host (pip does the same)."""
    host = urlsplit(url).hostname
    for index in (indexes.index_url, *indexes.extra_index_urls, *indexes.find_links):
        parts = urlsplit(index)
        if parts.hostname == host and parts.username:
            return unquote(parts.username), unquote(parts.password or "")
    return None


def _copy_from_source(ref: WheelRef, out: object, indexes: IndexConfig, base: Path | None,
                      client: Callable[[], Any]) -> str:
    digest = hashlib.sha256()

    def sink(chunk: bytes) -> None:
        digest.update(chunk)
        out.write(chunk)  # type: ignore[attr-defined]

    location = ref.url or ref.path
    if location is None:
        raise BuildError(f"{ref.filename}: the lock gives no url or path",
                         "re-lock with `fbundle lock`")
    parts = urlsplit(location)
    if parts.scheme in ("http", "https"):
        _download(location, sink, indexes, client())
    else:
        local = Path(unquote(parts.path)) if parts.scheme == "file" else Path(location)
        if not local.is_absolute() and base is not None:
            local = base / local
        try:
            with open(local, "rb") as stream:
                while chunk := stream.read(1 << 20):
                    sink(chunk)
        except OSError as error:
            raise BuildError(f"{ref.filename}: cannot read {local} ({error.strerror})",
                             "check the find-links folder, or re-lock") from None
    return digest.hexdigest()


class _Transient(Exception):
    """A failure worth another try: a dropped connection or a 5xx."""


def _download(url: str, sink: object, indexes: IndexConfig, client: Any) -> None:
    import httpx

    auth = _credentials_for(url, indexes)
    try:
        with client.stream("GET", url, auth=auth) as response:
            if response.status_code >= 500:
                raise _Transient(f"HTTP {response.status_code}")
            if response.status_code != 200:
                raise BuildError(
                    f"fetching {redact_url(url)} failed: HTTP {response.status_code}",
                    "check the index URL and your credentials in pip.conf",
                )
            for chunk in response.iter_bytes(1 << 20):
                sink(chunk)  # type: ignore[operator]
    except httpx.TransportError as error:
        raise _Transient(str(error) or type(error).__name__) from None


def clear(root: Path | None = None) -> None:
    shutil.rmtree(root or cache_root(), ignore_errors=True)
