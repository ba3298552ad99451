"""Where every installed file came from: the distribution whose RECORD lists it (one answer for
``inspect --provenance`` and for the checks' "(from X)"), and the wheel that distribution was
installed from (the lock, or the ``<zip>.json`` sidecar). Dist-infos count in ``packages/``
and at the zip root (azd's layout).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from email.parser import HeaderParser
from pathlib import Path
from typing import Any, Literal

from installer.records import InvalidRecordEntry, parse_record_file
from packaging.utils import canonicalize_name

from bundler.errors import UsageError
from bundler.identity import BuildInfo
from bundler.lock import LOCK_FILE, Lock, read_any
from bundler.model import Bundle, Entry
from bundler.records import PACKAGES, dist_info_site, in_site, record_hash_bytes

Row = tuple[str, str, str]  # a RECORD row: path, hash, size


# --- the distribution a file belongs to (shared with the checks) ------------------------------


def is_record(name: str) -> bool:
    """A dist-info RECORD: ``packages/<dist>.dist-info/RECORD``, or ``<dist>.dist-info/RECORD``
    at the zip root (azd's ``pip install -t .`` layout)."""
    folder, _, base = name.rpartition("/")
    return base == "RECORD" and dist_info_site(folder) is not None


def distribution(folder: str, metadata: str | None = None) -> tuple[str, str]:
    """(name, version) of the distribution installed as ``folder`` (``packages/x-1.dist-info``):
    its METADATA's Name and Version, else what the folder's name says."""
    stem = folder.rstrip("/").rsplit("/", 1)[-1].removesuffix(".dist-info")
    name, _, version = stem.rpartition("-") if "-" in stem else (stem, "", "")
    if metadata is not None:
        headers = HeaderParser().parsestr(metadata)
        name = str(headers.get("Name") or "").strip() or name
        version = str(headers.get("Version") or "").strip() or version
    return name, version


def dist_label(folder: str, metadata: str | None = None) -> str:
    """``PyYAML 6.0.2``: the distribution installed as ``folder``, for messages."""
    return " ".join(part for part in distribution(folder, metadata) if part)


def claims(records: Mapping[str, Iterable[Row]]) -> dict[str, tuple[str, str | None]]:
    """Archive path -> (the dist-info folder whose RECORD lists it, the sha256 hex the row
    declares or None). RECORDs are taken in name order and the first to list a path owns it;
    rows pointing outside the dist-info's site (scripts, data) own nothing."""
    owned: dict[str, tuple[str, str | None]] = {}
    for record in sorted(records):
        folder = record.rsplit("/", 1)[0]
        site = dist_info_site(folder)
        if site is None:
            continue
        for path, hash_text, _ in records[record]:
            full = in_site(path, site)
            if full is None or full in owned:
                continue
            expected = None
            if hash_text and hash_text.startswith("sha256="):
                try:
                    expected = record_hash_bytes(hash_text.split("=", 1)[1]).hex()
                except ValueError:
                    expected = "(not a sha256)"
            owned[full] = (folder, expected)
    return owned


def owner_folders(records: Mapping[str, Iterable[Row]]) -> dict[str, str]:
    """Archive path -> the dist-info folder whose RECORD lists it."""
    return {path: folder for path, (folder, _) in claims(records).items()}


def owner_labels(records: Mapping[str, Iterable[Row]], texts: Mapping[str, str]
                 ) -> dict[str, str]:
    """Archive path -> ``PyYAML 6.0.2``, the distribution that brought it in (for a finding
    about the file); ``texts`` holds the METADATA files already read."""
    labels: dict[str, str] = {}
    result = {}
    for path, folder in owner_folders(records).items():
        if folder not in labels:
            labels[folder] = dist_label(folder, texts.get(f"{folder}/METADATA"))
        result[path] = labels[folder]
    return result


def parse_record(text: str) -> list[Row] | None:
    """A RECORD's rows, or None when it is not valid CSV."""
    try:
        return list(parse_record_file(text.splitlines()))
    except (csv.Error, InvalidRecordEntry, ValueError):
        return None


# --- provenance of a bundle --------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """The installed distribution a file belongs to, and the wheel it came from if known."""

    name: str
    version: str
    dist_info: str
    wheel: str | None = None
    sha256: str | None = None
    url: str | None = None
    source: str | None = None  # "lock", "sidecar", or None when neither names the wheel
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "dist_info": self.dist_info,
                "wheel": self.wheel, "sha256": self.sha256, "url": self.url,
                "source": self.source, "note": self.note}


@dataclass(frozen=True)
class FileOrigin:
    name: str
    owner: Owner | None
    status: Literal["ok", "modified", "unowned"]


@dataclass
class Provenance:
    files: list[FileOrigin]
    owners: list[Owner]
    missing: list[str]  # RECORD lines whose file is not in the bundle
    lock_source: str | None

    @property
    def unowned(self) -> list[str]:
        return [f.name for f in self.files if f.status == "unowned"]

    @property
    def modified(self) -> list[str]:
        return [f.name for f in self.files if f.status == "modified"]

    def as_json(self) -> dict[str, Any]:
        return {
            "lock": self.lock_source,
            "distributions": [o.as_json() for o in self.owners],
            "files": [{"name": f.name, "status": f.status,
                       "distribution": f.owner.name if f.owner else None,
                       "version": f.owner.version if f.owner else None,
                       "wheel": f.owner.wheel if f.owner else None,
                       "sha256": f.owner.sha256 if f.owner else None,
                       "url": f.owner.url if f.owner else None} for f in self.files],
            "unowned": self.unowned,
            "modified": self.modified,
            "missing": self.missing,
        }


def find_lock(zip_path: Path) -> Path | None:
    """``pylock.toml`` of the project a zip was built from: beside it, or above ``dist/``."""
    here = zip_path.resolve().parent
    for folder in (here, here.parent) if here.name == "dist" else (here,):
        if (folder / LOCK_FILE).is_file():
            return folder / LOCK_FILE
    return None


def wheels_known(zip_path: Path, lock_path: Path | None, bundle: Bundle | None = None
                 ) -> tuple[dict[str, Owner], str | None]:
    """Canonical name -> Owner template (wheel facts only), from the lock or the sidecar.
    ``bundle`` is the zip already read (its own pylock.toml is looked up there)."""
    path = lock_path or find_lock(zip_path)
    info = BuildInfo.read(zip_path)
    runtime = info.runtime if info else None
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"{path}: cannot be read ({error})", "fix or delete it") from None
        return _from_lock(read_any(text, str(path), runtime)), str(path)
    inside = _lock_inside(zip_path, bundle, runtime)
    if inside is not None:
        return _from_lock(inside), f"{zip_path.name}!{LOCK_FILE}"
    packages = info.packages if info else None
    if packages:
        known = {}
        for item in packages:
            if isinstance(item, dict) and item.get("name") and item.get("version"):
                known[str(canonicalize_name(str(item["name"])))] = Owner(
                    str(item["name"]), str(item["version"]), "", item.get("wheel"),
                    item.get("sha256"), item.get("url"), "sidecar")
        return known, zip_path.name + ".json"
    return {}, None


def _from_lock(lock: Lock) -> dict[str, Owner]:
    return {key: Owner(pin.name, pin.version, "", pin.wheel.filename, pin.wheel.sha256,
                       pin.wheel.url or pin.wheel.path, "lock")
            for key, pin in lock.by_name().items()}


def _lock_inside(zip_path: Path, bundle: Bundle | None, runtime: str | None = None
                 ) -> Lock | None:
    """The project's pylock.toml when it travelled inside the zip (sources include it)."""
    if bundle is None:
        if not zip_path.is_file():
            return None
        bundle = Bundle.load(zip_path)
    entry = bundle.by_name().get(LOCK_FILE)
    if entry is None or not entry.is_file:
        return None
    try:
        text = entry.read().decode("utf-8")
    except (OSError, ValueError, EOFError):
        return None
    return read_any(text, f"{zip_path}!{LOCK_FILE}", runtime)


def provenance(bundle: Bundle, known: dict[str, Owner], lock_source: str | None = None,
               digests: Mapping[str, str] | None = None) -> Provenance:
    """Which distribution (and wheel) every file under ``packages/`` belongs to, by the
    dist-info RECORDs inside the bundle; a file whose bytes no longer match its RECORD hash is
    ``modified``, one no RECORD lists is ``unowned``. ``digests`` (name -> sha256) are the
    hashes already computed, so the bytes are not read twice."""
    entries = {e.name: e for e in bundle.files()}
    known_digests = digests or {}
    records: dict[str, list[Row]] = {}
    owners: dict[str, Owner] = {}
    missing: list[str] = []
    for name in sorted(entries):
        if not is_record(name):
            continue
        rows = parse_record(_text(entries[name]))
        if rows is None:
            raise UsageError(f"{name}: not a readable RECORD",
                             "the bundle is damaged; rebuild it")
        records[name] = rows
        folder = name.rsplit("/", 1)[0]
        site = dist_info_site(folder) or ""
        metadata = entries.get(f"{folder}/METADATA")
        owners[folder] = _owner(folder, _text(metadata) if metadata else None, known)
        missing += [full for path, _, _ in rows
                    if (full := in_site(path, site)) is not None and full not in entries]
    owned = claims(records)
    files = []
    for name in sorted(entries):
        if name not in owned:
            if name.startswith(PACKAGES):
                files.append(FileOrigin(name, None, "unowned"))
            continue
        folder, expected = owned[name]
        digest = known_digests.get(name) or entries[name].digest()
        ok = expected is None or digest == expected
        files.append(FileOrigin(name, owners[folder], "ok" if ok else "modified"))
    return Provenance(files, list(owners.values()), missing, lock_source)


def _text(entry: Entry) -> str:
    return entry.read().decode("utf-8", "replace")


def _owner(folder: str, metadata: str | None, known: dict[str, Owner]) -> Owner:
    name, version = distribution(folder, metadata)
    dist_info = folder + "/"
    wheel = known.get(str(canonicalize_name(name)))
    if wheel is None:
        return Owner(name, version, dist_info, note="no wheel for it in the lock")
    if wheel.version != version:
        return Owner(name, version, dist_info,
                     note=f"the lock pins {wheel.version}, the bundle holds {version}")
    return replace(wheel, name=name, dist_info=dist_info)
