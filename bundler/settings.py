"""Numbers read from ``FBUNDLE_*`` environment variables (one line and exit 2 when malformed),
and the retry policy every HTTP client of fbundle shares."""

from __future__ import annotations

import email.utils
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bundler.errors import UsageError

#: HTTP statuses worth another try: rate limited (429) and the server's own failures.
RETRYABLE = frozenset({429, 500, 502, 503, 504})


def float_env(env: Mapping[str, str], name: str, default: float) -> float:
    """A non-negative number from ``env[name]`` (``default`` when unset or empty)."""
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number < 0 or number != number or number == float("inf"):
        raise UsageError(f"{name}={value!r} is not a number of seconds", f"unset {name} or fix it")
    return number


@dataclass(frozen=True)
class RetryPolicy:
    """How every retry fbundle makes waits: ``FBUNDLE_RETRIES`` (4), ``FBUNDLE_BACKOFF`` (1 s,
    doubled per retry) and ``FBUNDLE_BACKOFF_MAX`` (30 s, which also caps ``Retry-After``).
    One set of knobs for wheel downloads and the service client alike."""

    retries: int = 4
    backoff: float = 1.0
    backoff_max: float = 30.0

    @staticmethod
    def knobs(env: Mapping[str, str]) -> dict[str, Any]:
        """The retry fields as the environment sets them (defaults where unset)."""
        default = RetryPolicy()
        return {"retries": int(float_env(env, "FBUNDLE_RETRIES", default.retries)),
                "backoff": float_env(env, "FBUNDLE_BACKOFF", default.backoff),
                "backoff_max": float_env(env, "FBUNDLE_BACKOFF_MAX", default.backoff_max)}

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """The wait before retry ``attempt`` (0-based): ``Retry-After`` when the server gave
        one, else exponential backoff; both capped at ``backoff_max``."""
        return retry_delay(retry_after, attempt, self.backoff, self.backoff_max)


@dataclass(frozen=True)
class DownloadPolicy(RetryPolicy):
    """How wheel downloads wait and retry (``FBUNDLE_*``; tests use tiny values).

    - ``FBUNDLE_DOWNLOAD_DEADLINE`` (600 s): the most one download may take, however the bytes
      trickle in; the read timeout alone would let 1 byte every 0.5 s hold a build forever.
    - ``FBUNDLE_DOWNLOAD_TIMEOUT`` (60 s): the longest wait for the next bytes.
    - the retry knobs of ``RetryPolicy``.
    """

    deadline: float = 600.0
    read_timeout: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DownloadPolicy:
        env = os.environ if env is None else env
        default = cls()
        return cls(
            deadline=float_env(env, "FBUNDLE_DOWNLOAD_DEADLINE", default.deadline),
            read_timeout=float_env(env, "FBUNDLE_DOWNLOAD_TIMEOUT", default.read_timeout),
            **RetryPolicy.knobs(env),
        )


def retry_delay(retry_after: str | None, attempt: int, backoff: float, cap: float) -> float:
    """``Retry-After`` (seconds or an HTTP date, RFC 9110 10.2.3) when given and readable,
    else ``backoff * 2**attempt``; never negative, never above ``cap``."""
    value = (retry_after or "").strip()
    seconds = backoff * (2 ** attempt)
    if value:
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
                seconds = (when - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):
                pass
    return float(max(0.0, min(seconds, cap)))
