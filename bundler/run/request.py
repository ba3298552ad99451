"""The one request ``fbundle run --invoke`` sends to the booted agent.

The shapes are those of ``fbundle invoke`` (the service's invoke, issue 16), so what passes
locally is what the service is sent: ``responses`` -> ``POST /responses`` with
``{"input": TEXT, "stream": false}`` (a JSON object is sent as given, ``stream`` false unless it
says otherwise); ``invocations`` -> ``POST /invocations`` with ``{"input": TEXT}`` or the JSON
as given. Kept here until that builder is on main (``bundler/deploy`` is another area).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bundler.errors import UsageError

INVOCABLE = ("responses", "invocations")


@dataclass(frozen=True)
class LocalRequest:
    protocol: str
    route: str
    body: bytes


def protocol_of(declared: list[str]) -> str:
    """The first HTTP protocol the definition declares (the article's default: responses)."""
    for protocol in declared:
        if protocol in INVOCABLE:
            return protocol
    if declared:
        raise UsageError(f"the definition declares {', '.join(declared)}, none of which "
                         "fbundle run can invoke over HTTP",
                         "declare responses or invocations in protocol_versions, or run "
                         "without --invoke")
    return "responses"


def local_request(protocol: str, value: str) -> LocalRequest:
    """``value`` is a JSON body, or plain text sent as the request's ``input``."""
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    if isinstance(parsed, str):
        payload: Any = {"input": parsed}
        raw = None
    else:
        payload, raw = parsed, value.encode("utf-8")
    if protocol == "responses":
        if not isinstance(payload, dict):
            raise UsageError("--invoke for the responses protocol must be a JSON object or text",
                             'pass for example --invoke \'{"input": "Hello"}\'')
        payload.setdefault("stream", False)
        return LocalRequest(protocol, "/responses", json.dumps(payload).encode("utf-8"))
    body = raw if raw is not None else json.dumps(payload).encode("utf-8")
    return LocalRequest(protocol, "/invocations", body)
