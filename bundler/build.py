"""``fbundle build``: a project folder -> ``dist/<agent>.zip`` and its identities.

The pipeline: collect sources -> resolve (or read the lock) -> fetch wheels into the cache ->
lay them out under ``packages/`` -> the bundle plan -> checks -> the deterministic writer.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bundler import __version__
from bundler.cache import WheelCache
from bundler.collect import Collection, scan_sources
from bundler.errors import BuildError, UsageError
from bundler.indexes import IndexConfig, read_pip_config
from bundler.lock import LOCK_FILE, Lock
from bundler.model import Bundle, BytesData, Entry, content_digest
from bundler.project import ProjectSpec, load_project
from bundler.resolve import Requirements, Resolver, pyproject_requirements, read_requirements
from bundler.targets import Target, parse_glibc
from bundler.wheels import PACKAGES, LaidOutWheel, layout_wheel
from bundler.write import ZipTooLarge, atomic_output, compressor_fingerprint, write_zip

log = logging.getLogger(__name__)
MAX_ZIP_BYTES = 250 * 1000 * 1000  # the service's 250 MB multipart limit
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
        return [{"name": w.name, "version": w.version, "wheel": w.filename, "sha256": w.sha256}
                for w in sorted(self.wheels, key=lambda w: w.name)]


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


def plan_project(root: Path, options: BuildOptions = BuildOptions()) -> Plan:
    """Decide every entry of the bundle for ``root`` (nothing is written)."""
    spec = load_project(root, metadata_path=options.metadata, runtime=options.runtime,
                        mode=options.mode, name=options.name)
    glibc = parse_glibc(options.glibc) if options.glibc else None
    target = Target.for_runtime(spec.runtime, *([glibc] if glibc else []))
    if spec.is_dotnet:
        from bundler.dotnet import plan_dotnet

        entries = plan_dotnet(spec, project_file=options.project_file, verbose=options.verbose)
        return Plan(spec, target, Bundle(entries).sorted(), Collection(entries=entries))
    excludes = ["/packages/"] if spec.mode == "bundled" else []
    collection = scan_sources(root, excludes, output=output_path(spec, options))
    entries = list(collection.entries)
    requirements = requirements_of(root)
    if requirements is None:
        raise UsageError(
            f"{root}: no requirements.txt (or pyproject.toml dependencies)",
            f"create {REQUIREMENTS}, even an empty one: the service expects it in {spec.mode} mode",
        )
    plan = Plan(spec, target, Bundle([]), collection)
    if spec.mode == "bundled":
        plan.lock = locked_requirements(root, requirements, target, options)
        cache = WheelCache(indexes=_indexes(options))
        plan.wheels = lay_out(plan.lock, cache, offline=options.offline, base=root)
        entries += [e for wheel in plan.wheels for e in wheel.entries]
        entries = merge_package_entries(entries)
    if not any(e.name == REQUIREMENTS for e in entries):
        # pyproject-only projects: the service reads requirements.txt, so write one.
        lines = [f"{p.name}=={p.version}" for p in plan.lock.sorted_pins()] if plan.lock \
            else requirements.lines
        text = ("\n".join(lines) + "\n").encode("utf-8")
        entries.append(Entry(REQUIREMENTS, len(text), BytesData(text), origin="generated"))
    plan.bundle = Bundle(entries).sorted()
    return plan


def _indexes(options: BuildOptions) -> IndexConfig:
    return read_pip_config()


def locked_requirements(root: Path, requirements: Requirements, target: Target,
                        options: BuildOptions) -> Lock:
    """The project's pylock.toml when it is current, else a fresh resolution."""
    lock_path = root / LOCK_FILE
    if lock_path.is_file() and not options.update_lock:
        lock = Lock.read(lock_path)
        if lock.requirements_sha256 and lock.requirements_sha256 != requirements.sha256:
            from bundler.lock import requirement_changes

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
        from bundler.resolve import check_fits

        check_fits(lock, target)
        return lock
    resolver = Resolver(target, _indexes(options), kind=options.resolver, offline=options.offline)
    lock = resolver.resolve(requirements)
    lock.requirements = list(requirements.lines)
    if lock_path.is_file() and options.update_lock:
        write_lock(lock, lock_path)
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
    resolver = Resolver(target, _indexes(options), kind=options.resolver, offline=options.offline)
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
    """Fetch every pinned wheel (verified) and lay it out under ``packages/``."""
    refs = [pin.wheel for pin in lock.sorted_pins()]
    paths = cache.fetch_all(refs, offline=offline, base=base)
    wheels = []
    for ref in refs:
        verified_marker = cache.root / "verified" / ref.sha256
        wheel = layout_wheel(paths[ref.sha256], ref.sha256, verified=verified_marker.exists())
        verified_marker.parent.mkdir(parents=True, exist_ok=True)
        verified_marker.touch()
        wheels.append(wheel)
    return wheels


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


def input_key(plan: Plan) -> str:
    """A hash of every input that decides the zip's bytes: same key, same zip."""
    digest = hashlib.sha256()
    digest.update(f"fbundle {__version__}\n{compressor_fingerprint()}\n".encode())
    for entry in plan.bundle.entries:
        digest.update(f"{entry.name}\0{entry.mode:o}\0{entry.digest()}\n".encode())
    import os

    digest.update(os.environ.get("SOURCE_DATE_EPOCH", "").encode())
    return digest.hexdigest()


def build_project(root: Path, options: BuildOptions = BuildOptions(), **overrides: Any) -> \
        BuildResult:
    """Build ``root`` into its zip; an unchanged input key reuses the zip already there."""
    if overrides:
        options = BuildOptions(**{**options.__dict__, **overrides})
    plan = plan_project(root, options)
    zip_path = output_path(plan.spec, options)
    key = input_key(plan)
    checked = checks_key(plan, key)
    info_path = buildinfo_path(zip_path)
    previous = _read_buildinfo(info_path)
    # A no-op is noticed from the inputs' hashes: the same key and the same check context as a
    # zip that passed the checks and still hashes to its recorded sha256 -> nothing is redone,
    # not even the checks (they are a function of exactly those inputs).
    if previous.get("input_key") == key and previous.get("checks_key") == checked \
            and zip_path.is_file():
        from bundler.lock import file_sha256

        if file_sha256(zip_path) == previous.get("sha256"):
            log.info("inputs unchanged; %s is up to date", zip_path)
            return _result(plan, zip_path, previous["sha256"], zip_path.stat().st_size,
                           previous["content_digest"], key, reused=True)
    check_plan(plan)
    try:
        written = write_zip(plan.bundle.entries, zip_path, limit=MAX_ZIP_BYTES)
    except ZipTooLarge as error:
        raise BuildError(error.message, "largest packages: " + largest(plan.bundle)) from None
    digest = content_digest(plan.bundle.entries)
    result = _result(plan, zip_path, written.sha256, written.size, digest, key, reused=False)
    write_identities(result, checks_key=checked)
    return result


def checks_key(plan: Plan, key: str) -> str:
    """``key`` plus what the checks see besides the entries (target, mode, entry point, the
    agent definition): a zip that passed them under this key passes them again."""
    context = {"runtime": plan.target.runtime, "glibc": plan.target.glibc_text,
               "mode": plan.spec.mode, "entry_point": plan.spec.entry_point,
               "metadata": plan.spec.metadata}
    text = json.dumps(context, sort_keys=True, default=str)
    return hashlib.sha256(f"{key}\n{text}".encode()).hexdigest()


def _result(plan: Plan, zip_path: Path, sha256: str, size: int, digest: str, key: str,
            *, reused: bool) -> BuildResult:
    return BuildResult(zip_path, sha256, size, sum(1 for _ in plan.bundle.files()), digest, key,
                       plan.spec, plan.packages, reused)


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


def largest(bundle: Bundle, count: int = 5) -> str:
    """The biggest top-level folders of ``packages/`` (or the root), for size errors."""
    sizes: dict[str, int] = defaultdict(int)
    for entry in bundle.files():
        name = entry.name
        if name.startswith(PACKAGES):
            top = PACKAGES + name[len(PACKAGES):].split("/", 1)[0]
        else:
            top = name.split("/", 1)[0]
        sizes[top] += entry.size
    ranked = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:count]
    return ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in ranked)


def buildinfo_path(zip_path: Path) -> Path:
    return zip_path.with_name(zip_path.name + ".json")


def _read_buildinfo(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_identities(result: BuildResult, *, checks_key: str | None = None) -> None:
    """``<zip>.sha256`` (sha256sum format) and ``<zip>.json`` (both identities and the inputs)."""
    sha_path = result.zip_path.with_name(result.zip_path.name + ".sha256")
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
    if checks_key:
        info["checks_key"] = checks_key
    with atomic_output(buildinfo_path(result.zip_path)) as stream:
        stream.write((json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
