"""What each distribution costs: zip bytes, unpacked bytes, and why it is in the bundle.

One table for ``build --list``, ``inspect --sizes``, the size checks and the limit error. A
distribution's files are the ones its ``RECORD`` lists (in ``packages/`` or, azd's layout, at
the zip root); everything else is the agent's own. Zip bytes count each member's headers and
compressed data: exact for a zip read back, and for a plan what the writer will produce (wheel
members are copied with their deflate bytes, the rest is deflated and counted).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.parser import HeaderParser
from typing import Any

from installer.records import parse_record_file
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from bundler.errors import UsageError
from bundler.graph import walk
from bundler.model import Bundle, Entry
from bundler.records import dist_info_site, in_site
from bundler.requirements import REQUIREMENTS_FILE, parse_bundle_text
from bundler.targets import PythonTarget, Target
from bundler.write import directory_overhead, member_overhead, stored_size


@dataclass(frozen=True)
class DistSize:
    """One distribution's share of the bundle."""

    name: str
    version: str
    folder: str  # its dist-info, as stored
    files: int
    unpacked: int
    zipped: int
    chain: tuple[str, ...]  # requirements.txt -> ... -> name; empty when nothing needs it

    @property
    def why(self) -> str:
        return " -> ".join(self.chain) if self.chain else "not required by anything"

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "files": self.files,
                "unpacked_bytes": self.unpacked, "zip_bytes": self.zipped,
                "chain": list(self.chain)}


@dataclass(frozen=True)
class SizeTable:
    dists: list[DistSize]  # biggest in the zip first
    own_files: int  # the agent's own files (sources, requirements.txt, ...)
    own_unpacked: int
    own_zipped: int
    zip_bytes: int  # the whole zip (the upload)
    unpacked_bytes: int

    def top(self, count: int = 5) -> str:
        """``torch 180.2 MB, numpy 12.0 MB`` (zip bytes), for one-line messages."""
        return ", ".join(f"{d.name} {mb(d.zipped)}" for d in self.dists[:count])

    def as_json(self) -> dict[str, Any]:
        return {"zip_bytes": self.zip_bytes, "unpacked_bytes": self.unpacked_bytes,
                "distributions": [d.as_json() for d in self.dists],
                "own_files": {"files": self.own_files, "unpacked_bytes": self.own_unpacked,
                              "zip_bytes": self.own_zipped}}

    def lines(self) -> list[str]:
        """The table as text: one row a distribution, then the agent's own files, the total."""
        rows = [f"{'zip':>10}  {'unpacked':>10}  {'files':>6}  distribution (why it is in)"]
        for d in self.dists:
            rows.append(f"{mb(d.zipped):>10}  {mb(d.unpacked):>10}  {d.files:>6}  "
                        f"{d.name} {d.version} ({d.why})")
        rows.append(f"{mb(self.own_zipped):>10}  {mb(self.own_unpacked):>10}  "
                    f"{self.own_files:>6}  (the agent's own files)")
        rows.append(f"{mb(self.zip_bytes):>10}  {mb(self.unpacked_bytes):>10}  "
                    f"{len(self.dists):>6}  total: {self.zip_bytes} bytes zipped, "
                    f"{len(self.dists)} distributions")
        return rows


def mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def zip_bytes(entry: Entry) -> int:
    """What ``entry`` takes in the zip, headers included: as stored for a zip read back, as the
    writer will store it otherwise."""
    if entry.compress_size is not None:
        return member_overhead(entry.name) + entry.compress_size
    return stored_size(entry)


def dist_texts(bundle: Bundle) -> dict[str, str]:
    """The dist-info METADATA / RECORD texts and requirements.txt of a bundle, read once."""
    texts: dict[str, str] = {}
    for entry in bundle.files():
        parts = entry.name.split("/")
        wanted = entry.name == "requirements.txt" or (
            len(parts) >= 2 and parts[-2].endswith(".dist-info")
            and parts[-1] in ("METADATA", "RECORD")
            and dist_info_site("/".join(parts[:-1])) is not None)
        if wanted and entry.size <= 16 << 20:
            texts[entry.name] = entry.read().decode("utf-8", "replace")
    return texts


def size_table(bundle: Bundle, target: Target, texts: Mapping[str, str] | None = None,
               *, measure: Callable[[Entry], int] = zip_bytes) -> SizeTable:
    """Every distribution's zip and unpacked bytes and requirement chain, biggest first."""
    texts = dict(texts) if texts is not None else dist_texts(bundle)
    files = list(bundle.files())
    owner: dict[str, str] = {}
    meta: dict[str, tuple[str, str, list[str]]] = {}
    for name, text in sorted(texts.items()):
        folder, _, leaf = name.rpartition("/")
        site = dist_info_site(folder)
        if site is None:
            continue
        if leaf == "RECORD":
            try:
                rows = list(parse_record_file(text.splitlines()))
            except (ValueError, IndexError):
                rows = []
            for path, _, _ in rows:
                if (full := in_site(path, site)) is not None:
                    owner.setdefault(full, folder)
            owner.setdefault(name, folder)
        elif leaf == "METADATA":
            message = HeaderParser().parsestr(text)
            meta[folder] = (str(message.get("Name") or folder), str(message.get("Version") or ""),
                            [str(r) for r in message.get_all("Requires-Dist") or []])
    for entry in files:  # files of a dist-info RECORD does not list (INSTALLER, ...)
        folder = entry.name.rsplit("/", 1)[0]
        if folder in meta or folder.endswith(".dist-info"):
            owner.setdefault(entry.name, folder)
    requires: dict[NormalizedName, list[str]] = {
        canonicalize_name(name): reqs for name, _, reqs in meta.values()}
    graph = walk(_roots(bundle, texts), requires, target) \
        if isinstance(target, PythonTarget) else None
    sums: dict[str, list[int]] = {}
    own = [0, 0, 0]
    for entry in files:
        size = measure(entry)
        bucket = sums.setdefault(owner[entry.name], [0, 0, 0]) if entry.name in owner else own
        bucket[0] += 1
        bucket[1] += entry.size
        bucket[2] += size
    dists = []
    for folder, (count, unpacked, zipped) in sums.items():
        name, version, _ = meta.get(folder, (folder.rsplit("/", 1)[-1], "", []))
        chain = tuple(graph.chain(name)) if graph is not None else ()
        dists.append(DistSize(name, version, folder, count, unpacked, zipped, chain))
    dists.sort(key=lambda d: (-d.zipped, d.name.lower()))
    total = sum(d.zipped for d in dists) + own[2] + directory_overhead(len(files))
    if bundle.archive_size is not None:
        total = bundle.archive_size
    return SizeTable(dists, own[0], own[1], own[2], total, sum(e.size for e in files))


def _roots(bundle: Bundle, texts: Mapping[str, str]) -> list[Requirement]:
    """What the bundle's requirements.txt asks for, read as build and validate read it (its
    ``-r`` files from the bundle too); a file pip would refuse gives no chains (validate says
    why: FB407)."""
    text = texts.get(REQUIREMENTS_FILE)
    if text is None:
        return []
    try:
        return parse_bundle_text(text, bundle.member()).roots()
    except UsageError:
        return []
