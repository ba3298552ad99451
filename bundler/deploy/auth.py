"""Where the bearer token comes from, and a wrapper that keeps it out of every output.

The service wants a token for ``https://ai.azure.com/.default``. Sources are tried in the order a
user expects from the article and azd: an explicit ``FBUNDLE_TOKEN``, then the Azure CLI the
article's examples use, then ``azure-identity``'s ``DefaultAzureCredential`` when the optional
extra ``fbundle[azure]`` is installed. The token is held in :class:`Secret`, whose ``str`` and
``repr`` never show it, so an f-string, a log record or an exception cannot leak it by accident.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bundler.errors import UsageError
from bundler.redact import REDACTED
from bundler.runner import Runner, run

log = logging.getLogger(__name__)

RESOURCE = "https://ai.azure.com"
SCOPE = f"{RESOURCE}/.default"
AZ_TIMEOUT = 120  # seconds; az can prompt for nothing here, but a broken proxy hangs it
AZ_COMMAND = ["az", "account", "get-access-token", "--resource", RESOURCE,
              "--query", "accessToken", "-o", "tsv"]

class Secret:
    """A string that refuses to be printed: ``str``/``repr``/``format`` all give ``<redacted>``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value, for the one place that needs it: the Authorization header."""
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the secret replaced (for echoed error bodies)."""
        return text.replace(self._value, REDACTED) if self._value else text

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __reduce__(self) -> Any:  # pickling would write the token to disk
        raise TypeError("a Secret cannot be pickled")


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot go into an ``Authorization`` header, without showing any of it.

    A bearer token is printable ASCII without spaces (RFC 6750's b64token, in practice a JWT).
    What `az account get-access-token` prints without ``-o tsv`` is JSON on several lines; httpx
    would put it in its "Illegal header value" error in clear, so it is refused before any request.
    """
    if not token:
        return "is empty"
    if "\n" in token or "\r" in token:
        return ("holds a line break (is it the JSON `az account get-access-token` prints "
                "without `--query accessToken -o tsv`?)")
    if not token.isascii():
        return "holds non-ASCII characters"
    if any(not 0x21 <= ord(c) <= 0x7E for c in token):
        return "holds spaces or control characters"
    return None


def checked(token: str, source: str, fix: str) -> Credential:
    """A :class:`Credential`, or one line (exit 2) saying what is wrong with the token."""
    if problem := token_problem(token):
        raise UsageError(f"the token from {source} {problem}; nothing was sent", fix)
    return Credential(Secret(token), source, fix)


@dataclass(frozen=True)
class Credential:
    """A token plus where it came from, so a 401/403 can say which source to fix."""

    token: Secret
    source: str
    fix: str

    @property
    def authorization(self) -> str:
        return f"Bearer {self.token.reveal()}"


FIX_ENV = ("set FBUNDLE_TOKEN to a fresh token for https://ai.azure.com "
           "(`az account get-access-token --resource https://ai.azure.com`), or unset it to use "
           "the Azure CLI")
FIX_AZ = ("run `az login` for the tenant that owns the project, and check "
          "`az account get-access-token --resource https://ai.azure.com` works")
FIX_IDENTITY = ("check the identity DefaultAzureCredential picks (AZURE_CLIENT_ID / "
                "managed identity / az login) can get a token for https://ai.azure.com")


def get_credential(
    env: Mapping[str, str] | None = None,
    runner: Runner = run,
) -> Credential:
    """The first token found: ``FBUNDLE_TOKEN``, the Azure CLI, then ``DefaultAzureCredential``."""
    env = os.environ if env is None else env
    tried: list[str] = []
    if token := env.get("FBUNDLE_TOKEN", "").strip():
        log.debug("token from FBUNDLE_TOKEN")
        return checked(token, "FBUNDLE_TOKEN", FIX_ENV)
    tried.append("FBUNDLE_TOKEN is not set")

    if az := shutil.which("az", path=env.get("PATH")):
        try:
            done = runner([az, *AZ_COMMAND[1:]], timeout=AZ_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as error:
            tried.append(f"`az` could not run ({type(error).__name__})")
        else:
            token = done.stdout.strip()
            if done.returncode == 0 and token:
                log.debug("token from the Azure CLI")
                return checked(token, "the Azure CLI (az account get-access-token)", FIX_AZ)
            first = (done.stderr.strip().splitlines() or ["no token printed"])[0]
            # az prints no token on failure, but be safe: never echo stdout.
            tried.append(f"`az account get-access-token` failed: {first[:200]}")
    else:
        tried.append("`az` is not on PATH")

    try:
        identity: Any = importlib.import_module("azure.identity")
    except ImportError:
        tried.append("azure-identity is not installed (pip install 'fbundle[azure]')")
    else:
        try:
            access = identity.DefaultAzureCredential().get_token(SCOPE)
        except Exception as error:  # azure-identity raises its own family; any failure is final
            tried.append(f"DefaultAzureCredential failed: {type(error).__name__}")
        else:
            log.debug("token from DefaultAzureCredential")
            return checked(str(access.token).strip(), "azure-identity DefaultAzureCredential",
                           FIX_IDENTITY)

    raise UsageError("no credential found: " + "; ".join(tried),
                     "set FBUNDLE_TOKEN, run `az login`, or install 'fbundle[azure]'")
