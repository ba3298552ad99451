"""``fbundle diff``: two bundles (zips or folders) compared entry by entry, every difference
classified. A low floor: it reads bundles through bundler.model / bundler.zipformat and never
imports the build.

A zip has two identities (see docs/audit.md): its sha256, which depends on the compressor, and
the content digest, which does not. A difference is classified from the most to the least
serious, so a reader sees first what the service would run differently:

- ``content``: the uncompressed bytes differ (or the entry changed kind);
- ``permissions``: the Unix mode differs;
- ``metadata``: timestamps, flags, extra fields, comments, "made by" only;
- ``compressed``: the same bytes stored as another deflate stream, level or method.
"""

from __future__ import annotations

import hashlib
import stat
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Literal

from bundler import zipformat
from bundler.errors import UsageError
from bundler.identity import BuildInfo
from bundler.model import Bundle, Entry, ZipMemberData, content_digest, file_sha256
from bundler.zipformat import Member, ZipFormatError, inflate, raw_chunks

ChangeKind = Literal["content", "permissions", "metadata", "compressed"]
#: Most serious first; a change is labelled by the first kind it has.
KINDS: tuple[ChangeKind, ...] = ("content", "permissions", "metadata", "compressed")
LABELS: dict[ChangeKind, str] = {
    "content": "content",
    "permissions": "permissions",
    "metadata": "timestamps/metadata only",
    "compressed": "compressed bytes only",
}
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated",
            zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}


# --- reading one side --------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryFacts:
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
    facts: dict[str, EntryFacts]
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


def load(path: Path) -> Bundle:
    """A zip or a folder for listing or comparing. A zip the reader finds hostile (a member
    that unpacks to something else than its directory says) cannot be described: exit 2."""
    bundle = Bundle.load(path)
    refuse_problems(bundle)
    return bundle


def refuse_problems(bundle: Bundle) -> None:
    """One line and exit 2 for the first thing the zip reader found wrong, or for a folder
    over the entry limit the zip reader applies to zips."""
    if len(bundle.entries) > zipformat.MAX_ENTRIES:
        raise UsageError(f"{bundle.location}: holds more than {zipformat.MAX_ENTRIES} entries",
                         "a bundle this large cannot be an agent")
    if bundle.problems:
        first = bundle.problems[0]
        more = f" (and {len(bundle.problems) - 1} more)" if len(bundle.problems) > 1 else ""
        raise ZipFormatError(f"{bundle.location}: {first.code} {first.name}: {first.message}"
                             f"{more}", "`fbundle validate` lists every problem; rebuild the zip")


def read_side(path: Path, bundle: Bundle | None = None) -> Side:
    """Read a zip or a folder (or the ``bundle`` already read from ``path``): every entry
    hashed once, through one handle per zip."""
    bundle = load(path) if bundle is None else bundle
    refuse_problems(bundle)
    if bundle.read_from != "zip":
        facts = {e.name: EntryFacts(e.name, e.kind, e.size, _digest(path, e), e.mode)
                 for e in bundle.entries}
        return Side(str(path), bundle.read_from, facts, [e.name for e in bundle.entries],
                    content_digest(bundle.entries))
    facts = {}
    hashed: list[Entry] = []
    names = [e.name for e in bundle.entries]
    with open(path, "rb") as raw:
        for entry in bundle.entries:
            info = entry.data.info if isinstance(entry.data, ZipMemberData) else None
            if not isinstance(info, Member):  # pragma: no cover - read_zip gives members
                continue
            digest, raw_digest = _member_digests(path, raw, entry)
            hashed.append(replace(entry, sha256=digest))
            facts[entry.name] = EntryFacts(
                name=entry.name, kind=entry.kind, size=info.file_size, sha256=digest,
                mode=entry.mode, method=info.compress_type, compress_size=info.compress_size,
                date_time=info.date_time,
                header=(info.flag_bits & ~0x8, info.create_system, info.create_version,
                        info.extract_version, info.internal_attr,
                        stat.S_IFMT(info.external_attr >> 16), info.external_attr & 0xFFFF,
                        info.extra, info.local_extra, info.comment),
                raw_sha256=raw_digest,
            )
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    return Side(str(path), "zip", facts, names, content_digest(hashed), file_sha256(path),
                bundle.comment, duplicates, _compressor(path))


def _digest(path: Path, entry: Entry) -> str:
    """A folder's file hashed; a file that cannot be read is unusable input (exit 2)."""
    try:
        return entry.digest()
    except OSError as error:
        raise UsageError(f"{path}: {entry.name} cannot be read ({error.strerror or error})",
                         "make every file readable, or compare zips") from None


def _member_digests(path: Path, raw: BinaryIO, entry: Entry) -> tuple[str, str]:
    """(sha256 of the bytes, sha256 of the stored bytes) of a zip member, checked as it is
    inflated; an encrypted, corrupt or short member is unusable input (exit 2)."""
    assert isinstance(entry.data, ZipMemberData)
    info = entry.data.info
    try:
        stored = hashlib.sha256()
        for chunk in raw_chunks(raw, info):
            stored.update(chunk)
        if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            plain = hashlib.sha256()
            for chunk in inflate(raw, info):
                plain.update(chunk)
            return plain.hexdigest(), stored.hexdigest()
        return entry.digest(), stored.hexdigest()  # bzip2/LZMA: through zipfile
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError,
            RuntimeError) as error:
        raise UsageError(f"{path}: {entry.name or '(empty name)'} cannot be read ({error})",
                         "the zip is damaged; `fbundle validate` says more") from None


def _compressor(zip_path: Path) -> str | None:
    info = BuildInfo.read(zip_path)
    return info.compressor if info else None


# --- comparing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One entry present on both sides that differs; ``kinds`` most serious first."""

    name: str
    kinds: tuple[ChangeKind, ...]
    details: tuple[str, ...]

    @property
    def kind(self) -> ChangeKind:
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


def _compare(a: EntryFacts, b: EntryFacts, *, zips: bool) -> Change | None:
    """How one entry differs; ``zips`` false means one side is a folder, which has neither
    zip metadata nor compressed bytes, and keeps only "executable or not" of the mode."""
    kinds: list[ChangeKind] = []
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


def _stored(facts: EntryFacts) -> str:
    method = _METHODS.get(facts.method or 0, f"method {facts.method}")
    return f"{method} {facts.compress_size} bytes"
