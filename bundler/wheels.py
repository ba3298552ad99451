"""One wheel -> its ``packages/`` entries, laid out the way an installer would.

Scheme rules (as ``installer`` applies them with ``packages/`` as both purelib and platlib):
the wheel's root and ``.data/purelib`` / ``.data/platlib`` go to ``packages/``; the dist-info
is kept, with ``INSTALLER`` added and ``RECORD`` rewritten to list exactly the files shipped,
with the hashes the wheel's RECORD declared (checked against the bytes first).
Not shipped: ``.data/scripts`` and console scripts (the service starts the agent from its
``entry_point``, never from ``bin/``; ``python -m`` works for any module), ``.data/headers``
and ``.data/data`` (they belong to a prefix the service has no use for), and ``.pyc`` /
``__pycache__`` (compiled for a different interpreter than the target, at best).

Members keep their compressed bytes: the zip writer copies them, so nothing is re-deflated and
nothing is extracted to disk.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, cast

import pathspec
from installer.exceptions import InstallerError
from installer.records import RecordEntry
from installer.sources import WheelFile
from packaging.utils import canonicalize_name, parse_wheel_filename

from bundler.errors import BuildError
from bundler.model import (
    EXEC_MODE,
    FILE_MODE,
    BytesData,
    Entry,
    ZipMemberData,
)
from bundler.records import (
    PACKAGES,
    parse_records,
    record_digest,
    record_hash_bytes,
    write_record,
)
from bundler.zipformat import inflate

log = logging.getLogger(__name__)
INSTALLER_NAME = b"fbundle\n"


@dataclass
class LaidOutWheel:
    name: str
    version: str
    filename: str
    sha256: str
    entries: list[Entry]
    dropped: list[str]
    dist_info: str = ""  # ``foo-1.0.dist-info`` (relative to packages/)

    @property
    def record_name(self) -> str:
        return f"{PACKAGES}{self.dist_info}/RECORD"

    def metadata_text(self) -> str:
        """The wheel's METADATA (Requires-Dist for the dependency graph)."""
        for entry in self.entries:
            if entry.name == f"{PACKAGES}{self.dist_info}/METADATA":
                return entry.read().decode("utf-8", "replace")
        return ""


@dataclass(frozen=True)
class Removed:
    """A file left out of ``packages/`` after layout, and why (for ``build --list``)."""

    name: str
    reason: str
    size: int
    zip_bytes: int


def reshape(wheel: LaidOutWheel, drop: Callable[[str], str | None],
            add: Sequence[Entry] = ()) -> tuple[LaidOutWheel, list[Removed]]:
    """``wheel`` without the entries ``drop`` gives a reason for, plus ``add`` (bytecode), with
    its RECORD rewritten to list exactly what ships. The dist-info is never dropped: entry
    points and ``importlib.metadata`` read it, and tools that strip it break packages."""
    from bundler.write import member_overhead, raw_compress_size

    folder = f"{PACKAGES}{wheel.dist_info}/"
    kept: list[Entry] = []
    removed: list[Removed] = []
    for entry in wheel.entries:
        if entry.name == wheel.record_name:
            continue
        reason = None if entry.name.startswith(folder) else drop(entry.name)
        if reason is None:
            kept.append(entry)
            continue
        raw = raw_compress_size(entry)
        removed.append(Removed(entry.name, reason, entry.size, member_overhead(entry.name)
                               + (raw if raw is not None else entry.size)))
    kept += list(add)
    shipped = [(e.name[len(PACKAGES):], e.digest(), e.size) for e in kept]
    record_path = wheel.record_name[len(PACKAGES):]
    record_bytes = write_record(shipped, record_path)
    origin = wheel.entries[0].origin if wheel.entries else "generated"
    kept.append(Entry(wheel.record_name, len(record_bytes), BytesData(record_bytes),
                      origin=origin))
    return replace(wheel, entries=kept), removed


def package_ignore(lines: Iterable[str]) -> pathspec.GitIgnoreSpec | None:
    """The ``.fbundleignore`` patterns that reach into ``packages/`` (those that start with
    ``packages/`` or ``/packages/``, and their ``!`` negations), or None. Only these apply to
    the laid-out wheels: a ``*.md`` meant for your docs must not strip a package's data."""
    chosen = [line for line in lines if line.strip().lstrip("!").lstrip("/").startswith(
        PACKAGES)]
    return pathspec.GitIgnoreSpec.from_lines(chosen) if chosen else None


def layout_wheel(path: Path, sha256: str, *, verified: bool = False) -> LaidOutWheel:
    """Lay out one wheel. ``verified`` skips re-hashing members already checked for this sha."""
    filename = path.name
    try:
        name, version, _, _ = parse_wheel_filename(filename)
    except ValueError as error:
        raise BuildError(f"{filename}: not a valid wheel name ({error})") from None
    origin = f"wheel:{name} {version}"
    try:
        with zipfile.ZipFile(path) as archive:
            wheel = WheelFile(archive)
            if not verified:
                wheel.validate_record(validate_contents=False)  # names, RECORD's own rules
            dist_info = wheel.dist_info_dir
            data_dir = wheel.data_dir
            records = {r.path: r for r in parse_records(wheel.read_dist_info("RECORD"))}
            infos = archive.infolist()
        if not verified:
            _check_contents(path, infos, records)
    except (InstallerError, zipfile.BadZipFile, KeyError, ValueError, OSError,
            zlib.error) as error:
        raise BuildError(
            f"{filename} is not a valid wheel ({error})",
            "the wheel in the cache or on the index is broken; clear the cache or report it",
        ) from None

    entries: list[Entry] = []
    dropped: list[str] = []
    shipped: list[tuple[str, str, int]] = []
    record_path = f"{dist_info}/RECORD"
    for info in infos:
        member = info.filename
        if info.is_dir() or member == record_path or member.startswith(
                (f"{dist_info}/RECORD.jws", f"{dist_info}/RECORD.p7s")):
            continue
        target = _target_path(member, data_dir)
        if target is None or _is_bytecode(target):
            dropped.append(member)
            continue
        record = records.get(member)
        digest = record_digest(record) if record else None
        mode = EXEC_MODE if (info.external_attr >> 16) & 0o111 else FILE_MODE
        entry = Entry(PACKAGES + target, info.file_size, ZipMemberData(path, info), mode,
                      origin=origin, sha256=digest)
        if digest is None:  # RECORD gave no sha256 for it: hash the bytes once
            entry = replace(entry, sha256=entry.digest())
        entries.append(entry)
        shipped.append((target, entry.digest(), info.file_size))
    installer_file = f"{dist_info}/INSTALLER"
    if not any(t == installer_file for t, _, _ in shipped):
        entries.append(Entry(PACKAGES + installer_file, len(INSTALLER_NAME),
                             BytesData(INSTALLER_NAME), origin=origin))
        shipped.append((installer_file, _sha(INSTALLER_NAME), len(INSTALLER_NAME)))
    record_bytes = write_record(shipped, record_path)
    entries.append(Entry(PACKAGES + record_path, len(record_bytes), BytesData(record_bytes),
                         origin=origin))
    if dropped:
        log.debug("%s: not shipped: %s", filename, ", ".join(dropped))
    return LaidOutWheel(str(canonicalize_name(name)), str(version), filename, sha256, entries,
                        dropped, dist_info)


def _check_contents(path: Path, infos: list[zipfile.ZipInfo],
                    records: dict[str, RecordEntry]) -> None:
    """Every member's size and hash against RECORD (installer's ``validate_contents``), read
    from one raw handle: a zipfile stream per member cost more than the bytes on wheels of
    thousands of small files."""
    with open(path, "rb") as stream:
        for info in infos:
            record = records.get(info.filename)
            if record is None or record.hash_ is None:
                continue  # validate_record already refused what must have a hash
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                with zipfile.ZipFile(path) as archive, archive.open(info) as member:
                    ok = record.validate_stream(cast(BinaryIO, member))
            else:
                digest = hashlib.new(record.hash_.name)
                for chunk in inflate(stream, info):
                    digest.update(chunk)
                ok = digest.digest() == record_hash_bytes(record.hash_.value) and (
                    record.size is None or record.size == info.file_size)
            if not ok:
                raise ValueError(f"hash / size of {info.filename} didn't match RECORD")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _target_path(member: str, data_dir: str) -> str | None:
    """Where a wheel member goes under ``packages/`` (None: not shipped)."""
    if not member.startswith(data_dir + "/"):
        return member
    scheme, _, rest = member[len(data_dir) + 1:].partition("/")
    if scheme in ("purelib", "platlib") and rest:
        return rest
    return None


def _is_bytecode(path: str) -> bool:
    return path.endswith((".pyc", ".pyo")) or "/__pycache__/" in f"/{path}"
