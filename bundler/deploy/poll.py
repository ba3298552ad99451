"""Wait for a version to leave ``creating``: the article's poll loop, with backoff and a deadline.

The article polls every 5 s forever; we start at 2 s, grow to 10 s (a remote build can take
minutes, a bundled one seconds) and give up at ``--timeout``. The intervals come from
``FBUNDLE_POLL_INTERVAL`` / ``FBUNDLE_POLL_MAX_INTERVAL`` so tests can poll in milliseconds.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bundler.errors import FbundleError
from bundler.settings import float_env

log = logging.getLogger(__name__)

SETTLED = ("active", "failed")


@dataclass(frozen=True)
class PollPolicy:
    first: float = 2.0
    longest: float = 10.0
    factor: float = 1.5

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PollPolicy:
        env = os.environ if env is None else env
        first = float_env(env, "FBUNDLE_POLL_INTERVAL", cls.first)
        return cls(first, max(first, float_env(env, "FBUNDLE_POLL_MAX_INTERVAL", cls.longest)))


class VersionFailed(FbundleError):
    """The service reported ``failed``: its ``error.code`` and ``error.message`` say why."""


def wait_until_settled(
    get: Callable[[], dict[str, Any]],
    *,
    timeout: float,
    policy: PollPolicy | None = None,
    on_status: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Call ``get`` until the version's status is ``active`` or ``failed``; return that body.

    Raises :class:`FbundleError` when ``timeout`` seconds pass first.
    """
    policy = policy or PollPolicy()
    deadline = clock() + timeout
    interval = policy.first
    last = None
    while True:
        body = get()
        status = str(body.get("status", "unknown"))
        if status != last and on_status:
            on_status(status)
        last = status
        if status in SETTLED:
            return body
        left = deadline - clock()
        if left <= 0:
            raise FbundleError(
                f"version {body.get('version', '?')} is still {status} after {timeout:g}s",
                "check later with `fbundle status`; a remote build can take over 10 minutes "
                "(a bundled build avoids it), or raise --timeout")
        log.debug("status %s; next poll in %.2fs", status, min(interval, left))
        sleep(min(interval, left))
        interval = min(policy.longest, interval * policy.factor)


def failure_line(body: dict[str, Any]) -> str:
    """``error.code: error.message`` of a failed version (the article's first thing to read)."""
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code") or "unknown_error"
        message = " ".join(str(error.get("message") or "no message").split())
        return f"{code}: {message}"
    return "the service gave no error object"
