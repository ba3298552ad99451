"""The one request ``fbundle run --invoke`` sends to the booted agent: built by ``fbundle
invoke``'s own builder (``bundler.deploy.invoke.build_request``), so what passes locally is
what the service is sent — ``responses`` -> ``POST /responses`` with ``{"input": TEXT,
"stream": false}``, ``invocations`` -> ``POST /invocations`` with ``{"input": TEXT}``; a JSON
value that is not a string is sent as the whole body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bundler.deploy.invoke import NOT_INVOCABLE, PROTOCOLS, build_request
from bundler.errors import UsageError


@dataclass(frozen=True)
class LocalRequest:
    protocol: str
    route: str
    body: bytes
    content_type: str


def protocol_of(declared: list[str]) -> str:
    """The first HTTP protocol the definition declares (none declared: responses, the
    article's example)."""
    for protocol in declared:
        if protocol in PROTOCOLS:
            return protocol
    if declared:
        cannot = [p for p in declared if p in NOT_INVOCABLE] or declared
        raise UsageError(f"the definition declares {', '.join(cannot)}, which fbundle run "
                         "cannot invoke over HTTP",
                         "declare responses or invocations in protocol_versions, or run "
                         "without --invoke")
    return "responses"


def local_request(protocol: str, value: str) -> LocalRequest:
    """``value`` is a JSON body, or text (or a JSON string) sent as the request's input."""
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    if isinstance(parsed, str):
        request = build_request(protocol, input_text=parsed)
    else:
        request = build_request(protocol, body=value)
    return LocalRequest(protocol, request.route(None), request.body, request.content_type)
