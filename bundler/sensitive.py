"""Files that look like secrets: what ``collect`` leaves out and ``validate`` warns about.

One home for the knowledge, and one judge (:class:`SecretScan`), so that ``build`` (which
leaves such files out unless a ``!pattern`` in ``.fbundleignore`` ships them) and ``validate``
(FB112, on any zip or folder) judge a file the same way from the same bytes. Two kinds of
evidence:

- the name: key stores, SSH keys, ``*.env`` files, ``secrets.json``, Azure Functions'
  ``local.settings.json``, credential dot-files (:data:`SECRET_NAMES`, gitignore syntax);
- the bytes of every text-like file (no NUL in its first :data:`TEXT_SNIFF` bytes, git's own
  test), streamed, up to :data:`SCAN_LIMIT`: a PEM private key (its header and the start of its
  body, raw or ``\n``-escaped inside a string), an AWS secret key assigned a value, or a JSON
  document of a known credential shape (a Google Cloud service-account key, gcloud user
  credentials, an Azure service principal written by ``az ad sp create-for-rbac --sdk-auth``).

A ``*.pem`` that holds only certificates is public (a CA bundle a client trusts): it is judged
by its bytes, not its name, so an agent that pins a CA still ships it. Nothing under
``packages/`` or in a ``.dist-info`` is judged: a dependency's data is not the project's secret.
A verdict names what the file is, never what it holds: no secret value reaches a message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

import pathspec

SCAN_LIMIT = 1024 * 1024  # how much of a file the content rules read (in chunks, never whole)
TEXT_SNIFF = 8000  # a NUL in the first 8000 bytes makes a file binary (git's xdiff test)
_OVERLAP = 512  # bytes kept from one chunk to the next, so a match across chunks is seen

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
# The header and the start of a body (base64, or an encrypted key's RFC 1421 headers), with
# real or escaped newlines: a string that merely names the header (a parser's startswith) is
# not a key.
_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ ){0,4}PRIVATE KEY(?: BLOCK)?-----"
                          rb"(?:\s|\\[rn]){1,8}(?:Proc-Type:|[A-Za-z0-9+/]{16})")
_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
# A value assigned, as in ~/.aws/credentials, a .env or code (40 characters of base64):
# ``os.environ["AWS_SECRET_ACCESS_KEY"]`` only names the variable.
_AWS_SECRET = re.compile(rb"(?i)aws_secret_access_key[\"']?\s*[=:]\s*[\"']?"
                         rb"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])")
# Substring tests first: the case-insensitive pattern is ten times slower than they are.
_AWS_MARKERS = (b"_access_key", b"_ACCESS_KEY", b"_Access_Key")
_JSON_MARKERS = (b'"private_key"', b'"refresh_token"', b'"clientSecret"')


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


def judged(name: str) -> bool:
    """Whether the file at ``name`` (a bundle path) is the project's to judge at all."""
    return not (name.startswith("packages/") or ".dist-info/" in name)


class SecretScan:
    """Judges one file from its bytes as they stream past, in chunks of any size.

    ``feed`` every chunk until it returns False (the file is binary, or :data:`SCAN_LIMIT`
    bytes were read) or the file ends; then :meth:`verdict` says what the file is if it looks
    like a secret (its bytes first, then its name), or None. Memory stays under the limit plus
    a chunk: only a JSON document is kept, and only while it fits.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._seen = 0
        self._tail = b""
        self._binary: bool | None = None
        self._truncated = False
        self._kind: str | None = None
        self._certificate = False
        self._json: bytearray | None = bytearray() if name.lower().endswith(".json") else None

    @property
    def wants_more(self) -> bool:
        # A JSON document is read to its end even after a key was seen: its shape (a
        # service-account key holds a private key) says more.
        return not (self._binary or self._truncated or (self._kind and self._json is None))

    def feed(self, chunk: bytes) -> bool:
        """Look at the next bytes; False once nothing more would change the verdict."""
        if not self.wants_more or not chunk:
            return self.wants_more
        room = SCAN_LIMIT - self._seen
        if len(chunk) > room:
            chunk, self._truncated = chunk[:room], True
        if self._binary is None and self._seen < TEXT_SNIFF:
            if b"\0" in chunk[:TEXT_SNIFF - self._seen]:
                self._binary = True
                self._json = None
                return False
            if self._seen + len(chunk) >= TEXT_SNIFF:
                self._binary = False
        self._seen += len(chunk)
        window = self._tail + chunk
        if self._kind:
            pass
        elif _PRIVATE_KEY.search(window):
            self._kind = "holds a private key"
        elif any(m in window for m in _AWS_MARKERS) and _AWS_SECRET.search(window):
            self._kind = "holds AWS credentials (a secret access key)"
        self._certificate = self._certificate or _CERTIFICATE in window
        self._tail = window[-_OVERLAP:]
        if self._json is not None:
            self._json += chunk
            if bytes(self._json[:64].lstrip()[:1]) not in (b"", b"{") or self._truncated:
                self._json = None
        return self.wants_more

    def content_verdict(self) -> str | None:
        """What the bytes fed so far show, if anything (the name is not consulted)."""
        if self._binary:
            return None
        if self._json and any(m in self._json for m in _JSON_MARKERS) \
                and (shape := _credential_json(bytes(self._json))):
            return shape
        if self._kind:
            return self._kind
        if is_pem(self.name) and not self._certificate:
            return "a PEM file without certificates (keys, most likely)"
        return None

    def verdict(self) -> str | None:
        """What the file is, if it looks like a secret: by its bytes, else by its name."""
        return self.content_verdict() or secret_by_name(self.name)


def judge(name: str, chunks: Iterable[bytes]) -> str | None:
    """:class:`SecretScan` over ``chunks`` (read only as far as the scan wants)."""
    scan = SecretScan(name)
    for chunk in chunks:
        if not scan.feed(chunk):
            break
    return scan.verdict()


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
