"""FB4xx: bundled Python dependencies — every requirement installed, for the *target* runtime.

Requirements come from ``requirements.txt`` and, transitively, from each installed
``packages/*.dist-info/METADATA`` ``Requires-Dist``; markers are evaluated with
``Target.evaluate`` (never the host interpreter). RECORD files are checked against the bytes:
sizes first (free, from the central directory), then sha256 for files whose size matches, so a
tampered file is caught either way.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import HeaderParser

from installer.records import InvalidRecordEntry, RecordEntry, parse_record_file
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from bundler.checks.base import Finding, finding, rules
from bundler.checks.facts import Facts, bundle_requirements, tags_fit, wheel_tags
from bundler.records import EXCLUDED_FILE, dist_info_site, in_site, record_hash_value
from bundler.requirements import (
    REQUIREMENTS_FILE,
    not_shipped,
)
from bundler.targets import PythonTarget

RULES = rules(
    ("FB401", "error", "a requirement in requirements.txt is not installed in packages/"),
    ("FB402", "error", "an installed version does not satisfy a requirement"),
    ("FB403", "error", "a dependency of an installed distribution is not installed"),
    ("FB404", "error", "two versions of one distribution are installed"),
    ("FB405", "error", "a file does not match its RECORD (size or hash)"),
    ("FB406", "error", "a file listed in RECORD is missing"),
    ("FB407", "warning", "a requirement line that cannot be parsed or checked"),
    ("FB408", "error", "a dist-info without a readable METADATA / RECORD"),
    ("FB409", "error", "a distribution installed from a wheel for another platform or Python"),
    ("FB410", "error", "requirements.txt names a file or folder the bundle lacks (remote_build)"),
)

_INSTALL = ("rebuild packages/ for the target (fbundle build, or pip install --target "
            "packages/ --platform manylinux2014_x86_64 --only-binary=:all: "
            "--python-version <the runtime's>)")


@dataclass
class Dist:
    """An installed distribution: its dist-info folder and what METADATA says."""

    folder: str  # packages/foo-1.0.dist-info
    name: NormalizedName
    display: str
    version: Version | None
    requires: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.display} {self.version}" if self.version else self.display


def dist_info_folders(facts: Facts) -> list[str]:
    """Every installed distribution's dist-info: in ``packages/``, and at the zip root (azd's
    layout: ``pip install -t .``), where the root being on ``sys.path`` makes them importable
    just the same."""
    return site_folders(facts.bundle.names())


def site_folders(names: list[str]) -> list[str]:
    folders = set()
    for name in names:
        parts = name.split("/")
        if len(parts) >= 3 and parts[0] == "packages" and parts[1].endswith(".dist-info"):
            folders.add(f"packages/{parts[1]}")
        elif len(parts) >= 2 and parts[0].endswith(".dist-info"):
            folders.add(parts[0])
    return sorted(folders)


def _read_dists(facts: Facts) -> tuple[list[Dist], list[Finding]]:
    dists, problems = [], []
    for folder in dist_info_folders(facts):
        text = facts.texts.get(f"{folder}/METADATA")
        if text is None:
            problems.append(finding("FB408", f"{folder}/METADATA", "METADATA is missing or "
                                    "unreadable, so this distribution's requirements are "
                                    "unknown", _INSTALL))
            continue
        message = HeaderParser().parsestr(text)
        display = str(message.get("Name") or "").strip()
        try:
            version = Version(str(message.get("Version") or "").strip())
        except InvalidVersion:
            version = None
        if not display or version is None:
            problems.append(finding("FB408", f"{folder}/METADATA", "METADATA has no valid Name "
                                    "and Version", _INSTALL))
            if not display:
                continue
        requires = [str(r) for r in message.get_all("Requires-Dist") or []]
        dists.append(Dist(folder, canonicalize_name(display), display, version, requires))
    return dists, problems


def check(facts: Facts) -> Iterator[Finding]:
    target = facts.target
    if not isinstance(target, PythonTarget):
        return
    dists, problems = _read_dists(facts)
    yield from problems
    yield from _records(facts)
    yield from _wheel_tags(facts, target)
    installed: dict[NormalizedName, list[Dist]] = defaultdict(list)
    for dist in dists:
        installed[dist.name].append(dist)
    for versions in installed.values():
        if len(versions) > 1:
            labels = ", ".join(d.folder for d in versions)
            for dist in versions[1:]:
                yield finding("FB404", f"{dist.folder}/", f"{dist.display} is installed "
                              f"{len(versions)} times ({labels}); Python imports one at random",
                              "remove all but one version and rebuild packages/")
    if facts.wrapper:
        return
    parsed, problem = bundle_requirements(facts)
    if problem is not None:
        yield problem  # in remote_build too: the service's pip refuses the same line
    if facts.context.mode == "remote_build" and parsed is not None:
        for missing in not_shipped(parsed, set(facts.bundle.names())):
            yield finding("FB410", REQUIREMENTS_FILE, f"requirements.txt names {missing}, "
                          "which is not in the bundle; the service's pip reads requirements.txt"
                          " in the zip and will fail", "ship the -r/-c file, local package or "
                          "--find-links folder inside the project (fbundle build does)")
    if facts.context.mode != "bundled":
        return
    roots: list[tuple[Requirement, str]] = []
    for line in parsed.entries if parsed is not None else ():
        requirement = line.requirement
        if requirement is None and line.name is not None:
            # a wheel, sdist or #egg= URL/path names its project; a bare folder does not,
            # and only building it would tell (build did, and laid it out under that name)
            requirement = Requirement(str(line.name))
            requirement.marker = line.marker
            requirement.extras = set(line.extras)
        if requirement is None:
            continue
        if line.constraint:
            yield from _constrained(facts, target, requirement, line.where, installed)
        else:
            roots.append((requirement, line.where))
    yield from _satisfied(facts, target, roots, installed)


def _constrained(facts: Facts, target: PythonTarget, req: Requirement, where: str,
                 installed: dict[NormalizedName, list[Dist]]) -> Iterator[Finding]:
    """A ``-c`` constraint binds only what is installed (pip's meaning)."""
    found = installed.get(canonicalize_name(req.name))
    if not found or not target.evaluate(req.marker):
        return
    dist = found[0]
    if dist.version is not None and req.specifier and not req.specifier.contains(
            dist.version, prereleases=True):
        yield finding("FB402", REQUIREMENTS_FILE, f"the constraint {req} ({where}) is not met: "
                      f"{dist.label} is installed", _INSTALL)


def _satisfied(facts: Facts, target: PythonTarget, roots: list[tuple[Requirement, str]],
               installed: dict[NormalizedName, list[Dist]]) -> Iterator[Finding]:
    # Each installed distribution's own requirements are checked even if nothing names it.
    pending: list[tuple[Dist, str]] = [(d, "") for ds in installed.values() for d in ds]
    for req, _where in roots:
        yield from _need(facts, target, req, None, frozenset(), installed, pending)
    seen: set[tuple[NormalizedName, str]] = set()
    while pending:
        dist, extra = pending.pop()
        key = (dist.name, extra)
        if key in seen:
            continue
        seen.add(key)
        active = frozenset({extra}) if extra else frozenset()
        for line in dist.requires:
            try:
                child = Requirement(line)
            except InvalidRequirement:
                yield finding("FB407", f"{dist.folder}/METADATA", f"{dist.label} has a "
                              f"Requires-Dist that cannot be parsed: {line!r}",
                              "rebuild packages/ from a correct wheel")
                continue
            yield from _need(facts, target, child, dist, active, installed, pending)


def _need(facts: Facts, target: PythonTarget, req: Requirement, parent: Dist | None,
          extras: frozenset[str], installed: dict[NormalizedName, list[Dist]],
          pending: list[tuple[Dist, str]]) -> Iterator[Finding]:
    """Check one requirement on the target; queue the installed dist (with its extras)."""
    if not target.evaluate(req.marker, extras):
        return
    found = installed.get(canonicalize_name(req.name))
    path = "requirements.txt" if parent is None else f"{parent.folder}/METADATA"
    who = f"requirements.txt requires {req}" if parent is None else f"{parent.label} requires {req}"
    if not found and canonicalize_name(req.name) in excluded_names(facts):
        return  # left out on purpose (build --exclude-package), not missing
    if not found:
        yield finding("FB401" if parent is None else "FB403", path,
                      f"{who} (on {target.runtime}), which is not installed in packages/",
                      _INSTALL)
        return
    dist = found[0]
    if dist.version is not None and req.specifier and not req.specifier.contains(
            dist.version, prereleases=True):
        yield finding("FB402", path, f"{who}, but {dist.label} is installed", _INSTALL)
    pending.extend((dist, canonicalize_name(e)) for e in sorted(req.extras) or [""])


def excluded_names(facts: Facts) -> set[NormalizedName]:
    """The distributions ``build --exclude-package`` left out, from the bundle's own record."""
    text = facts.texts.get(EXCLUDED_FILE, "")
    return {canonicalize_name(line.strip()) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")}


def _parse_record(text: str) -> list[tuple[str, str, str]] | None:
    try:
        return list(parse_record_file(text.splitlines()))
    except (csv.Error, ValueError):
        return None


def hashes_wanted(facts: Facts) -> set[str]:
    """Parse every RECORD; the files whose size matches and whose sha256 must be computed."""
    sizes = {e.name: e.size for e in facts.files}
    wanted: set[str] = set()
    for name, text in facts.texts.items():
        site = dist_info_site(name.rsplit("/", 1)[0]) if name.endswith("/RECORD") else None
        if site is None:
            continue
        rows = _parse_record(text)
        if rows is None:
            continue
        facts.records[name] = rows
        for path, hash_, size in rows:
            full = in_site(path, site)
            if full and hash_.startswith("sha256=") and full in sizes and (
                    not size or size == str(sizes[full])):
                wanted.add(full)
    return wanted


def _records(facts: Facts) -> Iterator[Finding]:
    entries = {e.name: e for e in facts.files}
    for folder in dist_info_folders(facts):
        record = f"{folder}/RECORD"
        if record not in entries:
            yield finding("FB408", record, "RECORD is missing, so the installed files cannot "
                          "be verified", _INSTALL)
            continue
        if record not in facts.records:
            if record in facts.texts:
                yield finding("FB408", record, "RECORD is not a valid CSV file", _INSTALL)
            continue
        site = dist_info_site(folder) or ""
        for path, hash_, size in facts.records[record]:
            full = in_site(path, site)
            if full is None or full == record:
                continue
            entry = entries.get(full)
            if entry is None:
                if not full.endswith((".pyc", ".pyo")) and hash_:
                    yield finding("FB406", full, f"listed in {record} but not in the bundle",
                                  _INSTALL)
                continue
            if not hash_ or facts.content_skipped or full in facts.bombs:
                continue
            try:
                parsed = RecordEntry.from_elements(path, hash_, size)
            except InvalidRecordEntry as error:
                yield finding("FB405", full, f"its {record} row is invalid: "
                              f"{'; '.join(error.issues)}", _INSTALL)
                continue
            if parsed.size is not None and parsed.size != entry.size:
                yield finding("FB405", full, f"is {entry.size} bytes but {record} says "
                              f"{parsed.size}; the file was changed after install", _INSTALL)
                continue
            scanned = facts.scanned.get(full)
            if scanned is None or scanned.error:
                continue  # FB001 already says why
            if parsed.hash_ is None:
                continue
            if parsed.hash_.name == "sha256" and scanned.sha256 is not None:
                ok = record_hash_value(bytes.fromhex(scanned.sha256)) == parsed.hash_.value
            else:
                ok = _rehash(entry, parsed.hash_.name) == parsed.hash_.value
            if not ok:
                yield finding("FB405", full, f"its {parsed.hash_.name} does not match "
                              f"{record}; the file was changed after install", _INSTALL)


def _rehash(entry: object, algorithm: str) -> str:
    """Rare non-sha256 RECORD rows: hash the member on its own."""
    from bundler.model import Entry

    assert isinstance(entry, Entry)
    digest = hashlib.new(algorithm)
    try:
        with entry.open() as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except Exception:  # noqa: BLE001 — unreadable members are FB001's business
        return ""
    return record_hash_value(digest.digest())


def _wheel_tags(facts: Facts, target: PythonTarget) -> Iterator[Finding]:
    for folder in dist_info_folders(facts):
        tags, parsed = wheel_tags(facts, folder)
        if parsed and not tags_fit(parsed, target):
            yield finding("FB409", f"{folder}/WHEEL", f"installed from a wheel tagged "
                          f"{', '.join(tags)}, which does not fit {target.runtime} "
                          f"(CPython {target.python_version}, manylinux x86_64 at glibc "
                          f"{target.glibc_text} or older)", _INSTALL)
