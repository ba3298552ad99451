"""Requirements -> a ``Lock`` of exact wheels for the target, by uv (default) or pip.

Both resolvers run as subprocesses (neither has a Python API). Whatever they answer is checked
against the target here: every pinned wheel must carry a tag the target accepts, and the set of
packages must be the closure of the requirements with markers evaluated for the *target*
(pip evaluates some markers for the host even with ``--python-version``: pip issue 11010), so
``--resolver pip`` gives uv's set or a clear error, never a silently different bundle.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from bundler.indexes import IndexConfig
from bundler.lock import Lock, Pin, WheelRef
from bundler.targets import Target

log = logging.getLogger(__name__)

Runner = Callable[[Sequence[str], dict[str, str]], "subprocess.CompletedProcess[str]"]
RESOLVERS = ("uv", "pip")


def run(argv: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The default runner: a real subprocess, output captured as text."""
    log.debug("running %s", " ".join(argv))
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, check=False)


@dataclass(frozen=True)
class Requirements:
    """The requirement lines a project declares, and the file they came from."""

    lines: list[str]
    source: Path
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def parsed(self) -> list[Requirement]:
        result = []
        for line in self.lines:
            try:
                result.append(Requirement(line))
            except InvalidRequirement as error:
                reason = str(error).splitlines()[0]
                raise UsageError(f"{self.source}: {line!r} is not a valid requirement ({reason})",
                                 "fix the line") from None
        return result


def read_requirements(path: Path) -> Requirements:
    """Requirement lines of a requirements.txt (comments, blanks and options dropped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: not found", "bundled mode needs a requirements.txt") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot be read ({error})", "fix the file") from None
    lines = []
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if line.startswith("-"):
            raise UsageError(
                f"{path}: option line {line!r} is not supported",
                "put index settings in pip.conf or PIP_INDEX_URL; list plain requirements here",
            )
        lines.append(line)
    result = Requirements(lines, path, text)
    result.parsed()  # refuse a malformed line here, with its text
    return result


def pyproject_requirements(path: Path) -> Requirements:
    """``[project].dependencies`` of a pyproject.toml, for projects without requirements.txt."""
    import tomllib

    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"{path}: cannot be read ({error})", "fix the file") from None
    dependencies = document.get("project", {}).get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise UsageError(f"{path}: [project].dependencies must be a list of strings",
                         "fix the file")
    result = Requirements(list(dependencies), path, "\n".join(dependencies) + "\n")
    result.parsed()
    return result


def wheel_tags(filename: str) -> frozenset[Tag]:
    try:
        return parse_wheel_filename(filename)[3]
    except InvalidWheelFilename as error:
        raise BuildError(f"{filename}: not a valid wheel file name ({error})") from None


def check_fits(lock: Lock, target: Target) -> None:
    """Every pinned wheel must carry a tag the target accepts."""
    for pin in lock.pins:
        tags = wheel_tags(pin.wheel.filename)
        if not tags & set(target.tag_rank):
            raise ResolutionError(
                f"{pin.name} {pin.version}: wheel {pin.wheel.filename} does not fit "
                f"{target.runtime} (CPython {target.python_version}, manylinux glibc "
                f"{target.glibc_text}, x86_64)",
                "re-lock for this runtime with `fbundle lock`",
            )


def closure(requirements: list[Requirement], metadata: dict[NormalizedName, list[str]],
            target: Target) -> set[NormalizedName]:
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

    def __init__(self, target: Target, indexes: IndexConfig, *, kind: str = "uv",
                 offline: bool = False, runner: Runner = run) -> None:
        if kind not in RESOLVERS:
            raise UsageError(f"unknown resolver {kind!r}", "use --resolver uv or --resolver pip")
        self.target = target
        self.indexes = indexes
        self.kind = kind
        self.offline = offline
        self.runner = runner

    def resolve(self, requirements: Requirements) -> Lock:
        if not requirements.lines:
            return self._lock([])
        with tempfile.TemporaryDirectory(prefix="fbundle-resolve-") as tmp:
            source = Path(tmp) / "requirements.in"
            source.write_text("\n".join(requirements.lines) + "\n", encoding="utf-8")
            if self.kind == "uv":
                lock = self._uv(source, Path(tmp))
            else:
                lock = self._pip(source, Path(tmp), requirements)
        lock.requirements_sha256 = requirements.sha256
        check_fits(lock, self.target)
        return lock

    def _lock(self, pins: list[Pin]) -> Lock:
        return Lock(pins, self.target.runtime, self.target.glibc_text,
                    requires_python=f">={self.target.python_version}")

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("UV_NO_PROGRESS", "1")
        return env

    def _uv(self, source: Path, tmp: Path) -> Lock:
        from uv import find_uv_bin

        output = tmp / "pylock.toml"
        argv = [
            find_uv_bin(), "pip", "compile", str(source), "--quiet", "--no-header",
            "--no-config", "--format", "pylock.toml", "-o", str(output),
            # The target is described by --python-version/--python-platform; naming this
            # interpreter stops uv from searching for (or downloading) a CPython 3.13 first.
            "--python", sys.executable, "--no-python-downloads",
            "--python-version", self.target.python_version,
            "--python-platform", self.target.uv_platform,
            "--only-binary", ":all:", *self.indexes.uv_args(),
            # pip's semantics: every configured index is one pool of candidates.
            "--index-strategy", "unsafe-best-match",
        ]
        if self.offline:
            argv.append("--offline")
        result = self.runner(argv, self._env())
        if result.returncode != 0:
            raise self._explain(result.stderr or result.stdout)
        parsed = Lock.from_toml(output.read_text(encoding="utf-8"), "uv's lock",
                                pick=best_wheel(self.target))
        return self._lock(parsed.pins)

    def _pip(self, source: Path, tmp: Path, requirements: Requirements) -> Lock:
        """pip, corrected for the target: pip evaluates ``python_version`` markers for this
        machine's interpreter (pip issue 11010), so what the target needs but pip left out is
        added as a top-level requirement and pip runs again; what only the host needed is
        dropped. A few rounds converge (each adds at least one package)."""
        if self.offline:
            raise UsageError("--offline needs --resolver uv or a pylock.toml",
                             "run `fbundle lock` while online, then build --offline")
        wanted_roots = requirements.parsed()
        extra_lines: list[str] = []
        for _ in range(8):
            source.write_text("\n".join([*requirements.lines, *extra_lines]) + "\n",
                              encoding="utf-8")
            pins, metadata = self._pip_report(source, tmp)
            wanted = closure(wanted_roots, metadata, self.target)
            got = {canonicalize_name(p.name) for p in pins}
            missing = wanted - got
            if not missing:
                for name in sorted(got - wanted):
                    log.info("dropping %s: pip chose it for this machine's Python only", name)
                return self._lock([p for p in pins if canonicalize_name(p.name) in wanted])
            extra_lines += _requirements_for(missing, metadata, self.target)
        raise ResolutionError(
            f"pip left out {', '.join(sorted(missing))}, which {self.target.runtime} needs",
            "use --resolver uv (the default)",
        )

    def _pip_report(self, source: Path, tmp: Path) -> tuple[list[Pin], dict[NormalizedName,
                                                                           list[str]]]:
        report = tmp / "report.json"
        argv = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--quiet", "--disable-pip-version-check", "--report", str(report),
            "--target", str(tmp / "target"), "--only-binary=:all:",
            "--implementation", "cp", "--python-version", self.target.python_version,
            "--abi", self.target.abi, "--abi", "abi3", "--abi", "none",
            *[arg for platform in self.target.platforms for arg in ("--platform", platform)],
            "-r", str(source), *self.indexes.pip_args(),
        ]
        env = self._env()
        env["PIP_CONFIG_FILE"] = os.devnull  # the index settings are passed explicitly
        result = self.runner(argv, env)
        if result.returncode != 0:
            if "No module named pip" in result.stderr:
                raise UsageError("--resolver pip needs pip installed beside fbundle",
                                 "pip install pip, or use the default --resolver uv")
            raise self._explain(result.stderr or result.stdout)
        data = json.loads(report.read_text(encoding="utf-8"))
        pins: list[Pin] = []
        metadata: dict[NormalizedName, list[str]] = {}
        for item in data.get("install", []):
            meta = item["metadata"]
            metadata[canonicalize_name(meta["name"])] = list(meta.get("requires_dist") or [])
            info = item["download_info"]
            url = info["url"]
            sha = ((info.get("archive_info") or {}).get("hashes") or {}).get("sha256")
            if not sha:
                raise ResolutionError(
                    f"the index gave no sha256 for {url.rsplit('/', 1)[-1]}",
                    "use an index that publishes hashes, or --resolver uv",
                )
            pins.append(Pin(meta["name"], meta["version"],
                            WheelRef(url.rsplit("/", 1)[-1], sha, url=url)))
        return pins, metadata

    def _explain(self, output: str) -> ResolutionError:
        """The resolver's failure in one line, with the newest fitting version when we can."""
        lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
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
        summary = next((line for line in lines if "because" in line.lower()), None) \
            or (lines[-1] if lines else "no output")
        summary = re.sub(r"^(error|ERROR|×|╰─▶)[:\s]*", "", summary)
        return ResolutionError(
            f"cannot resolve the requirements for {self.target.runtime}: {summary}",
            "check the names and versions; pin a version that has manylinux wheels for "
            f"CPython {self.target.python_version}, or raise the floor with --glibc",
        )

    def _newest_fitting(self, name: str) -> tuple[str, str] | None:
        """Ask the index which versions of ``name`` exist and which fit the target."""
        if self.offline:
            return None
        files = _index_files(name, self.indexes)
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


def best_wheel(target: Target) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """Of the wheels a lock lists for one package, the one the target ranks first.

    uv lists every wheel that fits (aiohttp 3.14: a cp313 manylinux wheel *and* a py3-none-any
    fallback); an installer on the target would take the best-ranked tag, so the bundle does.
    """
    rank = target.tag_rank

    def preference(wheel: dict[str, Any]) -> float:
        name = wheel.get("name") or str(wheel.get("url") or wheel.get("path") or "")
        try:
            tags = parse_wheel_filename(name.rsplit("/", 1)[-1].split("#")[0])[3]
        except (InvalidWheelFilename, InvalidVersion):
            return math.inf
        return min((rank[t] for t in tags if t in rank), default=math.inf)  # inf: never fits

    return lambda wheels: min(wheels, key=preference)


def _requirements_for(names: set[NormalizedName], metadata: dict[NormalizedName, list[str]],
                      target: Target) -> list[str]:
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


def _version_of(filename: str) -> Version | None:
    try:
        return parse_wheel_filename(filename)[1]
    except (InvalidWheelFilename, InvalidVersion):
        return None


def _floor_needed(platforms: list[str], target: Target) -> str | None:
    """The lowest glibc floor at which one of ``platforms`` (x86_64 manylinux) is accepted."""
    floors = []
    for platform in platforms:
        match = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", platform)
        if match:
            floors.append((int(match.group(1)), int(match.group(2))))
    floors = [f for f in floors if f > target.glibc]
    if not floors:
        return None
    low = min(floors)
    return f"{low[0]}.{low[1]}"


def _index_files(name: str, indexes: IndexConfig) -> list[str]:
    """Wheel file names for ``name`` on the configured indexes (PEP 691 JSON, else PEP 503)."""
    import httpx  # only on a resolution failure: keeps `fbundle build` start-up light

    files: list[str] = []
    project = canonicalize_name(name)
    if indexes.no_index:
        urls: list[str] = []
    else:
        urls = [indexes.index_url, *indexes.extra_index_urls]
    for base in urls:
        if not base.startswith(("http://", "https://")):
            continue
        try:
            response = httpx.get(
                f"{base.rstrip('/')}/{project}/",
                headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"},
                timeout=15.0, follow_redirects=True, verify=indexes.verify(),
            )
        except httpx.HTTPError:
            continue
        if response.status_code != 200:
            continue
        if "json" in response.headers.get("content-type", ""):
            data: dict[str, Any] = response.json()
            files += [f["filename"] for f in data.get("files", [])]
        else:
            files += re.findall(r">\s*([^<>\s]+\.whl)\s*<", response.text)
    for link in indexes.find_links:
        folder = Path(link.removeprefix("file://"))
        if folder.is_dir():
            files += [p.name for p in folder.glob("*.whl")
                      if canonicalize_name(p.name.split("-")[0]) == project]
    return [f for f in files if f.endswith(".whl")]
