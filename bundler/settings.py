"""Numbers read from ``FBUNDLE_*`` environment variables: one line and exit 2 when malformed."""

from __future__ import annotations

from collections.abc import Mapping

from bundler.errors import UsageError


def float_env(env: Mapping[str, str], name: str, default: float) -> float:
    """A non-negative number from ``env[name]`` (``default`` when unset or empty)."""
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number < 0:
        raise UsageError(f"{name}={value!r} is not a number of seconds", f"unset {name} or fix it")
    return number
