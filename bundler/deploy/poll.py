"""Wait for a version to settle: the article's poll loop, with backoff, deadline, second look.

The spec's ``AgentVersionStatus`` (``src/agents/models.tsp``) is ``creating``, ``active``,
``failed``, ``deleting``, ``deleted``. ``creating`` is the only one worth waiting on; a version
being deleted will never become active, so ``deleting``/``deleted`` end the wait at once. A
settled status is confirmed by one more read before it is believed (azd's deploy does the same,
to ride out a status that flickers while the platform swaps versions in).

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

PENDING = ("creating",)
SETTLED = ("active", "failed", "deleting", "deleted")
STATUSES = PENDING + SETTLED


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
    """The version ended ``failed`` (or was deleted); ``error.code``/``error.message`` say why."""


def status_of(body: dict[str, Any], what: str) -> str:
    """The ``status`` of a version body; a body without one is an error at once, not a timeout."""
    status = body.get("status")
    if not isinstance(status, str) or not status:
        raise FbundleError(f"{what}: the service's answer has no status",
                           "check --endpoint and --api-version point at Foundry Agent Service")
    return status


def wait_until_settled(
    get: Callable[[], dict[str, Any]],
    *,
    timeout: float,
    policy: PollPolicy | None = None,
    on_status: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    what: str = "version",
) -> dict[str, Any]:
    """Call ``get`` until the status is settled, and the same on the next read; return that body.

    An unknown status is waited on like ``creating`` (the spec's unions grow). Raises
    :class:`FbundleError` when ``timeout`` seconds pass first.
    """
    policy = policy or PollPolicy()
    deadline = clock() + timeout
    interval = policy.first
    last: str | None = None
    candidate: str | None = None
    while True:
        body = get()
        status = status_of(body, what)
        if status != last and on_status:
            on_status(status)
        last = status
        if status in SETTLED:
            if candidate == status:
                return body
            candidate = status  # believed on the next read, one short interval later
            log.debug("status %s; confirming", status)
            sleep(max(0.0, min(policy.first, deadline - clock())))
            continue
        candidate = None
        left = deadline - clock()
        if left <= 0:
            raise FbundleError(
                f"{what} {body.get('version', '?')} is still {status} after {timeout:g}s",
                "check later with `fbundle status`; a remote build can take over 10 minutes "
                "(a bundled build avoids it), or raise --timeout")
        log.debug("status %s; next poll in %.2fs", status, min(interval, left))
        sleep(min(interval, left))
        interval = min(policy.longest, interval * policy.factor)


def failure_line(body: dict[str, Any]) -> str:
    """``error.code: error.message`` of a failed version (the article's first thing to read).

    The spec removes ``error`` from the version object under ``v1`` (``@removed(Versions.v1)``
    in ``src/agents/models.tsp``) while the article documents it; either answer is read.
    """
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code") or "unknown_error"
        message = " ".join(str(error.get("message") or "no message").split())
        return f"{code}: {message}"
    return "the service gave no error object (`fbundle logs --kind system` may say more)"
