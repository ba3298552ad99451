"""``fbundle build``: a project folder -> ``dist/<agent>.zip`` and its identities.

The pipeline: collect sources -> resolve (or read the lock) -> fetch wheels into the cache ->
lay them out under ``packages/`` -> the bundle plan -> checks -> the deterministic writer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bundler import __version__
from bundler.cache import WheelCache, cache_root
from bundler.collect import Collection, scan_sources
from bundler.errors import BuildError, UsageError
from bundler.indexes import read_pip_config
from bundler.lock import LOCK_FILE, Lock, WheelRef, requirement_changes
from bundler.model import (
    MAX_BUNDLE_BYTES,
    Bundle,
    BytesData,
    Entry,
    content_digest,
    file_sha256,
)
from bundler.project import (
    ProjectSpec,
    buildinfo_path,
    definition_path,
    load_project,
    read_buildinfo,
    sha256_path,
)
from bundler.resolve import (
    Requirements,
    Resolver,
    check_fits,
    pyproject_requirements,
    read_requirements,
)
from bundler.settings import float_env
from bundler.targets import Target, parse_glibc
from bundler.wheels import LaidOutWheel, layout_wheel
from bundler.write import ZipTooLarge, atomic_output, compressor_fingerprint, write_zip

log = logging.getLogger(__name__)
REQUIREMENTS = "requirements.txt"


@dataclass(frozen=True)
class BuildOptions:
    output: Path | None = None
    runtime: str | None = None
    mode: str | None = None
    resolver: str = "uv"
    glibc: str | None = None
    offline: bool = False
    name: str | None = None
    metadata: Path | None = None
    update_lock: bool = False
    project_file: str | None = None
    verbose: bool = False
    refresh: bool = False


@dataclass
class Plan:
    """Everything a build decided, before a byte is written."""

    spec: ProjectSpec
    target: Target
    bundle: Bundle
    collection: Collection
    lock: Lock | None = None
    wheels: list[LaidOutWheel] = field(default_factory=list)

    @property
    def packages(self) -> list[dict[str, str]]:
        return packages_of(self.lock)


@dataclass(frozen=True)
class BuildResult:
    zip_path: Path
    sha256: str
    size: int
    entries: int
    content_digest: str
    input_key: str
    spec: ProjectSpec
    packages: list[dict[str, str]]
    reused: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.zip_path),
            "sha256": self.sha256,
            "content_digest": self.content_digest,
            "size": self.size,
            "entries": self.entries,
            "runtime": self.spec.runtime,
            "mode": self.spec.mode,
            "agent": self.spec.name,
            "packages": self.packages,
            "reused": self.reused,
        }


def packages_of(lock: Lock | None) -> list[dict[str, str]]:
    """The pinned packages as build reports them (name, version, wheel, sha256)."""
    if lock is None:
        return []
    return [{"name": p.key, "version": p.version, "wheel": p.wheel.filename,
             "sha256": p.wheel.sha256} for p in lock.sorted_pins()]


def requirements_of(root: Path) -> Requirements | None:
    """requirements.txt, else pyproject.toml's [project].dependencies, else None."""
    if (root / REQUIREMENTS).exists():
        return read_requirements(root / REQUIREMENTS)
    if (root / "pyproject.toml").is_file():
        requirements = pyproject_requirements(root / "pyproject.toml")
        if requirements.lines:
            return requirements
    return None


def output_path(spec: ProjectSpec, options: BuildOptions) -> Path:
    return options.output or spec.root / "dist" / f"{spec.name}.zip"


@dataclass
class Inputs:
    """What decides a bundle's bytes, read before any wheel is fetched or opened: enough to
    notice a no-op from hashes alone."""

    spec: ProjectSpec
    target: Target
    collection: Collection
    requirements: Requirements | None = None
    lock: Lock | None = None

    @property
    def packages(self) -> list[dict[str, str]]:
        return packages_of(self.lock)


def read_inputs(root: Path, options: BuildOptions = BuildOptions()) -> Inputs:
    """The project, its target, its sources and (bundled Python) its lock."""
    spec = load_project(root, metadata_path=options.metadata, runtime=options.runtime,
                        mode=options.mode, name=options.name)
    glibc = parse_glibc(options.glibc) if options.glibc else None
    target = Target.for_runtime(spec.runtime, *([glibc] if glibc else []))
    if spec.is_dotnet:
        from bundler.dotnet import plan_dotnet

        entries = plan_dotnet(spec, project_file=options.project_file, verbose=options.verbose,
                              output=output_path(spec, options))
        return Inputs(spec, target, Collection(entries=entries))
    excludes = ["/packages/"] if spec.mode == "bundled" else []
    collection = scan_sources(root, excludes, output=output_path(spec, options))
    requirements = requirements_of(root)
    if requirements is None:
        raise UsageError(
            f"{root}: no requirements.txt (or pyproject.toml dependencies)",
            f"create {REQUIREMENTS}, even an empty one: the service expects it in {spec.mode} mode",
        )
    inputs = Inputs(spec, target, collection, requirements)
    if spec.mode == "bundled":
        inputs.lock = locked_requirements(root, requirements, target, options)
    return inputs


def plan_inputs(inputs: Inputs, options: BuildOptions = BuildOptions()) -> Plan:
    """Fetch and lay out the locked wheels, and decide every entry of the bundle."""
    entries = list(inputs.collection.entries)
    plan = Plan(inputs.spec, inputs.target, Bundle([]), inputs.collection, inputs.lock)
    if inputs.lock is not None:
        cache = WheelCache(indexes=read_pip_config())
        plan.wheels = lay_out(inputs.lock, cache, offline=options.offline,
                              base=inputs.spec.root)
        entries += [e for wheel in plan.wheels for e in wheel.entries]
        entries = merge_package_entries(entries)
    if inputs.requirements is not None and not any(e.name == REQUIREMENTS for e in entries):
        # pyproject-only projects: the service reads requirements.txt, so write one.
        lines = [f"{p.name}=={p.version}" for p in inputs.lock.sorted_pins()] if inputs.lock \
            else inputs.requirements.lines
        text = ("\n".join(lines) + "\n").encode("utf-8")
        entries.append(Entry(REQUIREMENTS, len(text), BytesData(text), origin="generated"))
    plan.bundle = Bundle(entries).sorted()
    return plan


def plan_project(root: Path, options: BuildOptions = BuildOptions()) -> Plan:
    """Decide every entry of the bundle for ``root`` (nothing is written)."""
    return plan_inputs(read_inputs(root, options), options)


def locked_requirements(root: Path, requirements: Requirements, target: Target,
                        options: BuildOptions) -> Lock:
    """The project's pylock.toml when it is current, else a fresh resolution."""
    lock_path = root / LOCK_FILE
    if lock_path.is_file() and not options.update_lock:
        lock = Lock.read(lock_path)
        if lock.requirements_sha256 and lock.requirements_sha256 != requirements.sha256:
            changes = requirement_changes(lock.requirements, requirements.lines,
                                          requirements.text) \
                if lock.requirements is not None else []
            if lock.requirements is not None and not changes:
                changes = ["only comments or blank lines"]
            raise BuildError(
                f"{requirements.source.name} changed since {LOCK_FILE} was written"
                + (f" ({'; '.join(changes)})" if changes else ""),
                "run `fbundle lock` (or build with --update-lock) to re-resolve",
            )
        if lock.runtime and lock.runtime != target.runtime:
            raise BuildError(
                f"{LOCK_FILE} is for {lock.runtime}, the build is for {target.runtime}",
                "run `fbundle lock` for this runtime (or build with --update-lock)",
            )
        if lock.glibc and lock.glibc != target.glibc_text:
            raise BuildError(
                f"{LOCK_FILE} is for glibc {lock.glibc}, the build is for {target.glibc_text}",
                "run `fbundle lock` with the same --glibc (or build with --update-lock)",
            )
        check_fits(lock, target)
        return lock
    lock = recent_resolution(requirements, target, options)
    if lock_path.is_file() and options.update_lock:
        write_lock(lock, lock_path)
    return lock


RESOLUTION_TTL = 600  # seconds; PyPI's simple pages say max-age=600, which pip's cache honours


def recent_resolution(requirements: Requirements, target: Target, options: BuildOptions) -> Lock:
    """A resolution of ``requirements`` no older than the freshness window, else a new one.

    Without a lock every build would ask the index again; within ``FBUNDLE_RESOLUTION_TTL``
    seconds (default 600, the freshness PyPI gives its simple pages; 0 turns it off) the last
    answer for the same requirements, target, indexes and resolver is reused. ``--refresh``
    always asks; ``--offline`` takes the last answer whatever its age.
    """
    indexes = read_pip_config()
    key = hashlib.sha256(json.dumps({
        "fbundle": __version__, "requirements": requirements.lines,
        "runtime": target.runtime, "glibc": target.glibc_text, "resolver": options.resolver,
        "indexes": indexes.fingerprint()}, sort_keys=True).encode()).hexdigest()
    memo = cache_root() / "resolutions" / f"{key}.toml"
    ttl = float_env(os.environ, "FBUNDLE_RESOLUTION_TTL", RESOLUTION_TTL)
    if not options.refresh and memo.is_file():
        age = time.time() - memo.stat().st_mtime
        if options.offline or 0 <= age < ttl:
            try:
                lock = Lock.read(memo)
            except UsageError:
                memo.unlink(missing_ok=True)  # a damaged memo is only a cache miss
            else:
                log.info("reusing the resolution from %.0f s ago (--refresh asks again)", age)
                return lock
    resolver = Resolver(target, indexes, kind=options.resolver, offline=options.offline)
    lock = resolver.resolve(requirements)
    lock.requirements = list(requirements.lines)
    write_lock(lock, memo)
    return lock


def lock_project(root: Path, options: BuildOptions = BuildOptions()) -> tuple[Path, Lock]:
    """Resolve afresh and write ``pylock.toml``; parsed back before it replaces the old one."""
    spec = load_project(root, metadata_path=options.metadata, runtime=options.runtime,
                        mode=options.mode, name=options.name)
    if not spec.is_python:
        raise UsageError(f"{spec.runtime} projects have no Python lock",
                         "`fbundle lock` is for python_3_13 / python_3_14 projects")
    glibc = parse_glibc(options.glibc) if options.glibc else None
    target = Target.for_runtime(spec.runtime, *([glibc] if glibc else []))
    requirements = requirements_of(root)
    if requirements is None:
        raise UsageError(f"{root}: no requirements.txt (or pyproject.toml dependencies)",
                         "list the agent's dependencies in requirements.txt")
    resolver = Resolver(target, read_pip_config(), kind=options.resolver, offline=options.offline)
    lock = resolver.resolve(requirements)
    lock.requirements = list(requirements.lines)
    path = root / LOCK_FILE
    write_lock(lock, path)
    return path, lock


def write_lock(lock: Lock, path: Path) -> None:
    text = lock.to_toml()
    if Lock.from_toml(text).to_toml() != text:  # the file must say what we mean
        raise BuildError(f"{path}: the lock does not parse back to itself", "please report it")
    with atomic_output(path) as stream:
        stream.write(text.encode("utf-8"))


def lay_out(lock: Lock, cache: WheelCache, *, offline: bool, base: Path) -> list[LaidOutWheel]:
    """Fetch every pinned wheel (verified) and lay it out under ``packages/``.

    Each wheel is laid out as soon as it arrives, in a thread pool: downloads overlap with the
    first-use RECORD validation of the wheels already here (zlib and hashlib release the GIL).
    """

    def one(ref: WheelRef) -> LaidOutWheel:
        path = cache.fetch(ref, offline=offline, base=base)
        verified_marker = cache.root / "verified" / ref.sha256
        wheel = layout_wheel(path, ref.sha256, verified=verified_marker.exists())
        verified_marker.parent.mkdir(parents=True, exist_ok=True)
        verified_marker.touch()
        return wheel

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(one, [pin.wheel for pin in lock.sorted_pins()]))
    finally:
        cache.close()


def merge_package_entries(entries: list[Entry]) -> list[Entry]:
    """One entry per name: identical duplicates (namespace ``__init__``) merge, others fail."""
    by_name: dict[str, Entry] = {}
    for entry in entries:
        other = by_name.get(entry.name)
        if other is None:
            by_name[entry.name] = entry
        elif other.digest() != entry.digest():
            where = "your sources" if other.origin == "source" else other.origin
            raise BuildError(
                f"{entry.name} comes from both {where} and {entry.origin} with different bytes",
                "remove one of the two packages, or rename your module",
            )
    return list(by_name.values())


def input_key(inputs: Inputs) -> str:
    """A hash of every input that decides the zip's bytes and its checks: same key, same zip.

    Wheels count by their sha256 (their layout is a function of their bytes and this fbundle
    version), so a no-op is noticed without opening one; the context the checks see (runtime,
    floor, mode, entry point, the agent definition) is part of it, so a zip that passed the
    checks under this key passes them again.
    """
    digest = hashlib.sha256()
    context = {"runtime": inputs.target.runtime, "glibc": inputs.target.glibc_text,
               "mode": inputs.spec.mode, "entry_point": inputs.spec.entry_point,
               "metadata": inputs.spec.metadata,
               "source_date_epoch": os.environ.get("SOURCE_DATE_EPOCH", ""),
               "requirements": inputs.requirements.lines if inputs.requirements else None,
               "wheels": [p["sha256"] for p in inputs.packages]}
    digest.update(f"fbundle {__version__}\n{compressor_fingerprint()}\n".encode())
    digest.update(json.dumps(context, sort_keys=True, default=str).encode())
    for entry in sorted(inputs.collection.entries, key=lambda e: e.name):
        digest.update(f"\n{entry.name}\0{entry.mode & 0o111 and 1}\0{entry.digest()}".encode())
    return digest.hexdigest()


def build_project(root: Path, options: BuildOptions = BuildOptions(), **overrides: Any) -> \
        BuildResult:
    """Build ``root`` into its zip; an unchanged input key reuses the zip already there."""
    if overrides:
        options = BuildOptions(**{**options.__dict__, **overrides})
    inputs = read_inputs(root, options)
    zip_path = output_path(inputs.spec, options)
    key = input_key(inputs)
    previous = read_buildinfo(zip_path)
    # A no-op is noticed from the inputs' hashes: the same key as a zip that passed the checks
    # and still hashes to its recorded sha256 -> nothing is redone, not even the checks.
    if previous.get("input_key") == key and zip_path.is_file():
        if file_sha256(zip_path) == previous.get("sha256"):
            log.info("inputs unchanged; %s is up to date", zip_path)
            write_definition(inputs.spec, zip_path)
            return BuildResult(zip_path, previous["sha256"], zip_path.stat().st_size,
                               int(previous.get("entries", 0)), previous["content_digest"], key,
                               inputs.spec, inputs.packages, reused=True)
    plan = plan_inputs(inputs, options)
    check_plan(plan)
    try:
        written = write_zip(plan.bundle.entries, zip_path, limit=MAX_BUNDLE_BYTES)
    except ZipTooLarge as error:
        from bundler.checks.size import largest

        raise BuildError(error.message, "largest: " + largest(plan.bundle.entries)) from None
    result = BuildResult(zip_path, written.sha256, written.size, written.entries,
                         content_digest(plan.bundle.entries), key, plan.spec, inputs.packages,
                         reused=False)
    write_identities(result)
    write_definition(inputs.spec, zip_path)
    return result


def write_definition(spec: ProjectSpec, zip_path: Path) -> Path:
    """``<agent>.metadata.json`` beside the zip: the definition as built (flags applied), the
    multipart ``metadata`` part that ``deploy`` and ``validate`` pick up with the zip."""
    path = definition_path(zip_path)
    with atomic_output(path) as stream:
        stream.write((json.dumps(spec.metadata, indent=2, sort_keys=True) + "\n").encode())
    return path


def check_plan(plan: Plan) -> None:
    """Refuse a plan the validator would fail: build and validate share the rules."""
    from bundler.checks import CheckContext, errors, run_checks

    findings = errors(run_checks(plan.bundle, CheckContext(
        target=plan.target, mode=plan.spec.mode, entry_point=plan.spec.entry_point,
        metadata=plan.spec.metadata)))
    if findings:
        first = findings[0]
        more = f" (and {len(findings) - 1} more; `fbundle validate` lists them)" \
            if len(findings) > 1 else ""
        raise BuildError(f"{first.code} {first.path}: {first.message}{more}", first.hint)


def write_identities(result: BuildResult) -> None:
    """``<zip>.sha256`` (sha256sum format) and ``<zip>.json`` (both identities and the inputs)."""
    sha_path = sha256_path(result.zip_path)
    with atomic_output(sha_path) as stream:
        stream.write(f"{result.sha256}  {result.zip_path.name}\n".encode())
    info = {
        "sha256": result.sha256,
        "content_digest": result.content_digest,
        "compressor": compressor_fingerprint(),
        "input_key": result.input_key,
        "fbundle": __version__,
        "runtime": result.spec.runtime,
        "mode": result.spec.mode,
        "size": result.size,
        "entries": result.entries,
        "packages": result.packages,
    }
    with atomic_output(buildinfo_path(result.zip_path)) as stream:
        stream.write((json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
