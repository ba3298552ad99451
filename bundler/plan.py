"""The plan: everything a build decides before a byte is written.

``read_inputs`` reads what decides a bundle's bytes (the project, its target, its sources, its
lock) from hashes alone, so ``build`` can notice a no-op; ``plan_inputs`` then fetches and lays
out the wheels (or publishes the .NET project) and decides every entry. ``BuildOptions`` is the
one typed record of what the user asked for; the CLI builds it from explicit flags.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bundler import __version__
from bundler.cache import WheelCache, cache_root
from bundler.collect import Collection, rehashed, scan_sources
from bundler.errors import BuildError, UsageError
from bundler.identity import build_outputs
from bundler.indexes import IndexConfig, read_pip_config
from bundler.lock import LOCK_FILE, Lock, Pin, WheelRef, read_for_target, requirement_changes
from bundler.model import Bundle, BytesData, Entry, FileData
from bundler.options import DEFAULT_OPTIONS, BuildOptions
from bundler.project import ProjectSpec, load_project
from bundler.projectlocks import (
    POETRY_LOCK,
    UV_LOCK,
    ProjectLock,
    check_requires_python,
    pinned_requirements,
    read_pyproject,
    refuse_poetry,
    uv_lock,
)
from bundler.records import PACKAGES
from bundler.requirements import (
    Requirements,
    not_shipped,
    pyproject_requirements,
    read_requirements,
)
from bundler.resolve import Resolver, check_fits, check_hashes
from bundler.sdists import current_local
from bundler.settings import float_env
from bundler.shape import ShapeReport, Shaping, shape, shaping_for, with_project_config
from bundler.targets import DEFAULT_GLIBC, DotnetTarget, PythonTarget, Target, parse_glibc
from bundler.wheels import LaidOutWheel, layout_wheel, reshape
from bundler.write import OutputError, atomic_output

if TYPE_CHECKING:
    from bundler.dotnet import DotnetInputs

log = logging.getLogger(__name__)
REQUIREMENTS = "requirements.txt"


@dataclass
class Plan:
    """Everything a build decided, before a byte is written."""

    spec: ProjectSpec
    target: PythonTarget | DotnetTarget
    bundle: Bundle
    collection: Collection
    lock: Lock | None = None
    wheels: list[LaidOutWheel] = field(default_factory=list)
    shaped: ShapeReport = field(default_factory=ShapeReport)  # exclusions, slim, compile

    @property
    def packages(self) -> list[dict[str, str]]:
        return packages_of(self.lock)


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


def check_outputs(spec: ProjectSpec, sources: Iterable[Entry], zip_path: Path) -> None:
    """Refuse (exit 2, before anything is written) a zip path, or a file written beside it
    (``.sha256``, ``.json``, ``<stem>.metadata.json``), that would replace one of the project's
    own files: a source, the agent definition, the lock, the requirements, an ignore file."""
    root = spec.root.resolve()
    protected: dict[Path, str] = {
        path.resolve(): what for path, what in (
            (root / REQUIREMENTS, "the project's requirements"),
            (root / "pyproject.toml", "the project's pyproject.toml"),
            (root / LOCK_FILE, "the project's lock"),
            (root / UV_LOCK, "the project's uv.lock"),
            (root / POETRY_LOCK, "the project's poetry.lock"),
            (root / ".fbundleignore", "the project's .fbundleignore"),
            (root / ".agentignore", "the project's .agentignore"),
        )}
    for entry in sources:
        if isinstance(entry.data, FileData):
            protected[entry.data.path.resolve()] = f"the source {entry.name}"
    if spec.metadata_path is not None:
        protected[spec.metadata_path.resolve()] = "the agent definition"
    for output in sorted(build_outputs(zip_path)):
        what = "the zip" if output == zip_path else f"{output.name}, which build writes beside it"
        resolved = output.resolve()
        if resolved in protected:
            raise UsageError(
                f"{output} is {protected[resolved]}: writing {what} there would replace it",
                "pass -o a path that is not a project file (the default is dist/<agent>.zip)")
        if resolved.is_dir():
            raise UsageError(f"{output} is a folder: {what} cannot be written there",
                             "pass -o another path, or remove that folder")


@dataclass
class Inputs:
    """What decides a bundle's bytes, read before any wheel is fetched or opened: enough to
    notice a no-op from hashes alone."""

    spec: ProjectSpec
    target: PythonTarget | DotnetTarget
    collection: Collection
    requirements: Requirements | None = None
    lock: Lock | None = None
    dotnet: DotnetInputs | None = None  # the project read, not yet published
    #: The requirements.txt a lock pins, shipped when the project has none (a uv project's
    #: remote_build bundle: the service's pip then installs exactly the locked files).
    pinned: str | None = None
    shaping: Shaping = field(default_factory=Shaping)
    #: Where the wheels come from: pip's configuration with the requirements file's own index
    #: options, read once per build (the resolution and the downloads both use it).
    indexes: IndexConfig = field(default_factory=IndexConfig)

    @property
    def packages(self) -> list[dict[str, str]]:
        return packages_of(self.lock)


def project_lock(root: Path, target: PythonTarget) -> ProjectLock | None:
    """The lock the project brought from another tool, when it decides the dependencies.

    In order: ``requirements.txt`` or ``pylock.toml`` (whoever wrote it) decide when present;
    else a uv project's ``uv.lock``; a poetry project is refused with its export command.
    Every pyproject's ``requires-python`` must admit the target.
    """
    pyproject = read_pyproject(root)
    if pyproject.get("project"):
        check_requires_python(root, pyproject, target)
    others = [name for name in (UV_LOCK, POETRY_LOCK) if (root / name).is_file()]
    for decides in (LOCK_FILE, REQUIREMENTS):
        if (root / decides).exists():
            if others:
                log.warning("%s decides the dependencies; %s is not read", decides,
                            " and ".join(others))
            return None
    if (root / UV_LOCK).is_file() and pyproject.get("project"):
        return uv_lock(root, target)
    refuse_poetry(root, pyproject)
    return None


def read_inputs(root: Path, options: BuildOptions = DEFAULT_OPTIONS) -> Inputs:
    """The project, its target, its sources and (bundled Python) its lock: what decides the
    bytes, read from hashes alone (nothing is fetched or published here)."""
    options = with_project_config(root, options)
    spec = load_project(root, metadata_path=options.metadata, name=options.name,
                        flags=options.flags())
    target = target_for(spec, options)
    if isinstance(target, DotnetTarget):
        from bundler.dotnet import effective_definition, read_dotnet_inputs

        dotnet = read_dotnet_inputs(spec, project_file=options.project_file,
                                    output=output_path(spec, options))
        check_outputs(spec, dotnet.sources, output_path(spec, options))
        return Inputs(effective_definition(spec, dotnet.entry), target,
                      dotnet.collection or Collection(entries=dotnet.sources), dotnet=dotnet)
    excludes = ["/packages/"] if spec.mode == "bundled" else []
    collection = scan_sources(root, excludes, output=output_path(spec, options),
                              entry_point=spec.entry_point)
    check_outputs(spec, collection.entries, output_path(spec, options))
    if (project := project_lock(root, target)) is not None:
        if options.update_lock:
            raise UsageError(f"--update-lock rewrites {LOCK_FILE}; this project is locked by "
                             f"{project.kind}", "run `uv lock` to update it")
        inputs = Inputs(spec, target, collection, project.requirements,
                        pinned=project.requirements.text,
                        indexes=read_pip_config().with_file_options(project.requirements.options))
        if spec.mode == "bundled":
            inputs.lock = project.lock
        return inputs
    requirements = requirements_of(root)
    pinned = None
    if requirements is None and (root / LOCK_FILE).is_file():
        # a pylock.toml alone (another tool's): it pins the requirements.txt the service reads
        lock = read_for_target(root / LOCK_FILE, target)
        requirements = pinned_requirements(lock, root / LOCK_FILE, lock.created_by)
        pinned = requirements.text
    if requirements is None:
        raise UsageError(
            f"{root}: no requirements.txt (or pyproject.toml dependencies, uv.lock, pylock.toml)",
            f"create {REQUIREMENTS}, even an empty one: the service expects it in {spec.mode} mode",
        )
    inputs = Inputs(spec, target, collection, requirements, pinned=pinned,
                    indexes=read_pip_config().with_file_options(requirements.options))
    if spec.mode == "bundled":
        inputs.lock = locked_requirements(root, requirements, target, inputs.indexes, options)
        if options.update_lock:  # the lock was rewritten after it was collected
            collection.entries = [rehashed(e) if e.name == LOCK_FILE else e
                                  for e in collection.entries]
        check_locked_exclusions(root, inputs.lock, options)
        inputs.shaping = shaping_for(root, options, target)
    elif missing := not_shipped(requirements, {e.name for e in collection.entries}):
        # the service's own pip reads requirements.txt from the zip root, and these with it
        raise UsageError(
            f"{requirements.source.name} names {', '.join(missing)}, which the zip would not "
            "hold; the service's pip reads requirements.txt in the zip and would not find it",
            "keep -r/-c files, local packages and --find-links folders inside the project "
            "(and out of .fbundleignore)")
    return inputs


def check_locked_exclusions(root: Path, lock: Lock, options: BuildOptions) -> None:
    """A build from ``pylock.toml`` leaves out what the lock says was left out: the lock is
    the record CI repeats, so a different --exclude-package / config is a stale lock."""
    if not (root / LOCK_FILE).is_file() or options.update_lock \
            or getattr(lock, "created_by", "fbundle") != "fbundle":
        return
    locked = sorted(lock.exclude_packages or [])
    if locked != sorted(options.exclude_packages):
        raise BuildError(
            f"{LOCK_FILE} was made excluding {', '.join(locked) or 'nothing'}; this build "
            f"excludes {', '.join(options.exclude_packages) or 'nothing'}",
            "run `fbundle lock` with the same exclusions (or build with --update-lock)")


def target_for(spec: ProjectSpec, options: BuildOptions) -> PythonTarget | DotnetTarget:
    """The runtime the project names, at the glibc floor ``--glibc`` asks for."""
    glibc = parse_glibc(options.glibc) if options.glibc else DEFAULT_GLIBC
    return Target.for_runtime(spec.runtime, glibc)


def plan_inputs(inputs: Inputs, options: BuildOptions = DEFAULT_OPTIONS) -> Plan:
    """Fetch and lay out the locked wheels, and decide every entry of the bundle."""
    entries = list(inputs.collection.entries)
    if inputs.dotnet is not None:
        from bundler.dotnet import dotnet_entries

        entries = dotnet_entries(inputs.spec, inputs.dotnet, verbose=options.verbose)
    target = inputs.target
    plan = Plan(inputs.spec, target, Bundle([]), inputs.collection, inputs.lock)
    if inputs.lock is not None and isinstance(target, PythonTarget):  # (only Python has locks)
        cache = WheelCache(indexes=inputs.indexes)
        plan.wheels = lay_out(inputs.lock, cache, offline=options.offline,
                              base=inputs.spec.root, target=target,
                              builder=options.resolver)
        plan.wheels, added, plan.shaped = shape(
            plan.wheels, entries,
            inputs.requirements.roots() if inputs.requirements else [],
            target, inputs.shaping)
        entries += added
        plan.wheels, plan.shaped.overwritten = settle_overlaps(plan.wheels)
        entries += [e for wheel in plan.wheels for e in wheel.entries]
        entries = merge_package_entries(entries)
    if inputs.requirements is not None and not any(e.name == REQUIREMENTS for e in entries):
        # pyproject-only projects: the service reads requirements.txt, so write one.
        lines = [f"{p.name}=={p.version}" for p in inputs.lock.sorted_pins()] if inputs.lock \
            else inputs.requirements.lines
        text = (inputs.pinned or "\n".join(lines) + "\n").encode("utf-8")
        entries.append(Entry(REQUIREMENTS, len(text), BytesData(text), origin="generated"))
    plan.bundle = Bundle(entries).sorted()
    return plan


def plan_project(root: Path, options: BuildOptions = DEFAULT_OPTIONS) -> Plan:
    """Decide every entry of the bundle for ``root`` (nothing is written)."""
    return plan_inputs(read_inputs(root, options), options)


def locked_requirements(root: Path, requirements: Requirements, target: PythonTarget,
                        indexes: IndexConfig, options: BuildOptions) -> Lock:
    """The project's pylock.toml when it is current, else a fresh resolution."""
    lock_path = root / LOCK_FILE
    if lock_path.is_file() and not options.update_lock:
        lock = read_for_target(lock_path, target)
        if lock.created_by != "fbundle":
            # Another tool's lock records no inputs to compare: it is taken as written.
            check_fits(lock, target)
            return lock
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
        check_hashes(lock, requirements)
        return current_local(lock, root, strict=True, source=LOCK_FILE)
    if lock_path.is_file():
        refuse_foreign(lock_path, "--update-lock")
    lock = recent_resolution(requirements, target, indexes, options)
    if lock_path.is_file() and options.update_lock:
        write_lock(lock, lock_path)
    return lock


RESOLUTION_TTL = 600  # seconds; PyPI's simple pages say max-age=600, which pip's cache honours


def recent_resolution(requirements: Requirements, target: PythonTarget, indexes: IndexConfig,
                      options: BuildOptions) -> Lock:
    """A resolution of ``requirements`` no older than the freshness window, else a new one.

    Without a lock every build would ask the index again; within ``FBUNDLE_RESOLUTION_TTL``
    seconds (default 600, the freshness PyPI gives its simple pages; 0 turns it off) the last
    answer for the same requirements, target, indexes and resolver is reused. ``--refresh``
    always asks; ``--offline`` takes the last answer whatever its age.
    """
    key = hashlib.sha256(json.dumps({
        "fbundle": __version__, "requirements": requirements.lines,
        "runtime": target.runtime, "glibc": target.glibc_text, "resolver": options.resolver,
        "no_build": options.no_build, "indexes": indexes.fingerprint()},
        sort_keys=True).encode()).hexdigest()
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
                return current_local(lock, requirements.base or requirements.source.parent,
                                     strict=False, source="the last resolution")
    resolver = Resolver(target, indexes, kind=options.resolver, offline=options.offline,
                        build=not options.no_build)
    lock = resolver.resolve(requirements)
    lock.requirements = list(requirements.lines)
    lock.exclude_packages = list(options.exclude_packages)
    try:
        write_lock(lock, memo)
    except OutputError as error:  # a read-only cache: the next build asks the index again
        log.debug("not keeping the resolution in %s (%s)", memo.parent, error.cause.strerror)
    return lock


def lock_project(root: Path, options: BuildOptions = DEFAULT_OPTIONS) -> tuple[Path, Lock]:
    """Resolve afresh and write ``pylock.toml``; parsed back before it replaces the old one."""
    options = with_project_config(root, options)
    spec = load_project(root, metadata_path=options.metadata, name=options.name,
                        flags=options.flags())
    target = target_for(spec, options)
    if not isinstance(target, PythonTarget):
        raise UsageError(f"{spec.runtime} projects have no Python lock",
                         "`fbundle lock` is for python_3_13 / python_3_14 projects")
    if (root / LOCK_FILE).is_file():
        refuse_foreign(root / LOCK_FILE, "`fbundle lock`")
    elif (project := project_lock(root, target)) is not None:
        raise UsageError(f"{root}: this project is locked by {project.kind}, which fbundle "
                         "builds from as it is", "run `uv lock` to update it")
    requirements = requirements_of(root)
    if requirements is None:
        raise UsageError(f"{root}: no requirements.txt (or pyproject.toml dependencies)",
                         "list the agent's dependencies in requirements.txt")
    resolver = Resolver(target, read_pip_config().with_file_options(requirements.options),
                        kind=options.resolver, offline=options.offline,
                        build=not options.no_build)
    lock = resolver.resolve(requirements)
    lock.requirements = list(requirements.lines)
    lock.exclude_packages = list(options.exclude_packages)
    path = root / LOCK_FILE
    write_lock(lock, path)
    return path, lock


def refuse_foreign(path: Path, what: str) -> None:
    """Never overwrite a lock another tool wrote: it is that tool's to regenerate."""
    import tomllib

    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return  # ours to rewrite: damaged, not foreign
    if "fbundle" not in (document.get("tool") or {}):
        tool = document.get("created-by") or "another tool"
        raise UsageError(f"{path} was written by {tool}; {what} would overwrite it",
                         f"regenerate it with {tool}, or delete it to let fbundle lock")


def write_lock(lock: Lock, path: Path) -> None:
    text = lock.to_toml()
    if Lock.from_toml(text).to_toml() != text:  # the file must say what we mean
        raise BuildError(f"{path}: the lock does not parse back to itself", "please report it")
    with atomic_output(path) as stream:
        stream.write(text.encode("utf-8"))


def lay_out(lock: Lock, cache: WheelCache, *, offline: bool, base: Path,
            target: PythonTarget | None = None, builder: str = "uv") -> list[LaidOutWheel]:
    """Fetch every pinned wheel (verified) and lay it out under ``packages/``; sdists and
    local packages are built into pure wheels first (``bundler.sdists``), by the build's
    resolver (``uv build``, or ``pip wheel`` with ``--resolver pip``).

    Each wheel is laid out as soon as it arrives, in a thread pool: downloads overlap with the
    first-use RECORD validation of the wheels already here (zlib and hashlib release the GIL).
    """
    from bundler.sdists import SourceBuilder, wheel_of

    sources = SourceBuilder(cache.root, cache.indexes,
                            target or PythonTarget.for_runtime(lock.runtime),
                            offline=offline, kind=builder,
                            origin="uv.lock" if lock.created_by == "uv" else LOCK_FILE)

    def fetch(ref: WheelRef) -> Path:
        return cache.fetch(ref, offline=offline, base=base)

    def one(pin: Pin) -> LaidOutWheel:
        path, sha256 = wheel_of(pin.name, pin.wheel, fetch, sources, base)
        wheel = layout_wheel(path, sha256, verified=cache.is_verified(sha256))
        cache.mark_verified(sha256)  # skipped on a read-only cache
        return wheel

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(one, lock.sorted_pins()))
    finally:
        cache.close()


def settle_overlaps(wheels: list[LaidOutWheel]) -> tuple[list[LaidOutWheel], list[str]]:
    """Two distributions that ship the same ``packages/`` path, as ``pip install --target``
    settles them: identical bytes are one file (both RECORDs list it, nothing said); different
    bytes, the copy of the distribution whose canonical name sorts last ships (pip writes the
    later install over the earlier; sorting makes "later" independent of resolution order)
    and the other's RECORD drops the row, so RECORD matches the bytes (FB405) and provenance
    names the winner. Returns the wheels and one line per (loser, winner) pair saying so."""
    owner: dict[str, tuple[LaidOutWheel, Entry]] = {}
    lost: dict[str, set[str]] = {}  # loser's name -> paths it does not ship
    pairs: dict[tuple[str, str], list[str]] = {}
    for wheel in sorted(wheels, key=lambda w: (w.name, w.version)):
        folder = f"{PACKAGES}{wheel.dist_info}/"
        for entry in wheel.entries:
            if entry.name.startswith(folder):
                continue  # a dist-info is its own distribution's
            before = owner.get(entry.name)
            if before is not None and before[1].digest() != entry.digest():
                earlier = before[0]
                lost.setdefault(earlier.name, set()).add(entry.name)
                pairs.setdefault((f"{earlier.name} {earlier.version}",
                                  f"{wheel.name} {wheel.version}"), []).append(entry.name)
            if before is None or before[1].digest() != entry.digest():
                owner[entry.name] = (wheel, entry)
    settled: list[LaidOutWheel] = []
    for wheel in wheels:
        gone = lost.get(wheel.name, set())
        settled.append(reshape(wheel, _overwritten(gone))[0] if gone else wheel)
    lines: list[str] = []
    for (loser, winner), paths in sorted(pairs.items()):
        more = f" (and {len(paths) - 1} more)" if len(paths) > 1 else ""
        lines.append(f"{sorted(paths)[0]}{more} comes from both {loser} and {winner} with "
                     f"different bytes: {winner}'s copy ships (the distribution that sorts last "
                     "wins, as a later pip install overwrites)")
    return settled, lines


def _overwritten(gone: set[str]) -> Callable[[str], str | None]:
    return lambda name: "overwritten by a later distribution" if name in gone else None


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


