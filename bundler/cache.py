"""A content-addressed wheel store: wheels keyed by sha256, verified on every read.

A tampered or truncated entry is detected on read, dropped, and fetched again. Location:
``FBUNDLE_CACHE_DIR``, else the platform's user cache folder by ``platformdirs`` (as pip finds
its own: ``$XDG_CACHE_HOME/fbundle``, else ``~/.cache/fbundle`` on Linux); a folder at the root
of the file system (``HOME=''`` with no password entry gives ``/.cache``) is refused.

The cache may be read-only (CI restores caches that way): a cache that holds every wheel a
build needs is read and never written — first-use markers and resolution memos are skipped
when they cannot be written. Downloads have a total deadline and retry 429/5xx with backoff
and ``Retry-After`` (:class:`bundler.settings.DownloadPolicy`).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bundler.errors import BuildError, UsageError
from bundler.indexes import IndexConfig
from bundler.lock import WheelRef
from bundler.model import file_sha256
from bundler.redact import redact_url, redact_urls
from bundler.settings import RETRYABLE, DownloadPolicy
from bundler.write import atomic_output

log = logging.getLogger(__name__)
APP = "fbundle"


def cache_root() -> Path:
    """Where the cache lives: ``FBUNDLE_CACHE_DIR``, else the platform's user cache folder."""
    if value := os.environ.get("FBUNDLE_CACHE_DIR"):
        return Path(value).absolute()
    import platformdirs

    hint = "set FBUNDLE_CACHE_DIR to a writable folder (or an absolute HOME or XDG_CACHE_HOME)"
    try:
        folder = Path(platformdirs.user_cache_dir(APP, appauthor=False))
    except (RuntimeError, KeyError, OSError) as error:  # no home directory to be found
        raise UsageError(f"no folder for the wheel cache ({error})", hint) from None
    if not folder.is_absolute() or len(folder.parts) <= 3:  # "/.cache/fbundle"
        raise UsageError(f"no folder for the wheel cache: the fallback {folder} is at the root "
                         "of the file system (HOME is empty or /)", hint)
    return folder


def cache_error(error: OSError, path: Path, doing: str) -> BuildError:
    """An OS error on the cache as one line: the path, the reason, and what to do."""
    if error.errno == errno.ENOSPC:
        what = "the disk is full"
        todo = "free space there, or set FBUNDLE_CACHE_DIR to a folder on another disk"
    elif error.errno == errno.EDQUOT:
        what = "the disk quota is exceeded"
        todo = "free space there, or set FBUNDLE_CACHE_DIR to a folder on another disk"
    elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        what = "it is read-only" if error.errno == errno.EROFS else "permission denied"
        todo = ("make it writable, or set FBUNDLE_CACHE_DIR to a writable folder (a read-only "
                "cache works when it already holds every wheel the build needs)")
    else:
        what = error.strerror or type(error).__name__
        todo = "check the folder, or set FBUNDLE_CACHE_DIR to another one"
    return BuildError(f"cannot {doing} the wheel cache at {path}: {what}", todo)


class _Transient(Exception):
    """A failure worth another try: a dropped connection, a 5xx or a 429."""

    def __init__(self, reason: str, retry_after: str | None = None, *,
                 busy: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.busy = busy  # the server answered 429/5xx: not the network, not credentials


class WheelCache:
    """Wheels by sha256 under ``root``; downloads through one shared HTTP client.

    ``sleep`` and ``clock`` are injectable so tests of backoff and deadlines never wait.
    """

    def __init__(self, root: Path | None = None, indexes: IndexConfig | None = None, *,
                 policy: DownloadPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.root = root or cache_root()
        self.indexes = indexes or IndexConfig()
        self.policy = policy or DownloadPolicy.from_env()
        self._sleep = sleep
        self._clock = clock
        self._client: Any = None
        self._client_lock = threading.Lock()

    def _http(self) -> Any:
        """One HTTP client for every download (thread-safe; keeps connections to the index
        alive across wheels). httpx is imported here: a warm build never downloads."""
        with self._client_lock:
            if self._client is None:
                import httpx

                read = self.policy.read_timeout or None
                self._client = httpx.Client(
                    timeout=httpx.Timeout(read, connect=min(15.0, read or 15.0)),
                    verify=self.indexes.verify(), follow_redirects=True,
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
        try:
            digest = file_sha256(path)
        except OSError as error:
            raise cache_error(error, path, "read") from None
        if digest != ref.sha256:
            log.warning("cache entry %s does not match its sha256; fetching it again", path)
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass  # a read-only cache: the fresh copy will fail to land, with the path
            return None
        return path

    # -- first-use markers: optional, so a read-only cache still serves every read ----------

    def is_verified(self, sha256: str) -> bool:
        """Whether this wheel's RECORD was checked against its bytes once already."""
        return (self.root / "verified" / sha256).exists()

    def mark_verified(self, sha256: str) -> None:
        """Remember that this wheel's RECORD was checked; skipped when the cache is read-only
        (the next build checks it again, which costs time, never correctness)."""
        marker = self.root / "verified" / sha256
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError as error:
            log.debug("not marking %s verified in %s (%s)", sha256[:12], marker.parent,
                      error.strerror)

    # -- fetching ---------------------------------------------------------------------------

    def fetch(self, ref: WheelRef, *, offline: bool = False, base: Path | None = None) -> Path:
        if cached := self.get(ref):
            return cached
        if offline:
            raise BuildError(
                f"{ref.filename} is not in the cache and --offline forbids fetching it",
                "run the build once without --offline to fill the cache",
            )
        path = self.path_for(ref)
        where = redact_url(ref.location)
        attempt = 0
        while True:
            try:
                self._fetch_once(ref, path, base)
                return path
            except _Transient as error:
                if attempt >= self.policy.retries:
                    raise BuildError(
                        f"fetching {where} failed after {attempt + 1} attempts ({error})",
                        "the index is busy or failing; retry later (FBUNDLE_RETRIES sets the "
                        "tries)" if error.busy else
                        "check your network or index, or use --offline with a warm cache",
                    ) from None
                delay = self.policy.delay(attempt, error.retry_after)
                log.info("retrying %s in %.1f s after %s", where, delay, error)
                attempt += 1
                self._sleep(delay)

    def _fetch_once(self, ref: WheelRef, path: Path, base: Path | None) -> None:
        """One attempt: the bytes land in the cache only once they hash to what was locked."""
        # the cache's own folder full, read-only or not ours: say so with the cache's remedy
        with atomic_output(path, lambda _, error: cache_error(error, self.root, "write to")) \
                as out:
            digest = _copy_from_source(ref, out, self, base)
            if digest != ref.sha256:
                raise BuildError(
                    f"{ref.filename} from {redact_url(ref.location)} has sha256 {digest}, "
                    f"expected {ref.sha256}",
                    "the index served different bytes than were locked; check the "
                    "index or re-lock with `fbundle lock`",
                )

    def download(self, url: str, sink: Callable[[bytes], None]) -> None:
        """Stream ``url`` into ``sink`` within the policy's deadline, or raise."""
        import httpx

        parts = urlsplit(url)
        if parts.username:  # credentials travel as auth, so no log line can hold them
            auth: tuple[str, str] | None = (unquote(parts.username), unquote(parts.password or ""))
            url = redact_url(url)
        else:
            auth = _credentials_for(url, self.indexes)
        deadline = self.policy.deadline
        started = self._clock()
        received = 0
        try:
            with self._http().stream("GET", url, auth=auth) as response:
                status = response.status_code
                if status in RETRYABLE:
                    reason = f"HTTP {status}" + (" (rate limited)" if status == 429 else "")
                    raise _Transient(reason, response.headers.get("retry-after"), busy=True)
                if status != 200:
                    raise BuildError(f"fetching {redact_url(url)} failed: HTTP {status}",
                                     _status_hint(status))
                for chunk in response.iter_bytes():
                    sink(chunk)
                    received += len(chunk)
                    if deadline and self._clock() - started > deadline:
                        raise BuildError(
                            f"fetching {redact_url(url)} took longer than {deadline:g} s "
                            f"({received:,} bytes received): the index is too slow",
                            "check the index or network; FBUNDLE_DOWNLOAD_DEADLINE sets the "
                            "limit in seconds")
        except httpx.TransportError as error:
            raise _Transient(redact_urls(str(error)) or type(error).__name__) from None


def _status_hint(status: int) -> str:
    if status in (401, 403):
        return "check the index URL's credentials (pip.conf, PIP_INDEX_URL or netrc)"
    if status == 404:
        return "the index no longer serves this file; re-lock with `fbundle lock`"
    return "check the index URL in pip.conf or PIP_INDEX_URL"


def _credentials_for(url: str, indexes: IndexConfig) -> tuple[str, str] | None:
    """Basic-auth credentials of a configured index on the same host (pip does the same)."""
    host = urlsplit(url).hostname
    for index in (indexes.index_url, *indexes.extra_index_urls, *indexes.find_links):
        parts = urlsplit(index)
        if parts.hostname == host and parts.username:
            return unquote(parts.username), unquote(parts.password or "")
    return None


def _copy_from_source(ref: WheelRef, out: Any, cache: WheelCache, base: Path | None) -> str:
    digest = hashlib.sha256()

    def sink(chunk: bytes) -> None:
        digest.update(chunk)
        out.write(chunk)

    location = ref.url or ref.path
    if location is None:
        raise BuildError(f"{ref.filename}: the lock gives no url or path",
                         "re-lock with `fbundle lock`")
    parts = urlsplit(location)
    if parts.scheme in ("http", "https"):
        cache.download(location, sink)
    else:
        local = Path(unquote(parts.path)) if parts.scheme == "file" else Path(location)
        if not local.is_absolute() and base is not None:
            local = base / local
        try:
            stream = open(local, "rb")  # noqa: SIM115 - read errors and write errors differ
        except OSError as error:
            raise BuildError(f"{ref.filename}: cannot read {local} ({error.strerror})",
                             "check the find-links folder, or re-lock") from None
        with stream:
            while chunk := stream.read(1 << 20):
                sink(chunk)
    return digest.hexdigest()


def clear(root: Path | None = None) -> None:
    shutil.rmtree(root or cache_root(), ignore_errors=True)
