"""Reproducible-build audits: ``diff`` two bundles, ``audit`` a zip against its project, and
say where every file under ``packages/`` came from (``provenance``).

A zip has two identities (see docs/audit.md): its sha256, which depends on the compressor, and
the content digest, which does not. A difference is classified from the most to the least
serious, so a reader sees first what the service would run differently:

- ``content``: the uncompressed bytes differ (or the entry changed kind);
- ``permissions``: the Unix mode differs;
- ``metadata``: timestamps, flags, extra fields, comments, "made by" only;
- ``compressed``: the same bytes stored as another deflate stream, level or method.

Every reader here works on :class:`bundler.model.Bundle`, the model build and validate share.
"""

from __future__ import annotations

import hashlib
import stat
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field, replace
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from installer.records import InvalidRecordEntry, parse_record_file
from packaging.utils import canonicalize_name

from bundler.errors import UsageError
from bundler.identity import BuildInfo
from bundler.lock import LOCK_FILE, Lock
from bundler.model import (
    CHUNK,
    Bundle,
    Entry,
    ZipMemberData,
    content_digest,
    file_sha256,
)
from bundler.records import PACKAGES, in_packages, record_hash_bytes
from bundler.zipformat import local_extra_and_start, raw_chunks

if TYPE_CHECKING:
    from bundler.plan import BuildOptions

Kind = Literal["content", "permissions", "metadata", "compressed"]
#: Most serious first; a change is labelled by the first kind it has.
KINDS: tuple[Kind, ...] = ("content", "permissions", "metadata", "compressed")
LABELS: dict[Kind, str] = {
    "content": "content",
    "permissions": "permissions",
    "metadata": "timestamps/metadata only",
    "compressed": "compressed bytes only",
}
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated",
            zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}


# --- reading one side --------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What is compared about one entry. Zip-only facts are None for folders."""

    name: str
    kind: str
    size: int
    sha256: str
    mode: int
    method: int | None = None
    compress_size: int | None = None
    date_time: tuple[int, ...] | None = None
    header: tuple[Any, ...] | None = None  # flags, made-by, versions, attrs, extras, comment
    raw_sha256: str | None = None  # sha256 of the compressed stream as stored


@dataclass
class Side:
    """One bundle of a comparison, read once."""

    location: str
    read_from: str
    facts: dict[str, Facts]
    order: list[str]
    content_digest: str
    sha256: str | None = None  # of the zip file; None for folders
    comment: bytes = b""
    duplicates: list[str] = field(default_factory=list)
    compressor: str | None = None  # recorded in the <zip>.json sidecar, when there is one

    def as_json(self) -> dict[str, Any]:
        return {"path": self.location, "kind": self.read_from, "sha256": self.sha256,
                "content_digest": self.content_digest, "entries": len(self.facts),
                "compressor": self.compressor}


def read_side(path: Path) -> Side:
    """Read a zip or a folder: every entry hashed once, zips opened once."""
    bundle = Bundle.load(path)
    if bundle.read_from != "zip":
        facts = {e.name: Facts(e.name, e.kind, e.size, e.digest(), e.mode) for e in bundle.entries}
        return Side(str(path), bundle.read_from, facts, [e.name for e in bundle.entries],
                    content_digest(bundle.entries))
    facts = {}
    hashed: list[Entry] = []
    names = [e.name for e in bundle.entries]
    try:
        with zipfile.ZipFile(path) as archive, open(path, "rb") as raw:
            comment = archive.comment
            for entry in bundle.entries:
                info = entry.data.info if isinstance(entry.data, ZipMemberData) else None
                if info is None:  # pragma: no cover - read_zip always gives members
                    continue
                digest = _member_sha256(archive, info)
                local_extra, raw_digest = _raw_member(raw, info)
                hashed.append(replace(entry, sha256=digest))
                facts[entry.name] = Facts(
                    name=entry.name, kind=entry.kind, size=info.file_size, sha256=digest,
                    mode=entry.mode, method=info.compress_type, compress_size=info.compress_size,
                    date_time=tuple(info.date_time),
                    header=(info.flag_bits & ~0x8, info.create_system, info.create_version,
                            info.extract_version, info.internal_attr,
                            stat.S_IFMT(info.external_attr >> 16), info.external_attr & 0xFFFF,
                            info.extra, local_extra, info.comment),
                    raw_sha256=raw_digest,
                )
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
        raise UsageError(f"{path}: an entry cannot be read ({error})",
                         "the zip is damaged; rebuild it") from None
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    return Side(str(path), "zip", facts, names, content_digest(hashed), file_sha256(path),
                comment, duplicates, _compressor(path))


def _compressor(zip_path: Path) -> str | None:
    info = BuildInfo.read(zip_path)
    return info.compressor if info else None


def _member_sha256(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    digest = hashlib.sha256()
    with archive.open(info) as stream:  # zipfile checks the CRC at the end
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _raw_member(raw: Any, info: zipfile.ZipInfo) -> tuple[bytes, str]:
    """(local extra field, sha256 of the compressed bytes) of a member, read from its header."""
    local_extra, _ = local_extra_and_start(raw, info)
    digest = hashlib.sha256()
    for chunk in raw_chunks(raw, info):
        digest.update(chunk)
    return local_extra, digest.hexdigest()


# --- comparing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One entry present on both sides that differs; ``kinds`` most serious first."""

    name: str
    kinds: tuple[Kind, ...]
    details: tuple[str, ...]

    @property
    def kind(self) -> Kind:
        return self.kinds[0]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "label": LABELS[self.kind],
                "kinds": list(self.kinds), "details": list(self.details)}


@dataclass
class Diff:
    a: Side
    b: Side
    added: list[str]  # in B only
    removed: list[str]  # in A only
    changed: list[Change]
    archive: list[str]  # differences outside the entries (order, comment, duplicates)

    @property
    def same_zip_bytes(self) -> bool:
        return self.a.sha256 is not None and self.a.sha256 == self.b.sha256

    @property
    def identical(self) -> bool:
        if self.a.sha256 is not None and self.b.sha256 is not None:
            return self.same_zip_bytes
        return not (self.added or self.removed or self.changed or self.archive)

    @property
    def same_files(self) -> bool:
        """What the service unpacks is the same: names, bytes and permissions."""
        return not (self.added or self.removed) and all(
            c.kind not in ("content", "permissions") for c in self.changed)

    def counts(self) -> dict[str, int]:
        counts = {LABELS[k]: 0 for k in KINDS}
        for change in self.changed:
            counts[LABELS[change.kind]] += 1
        return counts

    def as_json(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "same_files": self.same_files,
            "sha256_equal": self.same_zip_bytes,
            "content_digest_equal": self.a.content_digest == self.b.content_digest,
            "a": self.a.as_json(),
            "b": self.b.as_json(),
            "added": self.added,
            "removed": self.removed,
            "changed": [c.as_json() for c in self.changed],
            "archive": self.archive,
        }

    def lines(self) -> list[str]:
        """The diff as text, one line per difference, then the two identities."""
        out = [f"+ {name}  (added)" for name in self.added]
        out += [f"- {name}  (removed)" for name in self.removed]
        for change in self.changed:
            out.append(f"~ {change.name}  ({LABELS[change.kind]}: {'; '.join(change.details)})")
        out += [f"! {note}" for note in self.archive]
        for label, a, b in (("sha256", self.a.sha256, self.b.sha256),
                            ("content digest", self.a.content_digest, self.b.content_digest)):
            if a is None or b is None:
                continue
            out.append(f"{label}: equal {a}" if a == b else f"{label}: differs {a} != {b}")
        if self.identical:
            out.append("identical")
        else:
            parts = [f"{len(self.added)} added", f"{len(self.removed)} removed"]
            parts += [f"{n} {label}" for label, n in self.counts().items() if n]
            out.append("different: " + ", ".join(parts))
        return out


def diff_sides(a: Side, b: Side) -> Diff:
    """Compare two sides read by :func:`read_side`."""
    added = sorted(set(b.facts) - set(a.facts))
    removed = sorted(set(a.facts) - set(b.facts))
    # A folder has no zip metadata, and its modes are only "executable or not".
    both_zips = a.read_from == "zip" and b.read_from == "zip"
    changed = []
    for name in sorted(set(a.facts) & set(b.facts)):
        change = _compare(a.facts[name], b.facts[name], zips=both_zips)
        if change is not None:
            changed.append(change)
    archive = []
    if both_zips:
        common = set(a.facts) & set(b.facts)
        if [n for n in a.order if n in common] != [n for n in b.order if n in common]:
            archive.append("entry order differs")
        if a.comment != b.comment:
            archive.append(f"zip comment differs ({len(a.comment)} vs {len(b.comment)} bytes)")
        for side in (a, b):
            if side.duplicates:
                archive.append(f"{side.location} stores {', '.join(side.duplicates)} twice")
        if a.sha256 != b.sha256 and not (added or removed or changed or archive):
            archive.append("the zips differ outside their entries (central directory layout, "
                           "padding or trailing bytes)")
    return Diff(a, b, added, removed, changed, archive)


def diff_paths(a: Path, b: Path) -> Diff:
    return diff_sides(read_side(a), read_side(b))


def _compare(a: Facts, b: Facts, *, zips: bool) -> Change | None:
    """How one entry differs; ``zips`` false means one side is a folder, which has neither
    zip metadata nor compressed bytes, and keeps only "executable or not" of the mode."""
    kinds: list[Kind] = []
    details: list[str] = []
    if a.kind != b.kind:
        kinds.append("content")
        details.append(f"{a.kind} -> {b.kind}")
    elif a.sha256 != b.sha256:
        kinds.append("content")
        details.append(f"sha256 {a.sha256[:12]} -> {b.sha256[:12]}, "
                       f"{a.size} -> {b.size} bytes")
    mode_a, mode_b = (a.mode, b.mode) if zips else (a.mode & 0o111, b.mode & 0o111)
    if mode_a != mode_b:
        kinds.append("permissions")
        details.append(f"mode {a.mode:o} -> {b.mode:o}")
    if not zips:
        return Change(a.name, tuple(kinds), tuple(details)) if kinds else None
    if a.date_time != b.date_time:
        kinds.append("metadata")
        details.append(f"time {_when(a.date_time)} -> {_when(b.date_time)}")
    if a.header != b.header:
        if "metadata" not in kinds:
            kinds.append("metadata")
        details.append("zip header fields (flags, extra fields, made-by or comment)")
    if "content" in kinds:
        pass  # other bytes compress to other bytes: nothing more to say
    elif a.method != b.method or a.compress_size != b.compress_size:
        kinds.append("compressed")
        details.append(f"{_stored(a)} -> {_stored(b)}")
    elif a.raw_sha256 != b.raw_sha256:
        kinds.append("compressed")
        details.append(f"another {_METHODS.get(a.method or 0, 'compressed')} stream of "
                       f"{a.compress_size} bytes")
    if not kinds:
        return None
    return Change(a.name, tuple(sorted(kinds, key=KINDS.index)), tuple(details))


def _when(date_time: tuple[int, ...] | None) -> str:
    if date_time is None:
        return "none"
    y, mo, d, h, mi, s = date_time
    return f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}"


def _stored(facts: Facts) -> str:
    method = _METHODS.get(facts.method or 0, f"method {facts.method}")
    return f"{method} {facts.compress_size} bytes"


# --- audit -------------------------------------------------------------------------------------


@dataclass
class AuditResult:
    """A zip compared with what its project builds today."""

    diff: Diff
    rebuilt_compressor: str
    notes: list[str]

    @property
    def reproduced(self) -> bool:
        return self.diff.same_files

    @property
    def digest(self) -> str:
        return self.diff.a.content_digest

    def as_json(self) -> dict[str, Any]:
        return {"reproduced": self.reproduced, "byte_identical": self.diff.same_zip_bytes,
                "content_digest": self.digest, "rebuilt_compressor": self.rebuilt_compressor,
                "notes": self.notes, "diff": self.diff.as_json()}


def audit(zip_path: Path, project: Path, options: BuildOptions) -> AuditResult:
    """Rebuild ``project`` (its lock, its sources) in a temporary folder and compare with
    ``zip_path``. ``options`` is a :class:`bundler.plan.BuildOptions`; its ``output`` is
    replaced, so the project's own ``dist/`` is never touched."""
    from bundler.build import build_project
    from bundler.write import compressor_fingerprint

    if not zip_path.exists():
        raise UsageError(f"{zip_path}: no such file", "pass the zip to audit")
    original = read_side(zip_path)  # fail on an unreadable zip before building anything
    notes = []
    if not (project / LOCK_FILE).is_file():
        notes.append(f"{project / LOCK_FILE} not found: the dependencies were resolved afresh, "
                     "so this audit says what the index serves today; run `fbundle lock` and "
                     "keep the lock with the sources")
    with tempfile.TemporaryDirectory(prefix="fbundle-audit-") as tmp:
        rebuilt_path = Path(tmp) / (zip_path.name if zip_path.suffix == ".zip" else "bundle.zip")
        build_project(project, replace(options, output=rebuilt_path))
        rebuilt = read_side(rebuilt_path)
    rebuilt.location = f"rebuilt from {project}"
    ours = compressor_fingerprint()
    rebuilt.compressor = ours
    diff = diff_sides(original, rebuilt)
    if diff.same_files and not diff.same_zip_bytes and original.read_from == "zip":
        notes.append(_explain_sha(diff, original.compressor, ours))
    return AuditResult(diff, ours, notes)


def _explain_sha(diff: Diff, recorded: str | None, ours: str) -> str:
    """Why two zips with the same files have different sha256s."""
    head = (f"zip sha256 differs ({diff.a.sha256} vs {diff.b.sha256}) but the content digest "
            "matches: the files are the same, stored differently")
    counts = diff.counts()
    stored = f"{counts[LABELS['compressed']]} entries compressed differently, " \
        f"{counts[LABELS['metadata']]} with other timestamps/metadata"
    if recorded is None:
        return (f"{head}; no sidecar records the compressor that wrote the zip, this machine "
                f"writes {ours} ({stored})")
    if recorded != ours:
        return (f"{head}; the zip was written with {recorded}, this machine writes {ours}: "
                f"another zlib build or level gives other deflate bytes for the same data "
                f"({stored})")
    return (f"{head}; the sidecar records the same compressor as this machine ({ours}), so the "
            f"zip was rewritten after it was built ({stored})")


# --- provenance --------------------------------------------------------------------------------


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


def wheels_known(zip_path: Path, lock_path: Path | None) -> tuple[dict[str, Owner], str | None]:
    """Canonical name -> Owner template (wheel facts only), from the lock or the sidecar."""
    path = lock_path or find_lock(zip_path)
    if path is not None:
        return _from_lock(Lock.read(path)), str(path)
    inside = _lock_inside(zip_path)
    if inside is not None:
        return _from_lock(inside), f"{zip_path.name}!{LOCK_FILE}"
    info = BuildInfo.read(zip_path)
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


def _lock_inside(zip_path: Path) -> Lock | None:
    """The project's pylock.toml when it travelled inside the zip (sources include it)."""
    if not zip_path.is_file():
        return None
    try:
        with zipfile.ZipFile(zip_path) as archive:
            text = archive.read(LOCK_FILE).decode("utf-8")
    except (KeyError, zipfile.BadZipFile, OSError, UnicodeDecodeError):
        return None
    return Lock.from_toml(text, f"{zip_path}!{LOCK_FILE}")


def provenance(bundle: Bundle, known: dict[str, Owner], lock_source: str | None = None) -> \
        Provenance:
    """Which distribution (and wheel) every file under ``packages/`` belongs to, by the
    dist-info RECORDs inside the bundle; a file whose bytes no longer match its RECORD hash is
    ``modified``, one no RECORD lists is ``unowned``."""
    entries = {e.name: e for e in bundle.files()}
    claims: dict[str, tuple[Owner, str | None]] = {}
    owners: list[Owner] = []
    missing: list[str] = []
    for name in sorted(entries):
        parts = PurePosixPath(name).parts
        if len(parts) != 3 or parts[0] != "packages" or parts[2] != "RECORD" \
                or not parts[1].endswith(".dist-info"):
            continue
        dist_info = f"{PACKAGES}{parts[1]}/"
        owner = _owner(parts[1], dist_info, entries, known)
        owners.append(owner)
        try:
            rows = list(parse_record_file(entries[name].read().decode("utf-8").splitlines()))
        except (InvalidRecordEntry, UnicodeDecodeError, ValueError) as error:
            raise UsageError(f"{name}: not a readable RECORD ({error})",
                             "the bundle is damaged; rebuild it") from None
        for path, hash_text, _ in rows:
            full = in_packages(path)
            if full is None:
                continue  # scripts and data outside site-packages
            if full not in entries:
                missing.append(full)
                continue
            expected = None
            if hash_text and hash_text.startswith("sha256="):
                expected = record_hash_bytes(hash_text.split("=", 1)[1]).hex()
            claims.setdefault(full, (owner, expected))
    files = []
    for name in sorted(entries):
        if not name.startswith(PACKAGES):
            continue
        if name not in claims:
            files.append(FileOrigin(name, None, "unowned"))
            continue
        owner, expected = claims[name]
        ok = expected is None or entries[name].digest() == expected
        files.append(FileOrigin(name, owner, "ok" if ok else "modified"))
    return Provenance(files, owners, missing, lock_source)


def _owner(folder: str, dist_info: str, entries: dict[str, Entry],
           known: dict[str, Owner]) -> Owner:
    name, _, version = folder[: -len(".dist-info")].rpartition("-")
    metadata = entries.get(dist_info + "METADATA")
    if metadata is not None:
        headers = HeaderParser().parsestr(metadata.read().decode("utf-8", "replace"))
        name = headers.get("Name") or name
        version = headers.get("Version") or version
    wheel = known.get(str(canonicalize_name(name)))
    if wheel is None:
        return Owner(name, version, dist_info, note="no wheel for it in the lock")
    if wheel.version != version:
        return Owner(name, version, dist_info,
                     note=f"the lock pins {wheel.version}, the bundle holds {version}")
    return replace(wheel, name=name, dist_info=dist_info)
