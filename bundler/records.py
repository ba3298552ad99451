"""RECORD files and the ``packages/`` paths they name: one codec, as ``installer.records`` has it.

A wheel's RECORD, the RECORD ``build`` writes for the files it ships, the FB405/FB406 checks and
the provenance of a file in ``packages/`` all read and write the same rows; they meet here, so
no check has to import a build stage to understand a RECORD.
"""

from __future__ import annotations

import base64
import csv
import io
import posixpath

from installer.records import RecordEntry, parse_record_file

PACKAGES = "packages/"
#: Written by ``build --exclude-package``: the distributions left out on purpose, one canonical
#: name a line, so ``validate`` (which sees only the zip) does not call them missing.
EXCLUDED_FILE = "packages/.fbundle-excluded"


def record_hash_bytes(value: str) -> bytes:
    """A RECORD hash value (urlsafe base64, padding stripped) as the digest's bytes."""
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def record_hash_value(digest: bytes) -> str:
    """A digest as RECORD writes it: urlsafe base64 without padding."""
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def in_packages(record_path: str) -> str | None:
    """``packages/<path>`` for a RECORD path, or None when it points outside (scripts, data)."""
    return in_site(record_path, PACKAGES)


def in_site(record_path: str, site: str) -> str | None:
    """The archive path of a RECORD path for a dist-info installed in ``site`` (``packages/``,
    or ``""`` for azd's layout, installed at the zip root), or None when it points outside."""
    if record_path.startswith("/") or "\\" in record_path:
        return None
    full = posixpath.normpath(site + record_path)
    if full.startswith("../") or full == ".." or (site and not full.startswith(site)):
        return None
    return full


def dist_info_site(folder: str) -> str | None:
    """Where the dist-info folder ``folder`` (an archive path, no trailing slash) installs:
    ``packages/`` for ``packages/x-1.dist-info``, ``""`` for ``x-1.dist-info`` at the root."""
    if not folder.endswith(".dist-info"):
        return None
    parts = folder.split("/")
    if len(parts) == 2 and parts[0] + "/" == PACKAGES:
        return PACKAGES
    return "" if len(parts) == 1 else None


def record_digest(entry: RecordEntry) -> str | None:
    """RECORD's sha256 as hex, or None for another algorithm."""
    if entry.hash_ is None or entry.hash_.name != "sha256":
        return None
    return record_hash_bytes(entry.hash_.value).hex()


def parse_records(text: str) -> list[RecordEntry]:
    rows = parse_record_file(io.StringIO(text))
    return [RecordEntry.from_elements(path, hash_, size) for path, hash_, size in rows]


def write_record(shipped: list[tuple[str, str, int]], record_path: str) -> bytes:
    """A RECORD for the files shipped, sorted, with RECORD's own line last and hashless."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for target, digest, size in sorted(shipped):
        writer.writerow([target, "sha256=" + record_hash_value(bytes.fromhex(digest)), size])
    writer.writerow([record_path, "", ""])
    return out.getvalue().encode("utf-8")
