"""Secrets never leave the program: one home for taking credentials out of text.

Every message, log line or file that may hold a URL or text a server echoed goes through here:
``redact_url`` for one URL, ``redact_urls`` for free text (a resolver's command line or output,
an HTTP client's log record), and ``deploy.auth.Secret`` for a token's own value.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

REDACTED = "<redacted>"

# scheme://user[:password]@host — userinfo is anything up to the last '@' before the host's end.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact_url(url: str) -> str:
    """A URL without credentials, fit to print."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return parts._replace(netloc=host).geturl()
    return url


def redact_urls(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``<redacted>``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
