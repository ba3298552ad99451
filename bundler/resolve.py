"""Requirements -> a ``Lock`` of exact wheels for the target, by uv (default) or pip.

Both resolvers run as subprocesses (neither has a Python API). Whatever they answer is checked
against the target here: every pinned wheel must carry a tag the target accepts, and the set of
packages must be the closure of the requirements with markers evaluated for the *target*
(pip evaluates some markers for the host even with ``--python-version``: pip issue 11010), so
``--resolver pip`` gives uv's set or a clear error, never a silently different bundle.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from bundler.errors import BuildError, ResolutionError, UsageError
from bundler.indexes import IndexConfig, index_files, newest_fitting_version
from bundler.lock import Lock, Pin, WheelRef, best_wheel, tree_sha256
from bundler.model import file_sha256
from bundler.redact import redact_urls
from bundler.requirements import Requirements
from bundler.runner import Runner, run_logged
from bundler.targets import PythonTarget, glibc_to_ask, manylinux_floor

log = logging.getLogger(__name__)

RESOLVERS = ("uv", "pip")


def wheel_tags(filename: str) -> frozenset[Tag]:
    try:
        return parse_wheel_filename(filename)[3]
    except InvalidWheelFilename as error:
        raise BuildError(f"{filename}: not a valid wheel file name ({error})") from None


def check_fits(lock: Lock, target: PythonTarget) -> None:
    """Every pinned wheel must carry a tag the target accepts (sdists and local folders are
    checked once built: only a pure wheel is accepted from them)."""
    for pin in lock.pins:
        if pin.wheel.kind != "wheel":
            continue
        tags = wheel_tags(pin.wheel.filename)
        if not tags & set(target.tag_rank):
            raise ResolutionError(
                f"{pin.name} {pin.version}: wheel {pin.wheel.filename} does not fit "
                f"{target.runtime} (CPython {target.python_version}, manylinux glibc "
                f"{target.glibc_text}, x86_64)",
                "re-lock for this runtime with `fbundle lock`",
            )


def closure(requirements: list[Requirement], metadata: dict[NormalizedName, list[str]],
            target: PythonTarget) -> set[NormalizedName]:
    """Names reachable from ``requirements`` with markers evaluated for the target."""
    needed: set[NormalizedName] = set()
    extras_of: dict[NormalizedName, set[str]] = {}
    stack = [(r, frozenset[str]()) for r in requirements if target.evaluate(r.marker)]
    while stack:
        requirement, _ = stack.pop()
        name = canonicalize_name(requirement.name)
        extras = extras_of.setdefault(name, set())
        new_extras = set(requirement.extras) - extras
        if name in needed and not new_extras:
            continue
        needed.add(name)
        extras |= new_extras
        for line in metadata.get(name, []):
            dependency = Requirement(line)
            if target.evaluate(dependency.marker, frozenset(extras)):
                stack.append((dependency, frozenset()))
    return needed


class Resolver:
    """Runs uv or pip for a target and returns a checked ``Lock``."""

    def __init__(self, target: PythonTarget, indexes: IndexConfig, *, kind: str = "uv",
                 offline: bool = False, runner: Runner = run_logged, build: bool = True) -> None:
        if kind not in RESOLVERS:
            raise UsageError(f"unknown resolver {kind!r}", "use --resolver uv or --resolver pip")
        self.target = target
        self.indexes = indexes
        self.kind = kind
        self.offline = offline
        self.runner = runner
        #: sdists and local folders may be built (``--no-build`` turns it off)
        self.build = build

    def resolve(self, requirements: Requirements) -> Lock:
        """Resolve ``requirements`` for the target. The resolver reads the requirements file
        itself (``-r``, ``-c``, ``--hash``, local paths, URLs, index options), run from the
        project folder so relative paths mean what they mean to pip there."""
        if not requirements.entries:
            return self._lock([])
        for entry in requirements.entries:
            if (entry.url or "").startswith(("git+", "hg+", "svn+", "bzr+")):
                raise UsageError(
                    f"{entry.where} {redact_urls(entry.written)!r}: a VCS requirement cannot be "
                    "bundled (it is cloned and built at every resolution, and no sha256 pins "
                    "the result)", "pin a release, or build its wheel and list the .whl; "
                    "remote_build ships the line as written")
        base = (requirements.base or requirements.source.parent).resolve()
        with tempfile.TemporaryDirectory(prefix="fbundle-resolve-") as tmp:
            if requirements.source.name == "pyproject.toml":
                source = Path(tmp) / "requirements.in"
                source.write_text("\n".join(requirements.lines) + "\n", encoding="utf-8")
            else:
                source = requirements.source.resolve()
            if self.kind == "uv":
                lock = self._uv(source, Path(tmp), base, requirements)
            else:
                lock = self._pip(source, Path(tmp), requirements, base)
        lock.requirements_sha256 = requirements.sha256
        lock.indexes = self.indexes.described()
        check_fits(lock, self.target)
        check_hashes(lock, requirements)
        return lock

    def _lock(self, pins: list[Pin]) -> Lock:
        return Lock(pins, self.target.runtime, self.target.glibc_text,
                    requires_python=f">={self.target.python_version}")

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("UV_NO_PROGRESS", "1")
        return env

    def _uv(self, source: Path, tmp: Path, base: Path, requirements: Requirements) -> Lock:
        """uv, wheels first: a first pass takes wheels only (``--only-binary :all:``, so a
        floor that rules out a version's wheels falls back to an older version with one).
        Only if that fails, and building is allowed, a second pass lets sdists in; a package
        it took as an sdist although some version has a wheel for the target is then held to
        wheels (``--only-binary <name>``) in a third pass, so sdists are built only for packages
        that have no wheel at all."""
        result = self._uv_pass(source, tmp, base, requirements, ["--only-binary", ":all:"])
        if isinstance(result, Lock):
            return result
        if not self.build:
            raise self._explain(result)
        second = self._uv_pass(source, tmp, base, requirements, [])
        if not isinstance(second, Lock):
            raise self._explain(second)
        held = [] if self.offline else [
            pin.key for pin in second.pins
            if pin.wheel.kind == "sdist"
            and newest_fitting_version(pin.name, self.indexes, self.target) is not None]
        if not held:
            return second
        third = self._uv_pass(source, tmp, base, requirements,
                              [arg for name in held for arg in ("--only-binary", name)])
        # held to wheels, nothing fits: building the sdist is the only way (and says why not)
        return third if isinstance(third, Lock) else second

    def _uv_pass(self, source: Path, tmp: Path, base: Path, requirements: Requirements,
                 binary: list[str]) -> Lock | str:
        """One ``uv pip compile``: the lock, or uv's whole output when it failed."""
        from uv import find_uv_bin

        output = tmp / "pylock.toml"
        output.unlink(missing_ok=True)
        argv = [
            find_uv_bin(), "pip", "compile", str(source), "--quiet", "--no-header",
            "--no-config", "--format", "pylock.toml", "-o", str(output),
            # The target is described by --python-version/--python-platform; naming this
            # interpreter stops uv from searching for (or downloading) a CPython 3.13 first.
            "--python", sys.executable, "--no-python-downloads",
            "--python-version", self.target.python_version,
            "--python-platform", self.target.uv_platform,
            *binary, *self.indexes.uv_args(),
            # pip's semantics: every configured index is one pool of candidates.
            "--index-strategy", "unsafe-best-match",
            "--prerelease", prerelease_mode(requirements),
        ]
        if self.offline:
            argv.append("--offline")
        result = self.runner(argv, env=self._env(), cwd=base)
        if result.returncode != 0:
            return result.stderr or result.stdout
        parsed = Lock.from_toml(output.read_text(encoding="utf-8"), "uv's lock",
                                pick=best_wheel(self.target))
        pins = [_rebased(pin, tmp, base) for pin in parsed.pins]
        if not self.build:
            for pin in pins:
                if pin.wheel.kind != "wheel":
                    raise UsageError(
                        f"{pin.name}: {pin.wheel.path or pin.wheel.filename} must be built, "
                        "and --no-build builds nothing",
                        "build without --no-build, or list a wheel instead")
        return self._lock(pins)

    def _pip(self, source: Path, tmp: Path, requirements: Requirements, base: Path) -> Lock:
        """pip, corrected for the target and held to the one prerelease policy.

        pip evaluates ``python_version`` markers for this machine's interpreter (pip issue
        11010), so what the target needs but pip left out is added as a top-level requirement
        and pip runs again; what only the host needed is dropped. pip also takes a prerelease
        wherever *any* specifier on a package names one (``foo>=1.0b1`` in a dependency's
        metadata), where uv takes one only for a package the project itself names that way
        (:func:`prerelease_mode`): such a prerelease is held back (``foo<2.3.0`` for
        ``2.3.0b2``) and pip runs again, unless nothing else satisfies (uv's "if necessary").

        pip takes only wheels for another platform (``--only-binary=:all:`` is required with
        ``--platform``), so a requirement no wheel satisfies is built the way ``pip wheel``
        builds it (:meth:`_build_for_pip`): pip picks the sdist for the target, fbundle builds
        it in isolation into a pure wheel, and pip runs again with that wheel beside the
        index; the lock records the sdist. A few rounds converge (each adds a package, builds
        one or holds one back)."""
        if self.offline:
            raise UsageError("--offline needs --resolver uv or a pylock.toml",
                             "run `fbundle lock` while online, then build --offline")
        wanted_roots = requirements.parsed()
        explicit = explicit_prereleases(requirements)
        extra_lines: list[str] = []
        held: dict[NormalizedName, str] = {}
        necessary: set[NormalizedName] = set()  # held back, nothing else satisfied
        last_good: Lock | None = None
        driver = tmp / "requirements-fbundle.in"
        held_file = tmp / "prereleases-held.txt"
        missing: set[NormalizedName] = set()
        built = _Built(tmp / "built")
        for _ in range(32):
            # pip reads the project's own file; the target's extra roots ride beside it.
            held_file.write_text("".join(f"{n}{spec}\n" for n, spec in sorted(held.items())),
                                 encoding="utf-8")
            read = source
            if built.refs and requirements.hash_checking:
                read = _without_hashes(requirements, tmp)
            driver.write_text("\n".join([f"-r {read}", f"-c {held_file}", *extra_lines])
                              + "\n", encoding="utf-8")
            try:
                pins, metadata, requested = self._pip_report(driver, tmp, base, built)
            except _NoWheel as error:
                if (not self.build or error.name in held or error.name in built.refs):
                    raise self._explain(error.output) from None
                self._build_for_pip(error, tmp, base, built, requirements)
                continue
            except ResolutionError as error:
                # only a prerelease satisfies the held package: uv takes it too ("if
                # necessary"); let go of the ones pip names and try again
                named_in = {n for n in held if re.search(rf"\b{re.escape(n)}\b", str(error))}
                if last_good is None or not named_in:
                    if last_good is not None:
                        return last_good
                    raise
                necessary |= named_in
                held = {n: v for n, v in held.items() if n not in named_in}
                continue
            named = {canonicalize_name(r.name) for r in wanted_roots}
            roots = wanted_roots + [Requirement(n) for n in requested if n not in named]
            wanted = closure(roots, metadata, self.target)
            got = {canonicalize_name(p.name) for p in pins}
            missing = wanted - got
            if missing:
                extra_lines += _requirements_for(missing, metadata, self.target)
                continue
            for name in sorted(got - wanted):
                log.info("dropping %s: pip chose it for this machine's Python only", name)
            lock = self._lock([p for p in pins if canonicalize_name(p.name) in wanted])
            if requirements.options.pre:
                return lock
            newly = {canonicalize_name(p.name): f"<{Version(p.version).base_version}"
                     for p in lock.pins if p.version and Version(p.version).is_prerelease
                     and canonicalize_name(p.name) not in explicit | necessary | set(held)}
            if not newly:
                return lock
            for name, spec in newly.items():
                log.info("holding back %s %s: only a dependency's specifier names a "
                         "prerelease (the policy uv applies)", name, spec)
            last_good = lock
            held.update(newly)
        raise ResolutionError(
            f"pip left out {', '.join(sorted(missing))}, which {self.target.runtime} needs",
            "use --resolver uv (the default)",
        )

    def _pip_target_args(self) -> list[str]:
        """The target, as pip's ``--python-version``/``--abi``/``--platform`` describe it."""
        return ["--implementation", "cp", "--python-version", self.target.python_version,
                "--abi", self.target.abi, "--abi", "abi3", "--abi", "none",
                *[arg for platform in self.target.platforms for arg in ("--platform", platform)]]

    def _pip_run(self, argv: list[str], base: Path) -> subprocess.CompletedProcess[str]:
        env = self._env()
        env["PIP_CONFIG_FILE"] = os.devnull  # the index settings are passed explicitly
        result = self.runner(argv, env=env, cwd=base)
        if result.returncode != 0 and "No module named pip" in result.stderr:
            raise UsageError("--resolver pip needs pip installed beside fbundle",
                             "pip install pip, or use the default --resolver uv")
        return result

    def _pip_report(self, source: Path, tmp: Path, base: Path, built: _Built) -> tuple[
            list[Pin], dict[NormalizedName, list[str]], list[NormalizedName]]:
        report = tmp / "report.json"
        report.unlink(missing_ok=True)
        built.folder.mkdir(exist_ok=True)
        argv = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--quiet", "--disable-pip-version-check", "--report", str(report),
            "--target", str(tmp / "target"), "--only-binary=:all:", *self._pip_target_args(),
            "-r", str(source), *self.indexes.pip_args(), "--find-links", str(built.folder),
        ]
        result = self._pip_run(argv, base)
        if result.returncode != 0:
            output = result.stderr or result.stdout
            if (requirement := unsatisfied_requirement(output)) is not None:
                raise _NoWheel(requirement, output)
            raise self._explain(output)
        data = json.loads(report.read_text(encoding="utf-8"))
        pins: list[Pin] = []
        metadata: dict[NormalizedName, list[str]] = {}
        requested: list[NormalizedName] = []
        for item in data.get("install", []):
            meta = item["metadata"]
            name = canonicalize_name(meta["name"])
            metadata[name] = list(meta.get("requires_dist") or [])
            if item.get("requested"):
                requested.append(name)
            info = item["download_info"]
            url = info["url"]
            if "dir_info" in info and (folder := _local_path(url)) is not None:
                # a local project: built (pure only) when laid out, as uv's folders are. No
                # version: PEP 751 forbids one for a source tree (it may change under the lock)
                pins.append(Pin(meta["name"], "", WheelRef(
                    f"{name}-", tree_sha256(folder),
                    path=_project_relative(folder, base), kind="directory",
                    editable=bool(info["dir_info"].get("editable", False)))))
                continue
            sha = ((info.get("archive_info") or {}).get("hashes") or {}).get("sha256")
            local = _local_path(url)
            if not sha and local is not None and local.is_file():
                sha = file_sha256(local)
            if not sha:
                raise ResolutionError(
                    f"the index gave no sha256 for {url.rsplit('/', 1)[-1]}",
                    "use an index that publishes hashes, or --resolver uv",
                )
            filename = unquote(url.split("#", 1)[0].rsplit("/", 1)[-1])
            if local is not None and local.parent == built.folder:
                ref = built.refs[name]  # a wheel fbundle built: the lock records its sdist
            elif local is None:
                ref = WheelRef(filename, sha, url=url)
            else:
                ref = WheelRef(filename, sha, path=_project_relative(local, base))
            pins.append(Pin(meta["name"], meta["version"], ref))
        return pins, metadata, requested

    def _build_for_pip(self, failure: _NoWheel, tmp: Path, base: Path, built: _Built,
                       requirements: Requirements) -> None:
        """What ``pip wheel`` would do for a requirement no wheel satisfies: pip chooses its
        sdist *for the target* (``--no-deps`` is what lets ``--platform`` and an sdist meet),
        fbundle fetches it (sha256 verified, into the wheel cache) and builds it with
        ``pip wheel --no-deps`` in isolation. Only a pure result runs on the target; a native
        one is refused with what to do instead. In hash-checking mode the sdist's sha256 must
        be one the file lists before anything runs its build backend, as in pip."""
        from bundler.cache import WheelCache, cache_root
        from bundler.sdists import NativeBuild, SourceBuilder, native_refusal

        requirement = failure.requirement
        requirement.marker = None  # pip already decided it applies
        builder = SourceBuilder(cache_root(), self.indexes, self.target, runner=self.runner,
                                kind="pip", origin=requirements.source.name)
        if pinned := _exact_version(requirement):
            # before pip's dry run below, which may build the whole wheel for its metadata
            builder.refuse_native(requirement.name, version=pinned)
        report = tmp / "sdist-report.json"
        report.unlink(missing_ok=True)
        argv = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--no-deps", "--quiet", "--disable-pip-version-check", "--report", str(report),
            "--target", str(tmp / "target"), "--no-binary", requirement.name,
            *self._pip_target_args(), str(requirement), *self.indexes.pip_args(),
        ]
        result = self._pip_run(argv, base)
        if result.returncode != 0:
            # no sdist either (or it cannot even say its metadata): pip's first answer stands
            raise self._explain(failure.output + "\n" + (result.stderr or result.stdout))
        [item] = json.loads(report.read_text(encoding="utf-8"))["install"]
        info = item["download_info"]
        url = str(info["url"])
        sha = ((info.get("archive_info") or {}).get("hashes") or {}).get("sha256")
        if not sha:
            raise ResolutionError(f"the index gave no sha256 for {url.rsplit('/', 1)[-1]}",
                                  "use an index that publishes hashes, or --resolver uv")
        name = canonicalize_name(item["metadata"]["name"])
        filename = unquote(url.split("#", 1)[0].rsplit("/", 1)[-1])
        local = _local_path(url)
        ref = WheelRef(filename, sha, url=url, kind="sdist") if local is None else \
            WheelRef(filename, sha, path=_project_relative(local, base), kind="sdist")
        check_hashes(self._lock([Pin(item["metadata"]["name"], item["metadata"]["version"],
                                     ref)]), requirements)
        cache = WheelCache(builder.root.parent, indexes=self.indexes)
        try:
            wheel = builder.cached(sha)
            if wheel is None:
                builder.refuse_native(str(name), filename)
                wheel = builder.from_sdist(ref, cache.fetch(ref, base=base), str(name))
        except NativeBuild as error:
            raise native_refusal(error, ref, builder) from None
        finally:
            cache.close()
        shutil.copy2(wheel, built.folder / wheel.name)
        built.refs[name] = ref
        log.info("built %s from its sdist %s for pip (no wheel satisfies %s)", wheel.name,
                 filename, requirement)

    def _explain(self, output: str) -> ResolutionError:
        """The resolver's failure in one line, with the newest fitting version when we can."""
        match = re.search(r"(\S+)==(\S+) has no wheels with a matching platform tag", output) \
            or re.search(r"(\S+)==(\S+) has no usable wheels", output)
        if match:
            name = match.group(1).strip("`'\"")
            if hint := self._newest_fitting(name):
                return ResolutionError(hint[0], hint[1])
        match = re.search(r"(?:No matching distribution found for|no version of|"
                          r"not found in the package registry)\s*`?([A-Za-z0-9_.\-]+)", output)
        if match:
            name = match.group(1)
            if hint := self._newest_fitting(name):
                return ResolutionError(hint[0], hint[1])
        return ResolutionError(
            f"cannot resolve the requirements for {self.target.runtime}: {full_reason(output)}",
            "check the names and versions; pin a version that has manylinux wheels for "
            f"CPython {self.target.python_version}, or raise the floor with --glibc "
            "(-v shows the resolver's whole output)",
        )

    def _newest_fitting(self, name: str) -> tuple[str, str] | None:
        """Ask the index which versions of ``name`` exist and which fit the target."""
        if self.offline:
            return None
        files = index_files(name, self.indexes)
        if not files:
            return None
        newest: tuple[Version, str] | None = None
        fitting: Version | None = None
        for filename in files:
            try:
                _, version, _, tags = parse_wheel_filename(filename)
            except (InvalidWheelFilename, InvalidVersion):
                continue
            if version.is_prerelease:
                continue
            if newest is None or version > newest[0]:
                newest = (version, filename)
            if tags & set(self.target.tag_rank) and (fitting is None or version > fitting):
                fitting = version
        if newest is None:
            return None
        version, _ = newest
        newest_tags = sorted({t.platform for f in files if _version_of(f) == version
                              for t in wheel_tags(f)})
        where = f"CPython {self.target.python_version} manylinux glibc {self.target.glibc_text}"
        if fitting is not None and fitting < version:
            needed = _floor_needed(newest_tags, self.target)
            raise_hint = f", or raise the floor with --glibc {needed}" if needed else ""
            return (
                f"{name} {version} ships only {', '.join(newest_tags)} wheels; the newest with "
                f"a wheel for {where} is {fitting}",
                f"pin it ({name}=={fitting}){raise_hint}",
            )
        if fitting is None:
            needed = _floor_needed(newest_tags, self.target)
            raise_hint = f"raise the floor with --glibc {needed}" if needed else \
                "choose another package or runtime"
            return (f"no version of {name} has a wheel for {where} "
                    f"(newest {version} ships {', '.join(newest_tags)})", raise_hint)
        return None


#: pip's words for a requirement that no candidate it may take (wheels only) satisfies.
_NO_VERSION = re.compile(r"Could not find a (?:final )?version that satisfies the requirement "
                         r"(.+?) \(from versions:")


def unsatisfied_requirement(output: str) -> Requirement | None:
    """The requirement pip's failure says nothing satisfies, with the specifier whoever asked
    gave (``puresrc<1`` in ``... the requirement puresrc<1 (from usespure) (from versions:
    none)``); the ``(from ...)`` notes after it, which nest (``(from -r req.txt (line 2))``),
    are dropped. None when pip failed for another reason."""
    match = _NO_VERSION.search(output)
    if match is None:
        return None
    text = match.group(1).strip()
    while text.endswith(")") and "(from " in text:  # peel one balanced "(from ...)"
        depth = 0
        for index in range(len(text) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(text[index], 0)
            if depth == 0:
                break
        if not text[index:].startswith("(from "):
            break
        text = text[:index].rstrip()
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


class _NoWheel(Exception):
    """pip found no wheel for ``requirement`` (its whole ``output`` kept, for the error)."""

    def __init__(self, requirement: Requirement, output: str) -> None:
        super().__init__(str(requirement))
        self.requirement = requirement
        self.name = canonicalize_name(requirement.name)
        self.output = output


@dataclass
class _Built:
    """The wheels fbundle built from sdists during one pip resolution: the ``--find-links``
    folder pip sees them in, and the sdist each came from (what the lock records)."""

    folder: Path
    refs: dict[NormalizedName, WheelRef] = field(default_factory=dict)


_INDEX_OPTIONS = ("-i", "--index-url", "--extra-index-url", "--no-index", "-f", "--find-links",
                  "--require-hashes")


def _without_hashes(requirements: Requirements, tmp: Path) -> Path:
    """The requirements as pip should read them once fbundle has built a wheel from an sdist:
    the same lines without ``--hash``. pip would hold the built wheel to the hashes of the
    sdist it came from and refuse it; the hashes are still pip's rule, checked by
    :func:`check_hashes` against what was fetched (the sdist's sha256 for a built one). Index
    options are left out: they reach pip as arguments already (``IndexConfig``)."""
    constraints = tmp / "constraints-unhashed.txt"
    constraints.write_text("".join(f"{e.spec}\n" for e in requirements.constraints),
                           encoding="utf-8")
    lines = [("-e " if e.editable else "") + e.spec for e in requirements.requirements]
    lines += [line for line in requirements.option_lines
              if line.split("=", 1)[0].split()[0] not in _INDEX_OPTIONS]
    path = tmp / "requirements-unhashed.txt"
    path.write_text("".join(f"{line}\n" for line in [*lines, f"-c {constraints}"]),
                    encoding="utf-8")
    return path


def full_reason(output: str) -> str:
    """The resolver's whole explanation on one line: every cause and hint it gave (which
    package, which tag was missing, the chain that required it), its decorations dropped
    and credentials redacted; pip's progress lines are left out."""
    kept = []
    for raw in output.strip().splitlines():
        line = raw.strip()
        if not line or line.startswith(("Collecting ", "Downloading ", "Using cached",
                                        "Looking in ", "Processing ", "Obtaining ")):
            continue
        line = re.sub(r"^(error|ERROR|×|╰─▶|hint|cause)[:\s]+", "", line)
        line = re.sub(r"^(error|ERROR|×|╰─▶|hint|cause)[:\s]+", "", line)
        if line and line not in kept:
            kept.append(line)
    return redact_urls(" ".join(kept)) or "no output"


def prerelease_mode(requirements: Requirements) -> str:
    """The one prerelease policy, for both resolvers: uv's default, named: a prerelease is
    taken only for a package whose own requirement line names one (``foo>=2.3.0b1``), or
    that has nothing else; ``--pre`` in the file allows them everywhere (pip's ``--pre``)."""
    return "allow" if requirements.options.pre else "if-necessary-or-explicit"


def explicit_prereleases(requirements: Requirements) -> set[NormalizedName]:
    """The packages the project itself names with a prerelease specifier (``foo>=2.0b1``),
    in a requirement or a constraint: the only ones that may resolve to a prerelease."""
    return {canonicalize_name(e.requirement.name) for e in requirements.entries
            if e.requirement is not None and e.requirement.specifier.prereleases}


def check_hashes(lock: Lock, requirements: Requirements) -> None:
    """pip's hash-checking mode: when any line has ``--hash``, every pinned distribution must
    be listed with hashes, and its artifact's sha256 must be one of them (exit 1 otherwise,
    naming the package and both hashes)."""
    if not requirements.hash_checking:
        return
    loose = [f"{e.written.split()[0]} ({e.where})" for e in requirements.requirements
             if e.requirement is not None and e.requirement.url is None
             and not (len(e.requirement.specifier) == 1
                      and next(iter(e.requirement.specifier)).operator in ("==", "==="))]
    if loose:
        raise BuildError(
            f"hash-checking mode (a --hash in {requirements.source.name}) needs every "
            f"requirement pinned with ==, and these are not: {', '.join(loose)}",
            "pin them (pip-compile --generate-hashes writes such a file), as the service's "
            "pip would refuse them too")
    allowed = requirements.hashes
    for pin in lock.sorted_pins():
        if pin.wheel.kind == "directory":
            continue  # a local folder has no archive to hash; pip refuses it in this mode too
        listed = allowed.get(canonicalize_name(pin.name))
        if not listed:
            raise BuildError(
                f"{pin.name} {pin.version} has no --hash in {requirements.source.name}, and "
                f"hash-checking mode requires one for every package (its {pin.wheel.filename}"
                f" has sha256:{pin.wheel.sha256})",
                "regenerate the file with pip-compile --generate-hashes (or uv pip compile "
                "--generate-hashes)")
        if pin.wheel.sha256 not in listed:
            raise BuildError(
                f"{pin.name} {pin.version}: {pin.wheel.filename} has sha256:{pin.wheel.sha256},"
                f" which is not a hash {requirements.source.name} allows "
                f"({', '.join('sha256:' + h for h in sorted(listed))})",
                "the index serves other bytes than the file was written for: check the index,"
                " or regenerate the hashes if the change is expected")


def _local_path(url: str) -> Path | None:
    parts = urlsplit(url)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


def _project_relative(path: Path, base: Path) -> str:
    """A project-relative POSIX path when ``path`` is inside the project, else absolute."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(base).as_posix()
    except ValueError:
        return str(resolved)


def _rebased(pin: Pin, lock_dir: Path, base: Path) -> Pin:
    """uv writes local paths relative to its output file; make them project-relative."""
    ref = pin.wheel
    if ref.path is None:
        local = _local_path(ref.url) if ref.url else None
        if local is None:
            return pin
        return replace(pin, wheel=replace(ref, url=None, path=_project_relative(local, base)))
    path = Path(ref.path)
    absolute = path if path.is_absolute() else lock_dir / path
    rebased = replace(ref, path=_project_relative(absolute, base))
    if ref.kind == "directory":

        rebased = replace(rebased, sha256=tree_sha256(absolute))
    return replace(pin, wheel=rebased)


def _requirements_for(names: set[NormalizedName], metadata: dict[NormalizedName, list[str]],
                      target: PythonTarget) -> list[str]:
    """Requirement lines (markers dropped, specifiers kept) that pull in ``names``."""
    lines = []
    for dependencies in metadata.values():
        for line in dependencies:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) in names and target.evaluate(
                    requirement.marker, frozenset(requirement.extras) or frozenset()):
                requirement.marker = None
                lines.append(str(requirement))
    return sorted(set(lines))


def _exact_version(requirement: Requirement) -> str | None:
    """The one version ``requirement`` pins (``==2.4.4``, ``===2.4.4``), else None."""
    specifiers = list(requirement.specifier)
    if len(specifiers) == 1 and specifiers[0].operator in ("==", "===") \
            and not specifiers[0].version.endswith(".*"):
        return specifiers[0].version
    return None


def _version_of(filename: str) -> Version | None:
    try:
        return parse_wheel_filename(filename)[1]
    except (InvalidWheelFilename, InvalidVersion):
        return None


def _floor_needed(platforms: list[str], target: PythonTarget) -> str | None:
    """The ``--glibc`` at which one of ``platforms`` (x86_64 manylinux) is taken: the lowest
    floor above the target's, as uv is asked at it (:func:`bundler.targets.glibc_to_ask`)."""
    floors = [f for p in platforms if (f := manylinux_floor(p)) is not None and f > target.glibc]
    if not floors:
        return None
    low = glibc_to_ask(min(floors))
    return f"{low[0]}.{low[1]}"


