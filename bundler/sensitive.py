"""Files that look like secrets: what ``collect`` leaves out and ``validate`` warns about.

One home for the knowledge, so that ``build`` (which leaves such files out unless a ``!pattern``
in ``.fbundleignore`` ships them) and ``validate`` (FB112, on any zip or folder) judge a file the
same way. Two kinds of evidence:

- the name: key stores, SSH keys, ``*.env`` files, ``secrets.json``, Azure Functions'
  ``local.settings.json``, credential dot-files (:data:`SECRET_NAMES`, gitignore syntax);
- the bytes: a PEM private-key header in the first :data:`SNIFF_BYTES`, or a JSON document of
  a known credential shape (a Google Cloud service-account key, gcloud user credentials, an
  Azure service principal written by ``az ad sp create-for-rbac --sdk-auth``, AWS keys).

A ``*.pem`` that holds only certificates is public (a CA bundle a client trusts): it is judged
by its bytes, not its name, so an agent that pins a CA still ships it.
"""

from __future__ import annotations

import json
import re

import pathspec

SNIFF_BYTES = 64 * 1024  # how much of a file the content rules look at

#: (gitignore pattern, what such a file is): matched against the path inside the bundle.
SECRET_NAMES: tuple[tuple[str, str], ...] = (
    ("*.key", "a private key file"),
    ("*.p12", "a PKCS#12 key store"),
    ("*.pfx", "a PKCS#12 key store"),
    ("id_rsa", "an SSH private key"),
    ("id_dsa", "an SSH private key"),
    ("id_ecdsa", "an SSH private key"),
    ("id_ed25519", "an SSH private key"),
    ("secrets.json", "a secrets file"),
    ("*.env", "an environment file (often holding secrets)"),
    (".envrc", "a direnv file (often exporting secrets)"),
    ("local.settings.json", "Azure Functions local settings (often holding connection strings)"),
    (".netrc", "a .netrc credentials file"),
    (".pypirc", "a .pypirc upload credentials file"),
)
#: Judged by content: a private key makes it a secret, certificates alone do not.
PEM_PATTERN = "*.pem"

_NAMES = pathspec.GitIgnoreSpec.from_lines([p for p, _ in SECRET_NAMES])
_PEM = pathspec.GitIgnoreSpec.from_lines([PEM_PATTERN])
_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


def name_patterns() -> list[str]:
    """The patterns ``collect`` adds to its default excludes (``*.pem`` is judged by bytes)."""
    return [p for p, _ in SECRET_NAMES]


def secret_by_name(name: str) -> str | None:
    """What the file at ``name`` (a bundle path) is, if its name alone says it holds secrets."""
    result = _NAMES.check_file(name)
    if result.include and result.index is not None:
        return SECRET_NAMES[result.index][1]
    return None


def is_pem(name: str) -> bool:
    return bool(_PEM.match_file(name))


def secret_by_content(name: str, head: bytes, size: int) -> str | None:
    """What the file is, if its first bytes (``head``, up to :data:`SNIFF_BYTES`) show secrets.

    ``size`` is the whole file's: a JSON document is parsed only when ``head`` holds all of it.
    """
    if size <= len(head) and name.lower().endswith(".json") and head.lstrip()[:1] == b"{" \
            and (shape := _credential_json(head)):
        return shape
    if _PRIVATE_KEY.search(head):
        return "holds a private key"
    if is_pem(name) and _CERTIFICATE not in head:
        return "a PEM file without certificates (keys, most likely)"
    if b"aws_secret_access_key" in head.lower():
        return "holds AWS credentials"
    return None


def wants_content(name: str, size: int) -> bool:
    """Whether ``validate`` should read this file for :func:`secret_by_content`.

    Sources only (nothing under ``packages/`` or a ``.dist-info``); a PEM or key-named file
    anywhere, JSON files near the root (a key dropped beside the code: ``gcp-key.json``,
    ``config/sa.json``) up to :data:`SNIFF_BYTES`. Deeper JSON files are mostly package data
    (botocore ships thousands), which a bundle of dependencies at the root would make slow.
    """
    if name.startswith("packages/") or ".dist-info/" in name:
        return False
    if is_pem(name) or secret_by_name(name):
        return True
    return name.lower().endswith(".json") and name.count("/") <= 1 and size <= SNIFF_BYTES


def _credential_json(data: bytes) -> str | None:
    try:
        document = json.loads(data.decode("utf-8"))
    # Hostile JSON (deep nesting, huge numbers, bad UTF-8) is simply not a credential shape.
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    kind = document.get("type")
    if kind == "service_account" and "private_key" in document:
        return "a Google Cloud service-account key"
    if kind == "authorized_user" and "refresh_token" in document:
        return "Google Cloud user credentials (a refresh token)"
    if "clientSecret" in document and ("clientId" in document or "tenantId" in document):
        return "Azure service-principal credentials (a client secret)"
    return None
