"""A resolution pinned to exact wheels, read and written as PEP 751 ``pylock.toml``.

fbundle-specific facts (the runtime, the glibc floor, the hash of the requirements the lock was
made from) live under ``[tool.fbundle]``, where PEP 751 lets tools keep their own data.

A ``pylock.toml`` written by another tool (``uv export --format pylock.toml``, ``pdm export``,
``pip lock``) is read the way the spec tells an installer to read it (:func:`read_for_target`):
``environments`` and ``requires-python`` must admit the target, each package's ``marker`` is
evaluated for the target (``extras`` empty, ``dependency_groups`` the lock's
``default-groups``), and of a package's wheels the one the target ranks first is taken.
"""

from __future__ import annotations

import hashlib
import math
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w
from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion

from bundler.errors import BuildError, UsageError
from bundler.model import file_sha256
from bundler.targets import PythonTarget

LOCK_FILE = "pylock.toml"


@dataclass(frozen=True)
class WheelRef:
    """One exact artifact: where it is and what its bytes hash to.

    ``kind`` says how it becomes a wheel: ``wheel`` is one already; ``sdist`` (PEP 751
    ``sdist``) is built in isolation (see ``bundler.sdists``); ``directory`` is a local project
    (``path`` relative to the project, ``sha256`` the hash of its source tree) built the same
    way, ``editable`` recording that the requirement said ``-e`` (a bundle installs it
    normally).
    """

    filename: str
    sha256: str
    url: str | None = None
    path: str | None = None
    size: int | None = None
    kind: str = "wheel"
    editable: bool = False

    @property
    def location(self) -> str:
        return self.url or self.path or self.filename


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    wheel: WheelRef
    marker: str | None = None

    @property
    def key(self) -> str:
        return str(canonicalize_name(self.name))


@dataclass
class Lock:
    pins: list[Pin]
    runtime: str
    glibc: str
    requirements_sha256: str | None = None
    requires_python: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The requirement lines the lock was made from, so a stale lock can name the line that
    #: changed (the sha256 alone can only say *that* something changed).
    requirements: list[str] | None = None
    #: The tool that wrote the lock (``created-by``); "fbundle" for our own.
    created_by: str = "fbundle"
    #: The indexes and find-links the resolution used (pip config and the file's own options),
    #: credentials redacted: what ``fbundle lock`` resolved against.
    indexes: list[str] = field(default_factory=list)
    #: ``--exclude-package`` names (and the project config's) the lock was made with: a build
    #: from this lock must leave out the same ones (docs/build.md).
    exclude_packages: list[str] | None = None

    def sorted_pins(self) -> list[Pin]:
        return sorted(self.pins, key=lambda p: p.key)

    def by_name(self) -> dict[str, Pin]:
        """Pins by canonical project name."""
        return {pin.key: pin for pin in self.pins}

    def to_toml(self) -> str:
        packages = []
        for pin in self.sorted_pins():
            package: dict[str, Any] = {"name": pin.key}
            if pin.version:  # a local folder's version is known once it is built
                package["version"] = pin.version
            if pin.marker:
                package["marker"] = pin.marker
            ref = pin.wheel
            if ref.kind == "directory":
                # PEP 751 has no hash for a directory; ours (of the source tree) is tool data.
                package["directory"] = {"path": ref.path or ".", "editable": ref.editable}
                package["tool"] = {"fbundle": {"tree-sha256": ref.sha256}}
                packages.append(package)
                continue
            wheel: dict[str, Any] = {"name": ref.filename}
            if ref.url:
                wheel["url"] = ref.url
            if ref.path:
                wheel["path"] = ref.path
            if ref.size is not None:
                wheel["size"] = ref.size
            wheel["hashes"] = {"sha256": ref.sha256}
            if ref.kind == "sdist":
                package["sdist"] = wheel
            else:
                package["wheels"] = [wheel]
            packages.append(package)
        tool: dict[str, Any] = {"runtime": self.runtime, "glibc": self.glibc}
        if self.requirements_sha256:
            tool["requirements-sha256"] = self.requirements_sha256
        if self.requirements is not None:
            tool["requirements"] = list(self.requirements)
        if self.indexes:
            tool["indexes"] = list(self.indexes)
        if self.exclude_packages:
            tool["exclude-packages"] = sorted(self.exclude_packages)
        document: dict[str, Any] = {"lock-version": "1.0", "created-by": "fbundle"}
        if self.requires_python:
            document["requires-python"] = self.requires_python
        document["packages"] = packages
        document["tool"] = {"fbundle": tool}
        return tomli_w.dumps(document)

    @classmethod
    def from_toml(cls, text: str, source: str = LOCK_FILE,
                  pick: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None) -> Lock:
        """Parse a pylock.toml. A bundle lock pins one wheel per package; ``pick`` chooses one
        where a document lists several (uv lists every wheel that fits the target)."""
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise UsageError(f"{source}: not valid TOML ({error})",
                             "regenerate it with `fbundle lock`") from None
        if str(document.get("lock-version", "")).split(".")[0] != "1":
            raise UsageError(f"{source}: lock-version {document.get('lock-version')!r} "
                             "is not supported", "regenerate it with `fbundle lock`")
        tool = document.get("tool", {}).get("fbundle", {})
        pins = []
        for package in document.get("packages", []):
            wheels = package.get("wheels") or []
            if pick is not None and len(wheels) > 1:
                package = {**package, "wheels": [pick(wheels)]}
            pins.append(_pin_from_package(package, source))
        lines = tool.get("requirements")
        if lines is not None and (not isinstance(lines, list)
                                  or not all(isinstance(line, str) for line in lines)):
            raise UsageError(f"{source}: [tool.fbundle].requirements must be a list of strings",
                             "regenerate it with `fbundle lock`")
        excluded = tool.get("exclude-packages")
        if excluded is not None and (not isinstance(excluded, list)
                                     or not all(isinstance(n, str) for n in excluded)):
            raise UsageError(f"{source}: [tool.fbundle].exclude-packages must be a list of "
                             "names", "regenerate it with `fbundle lock`")
        return cls(
            exclude_packages=excluded,
            pins=pins,
            runtime=str(tool.get("runtime", "")),
            glibc=str(tool.get("glibc", "")),
            requirements_sha256=tool.get("requirements-sha256"),
            requires_python=document.get("requires-python"),
            requirements=lines,
            indexes=[str(i) for i in tool.get("indexes", [])],
        )

    @classmethod
    def read(cls, path: Path) -> Lock:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"{path}: cannot be read ({error})", "fix or delete it") from None
        return cls.from_toml(text, str(path))


def is_fbundle_lock(document: dict[str, Any]) -> bool:
    """Ours: written by fbundle (``[tool.fbundle]``), one wheel per package for one target."""
    return "fbundle" in (document.get("tool") or {})


def read_for_target(path: Path, target: PythonTarget, text: str | None = None) -> Lock:
    """``path`` as the lock of a bundle for ``target``: ours as written, another tool's
    ``pylock.toml`` narrowed to the target the way PEP 751 tells an installer to."""
    source = str(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"{path}: cannot be read ({error})", "fix or delete it") from None
    document = _toml(text, source)
    if is_fbundle_lock(document):
        return Lock.from_toml(text, source)
    return foreign_lock(document, target, source)


def best_wheel(target: PythonTarget) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
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


#: What a local project's tree hash leaves out: build output and caches, never sources.
_SKIPPED_DIRS = {".git", ".hg", ".svn", "__pycache__", "build", "dist", ".venv", "venv", ".tox",
                 ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", "node_modules"}


def tree_sha256(folder: Path) -> str:
    """A local project's identity: sha256 over its files' paths and contents (build output,
    VCS folders, caches and ``*.egg-info`` left out), so an edit rebuilds it and nothing
    else does."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = Path(root) / name
            relative = path.relative_to(folder).as_posix()
            digest.update(f"{relative}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def read_any(text: str, source: str, runtime: str | None = None) -> Lock:
    """A lock read only to name what a bundle holds (provenance, audit): ours as written,
    another tool's narrowed to ``runtime`` (default python_3_13), never refused for holding
    every platform's wheels."""
    document = _toml(text, source)
    if is_fbundle_lock(document):
        return Lock.from_toml(text, source)
    try:
        target = PythonTarget.for_runtime(runtime or "python_3_13")
    except UsageError:  # an unknown or .NET runtime: no narrowing to speak of, take 3.13
        target = PythonTarget.for_runtime("python_3_13")
    return foreign_lock(document, target, source)


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{source}: not valid TOML ({error})",
                         "regenerate it with the tool that wrote it") from None


def foreign_lock(document: dict[str, Any], target: PythonTarget, source: str) -> Lock:
    """Another tool's PEP 751 lock, narrowed to ``target`` (one wheel per package)."""
    tool = str(document.get("created-by") or "the tool that wrote it")
    regenerate = f"regenerate it with {tool}"
    version = str(document.get("lock-version", ""))
    if version.split(".")[0] != "1":
        raise UsageError(f"{source}: lock-version {document.get('lock-version')!r} is not "
                         "supported (PEP 751 lock-version 1.x is)", regenerate)
    environment: dict[str, Any] = {
        **target.marker_environment, "extras": frozenset(),
        "dependency_groups": frozenset(str(g) for g in document.get("default-groups") or []),
    }

    def holds(marker: object, what: str) -> bool:
        try:
            return Marker(str(marker)).evaluate(environment, context="lock_file")
        except InvalidMarker as error:
            raise UsageError(f"{source}: {what} marker {marker!r} is not valid ({error})",
                             regenerate) from None

    where = f"{target.runtime} (CPython {target.python_version}, x86_64 Linux)"
    environments = document.get("environments")
    if environments and not any(holds(m, "environments") for m in environments):
        raise UsageError(f"{source}: none of its environments ({'; '.join(environments)}) "
                         f"is {where}", f"lock for {target.runtime} too, then {regenerate}")
    _check_requires_python(document.get("requires-python"), target, source,
                           f"widen requires-python, or build for another runtime; {regenerate}")
    pick = best_wheel(target)
    pins: list[Pin] = []
    seen: dict[str, str] = {}
    for package in document.get("packages") or []:
        name = str(package.get("name") or "")
        label = f"{name} {package.get('version', '')}".strip()
        if "marker" in package and not holds(package["marker"], f"{label}'s"):
            continue
        _check_requires_python(package.get("requires-python"), target, source,
                               f"pin another version of {name}; {regenerate}", label)
        if name and (other := seen.get(str(canonicalize_name(name)))) is not None:
            raise UsageError(f"{source}: {name} is listed twice for {where} "
                             f"({other} and {package.get('version')})", regenerate)
        seen[str(canonicalize_name(name))] = str(package.get("version"))
        fitting = [w for w in package.get("wheels") or [] if _fits(w, target)]
        try:
            if fitting:
                pins.append(_pin_from_package({**package, "wheels": [pick(fitting)]}, source))
                continue
            # No wheel fits: an sdist, archive or local folder is built into a pure wheel
            # (bundler.sdists), as pip would build it; a VCS checkout is not.
            ref = _non_wheel_ref({**package, "name": name}, source)
        except UsageError as error:
            raise UsageError(error.message, regenerate) from None
        if ref is None:
            kinds = [k for k in ("vcs",) if k in package]
            has = f"only {', '.join(kinds)}" if kinds else \
                f"{len(package.get('wheels') or [])} wheel(s), none"
            if tool == "pip" and not kinds:
                # `pip lock` records the one artifact that fits the interpreter it ran on
                hint = (f"`pip lock` locks for the Python it runs on: run it with CPython "
                        f"{target.python_version} on Linux (python{target.python_version} -m "
                        "pip lock ...), or use remote_build")
            else:
                hint = ("a bundle needs a wheel for the target: lock a version that has one "
                        f"(manylinux glibc <= {target.glibc_text} or pure), or use remote_build")
            raise BuildError(f"{source}: {label} has {has} for {where}", hint)
        if ref.kind == "directory" and not ref.sha256:

            folder = Path(source).parent / (ref.path or ".")
            if not folder.is_dir():
                raise UsageError(f"{source}: {label}'s folder {ref.path} does not exist",
                                 regenerate)
            ref = replace(ref, sha256=tree_sha256(folder))
        pins.append(Pin(name=name, version=str(package.get("version") or ""), wheel=ref,
                        marker=package.get("marker")))
    return Lock(pins, runtime="", glibc="", requires_python=document.get("requires-python"),
                created_by=tool)


def _fits(wheel: dict[str, Any], target: PythonTarget) -> bool:
    name = str(wheel.get("name") or wheel.get("url") or wheel.get("path") or "")
    try:
        tags = parse_wheel_filename(name.rsplit("/", 1)[-1].split("#")[0])[3]
    except (InvalidWheelFilename, InvalidVersion):
        return False
    return bool(tags & set(target.tag_rank))


def python_admits(specifier: str, target: PythonTarget) -> bool:
    """Whether ``requires-python`` admits the target's CPython X.Y: some X.Y.N release (the
    service's patch level is not published, so ``>=3.13.2`` still admits python_3_13)."""
    spec = SpecifierSet(specifier)
    return any(spec.contains(f"{target.python_version}.{patch}", prereleases=True)
               for patch in range(0, 100))


def _check_requires_python(specifier: object, target: PythonTarget, source: str, hint: str,
                           what: str = "") -> None:
    if not specifier:
        return
    try:
        admitted = python_admits(str(specifier), target)
    except InvalidSpecifier as error:
        raise UsageError(f"{source}: requires-python {specifier!r} is not valid ({error})",
                         hint) from None
    if not admitted:
        raise UsageError(f"{source}: {what + ' ' if what else ''}requires-python "
                         f"{str(specifier)!r} excludes {target.runtime} (CPython "
                         f"{target.python_version})", hint)


def _pin_from_package(package: dict[str, Any], source: str) -> Pin:
    name = package.get("name")
    version = package.get("version")
    wheels = package.get("wheels") or []
    if not name or not (version or isinstance(package.get("directory"), dict)):
        raise UsageError(f"{source}: a package without name or version",
                         "regenerate it with `fbundle lock`")
    if not wheels:
        other = _non_wheel_ref(package, source)
        if other is not None:
            return Pin(str(name), str(version or ""), other, package.get("marker"))
    if len(wheels) != 1:
        raise UsageError(
            f"{source}: {name} {version} lists {len(wheels)} wheels; "
            "a bundle lock pins exactly one",
            "regenerate it with `fbundle lock` for this runtime",
        )
    wheel = wheels[0]
    url = wheel.get("url")
    path = wheel.get("path")
    filename = wheel.get("name") or (url or path or "").rsplit("/", 1)[-1].split("#")[0]
    sha256 = (wheel.get("hashes") or {}).get("sha256")
    if not filename.endswith(".whl") or not sha256:
        raise UsageError(f"{source}: {name} {version} has no wheel file name or sha256",
                         "regenerate it with `fbundle lock`")
    try:
        parse_wheel_filename(filename)
    except ValueError as error:
        raise UsageError(f"{source}: {error}", "regenerate it with `fbundle lock`") from None
    return Pin(
        name=str(name),
        version=str(version),
        marker=package.get("marker"),
        wheel=WheelRef(filename, sha256.lower(), url, path, wheel.get("size")),
    )


def _non_wheel_ref(package: dict[str, Any], source: str) -> WheelRef | None:
    """A PEP 751 ``directory``, ``sdist`` or ``archive`` (a direct URL or local file) as a
    ref; None when the package has none of them."""
    name, version = package["name"], package.get("version", "")
    directory = package.get("directory")
    if isinstance(directory, dict):
        tree = ((package.get("tool") or {}).get("fbundle") or {}).get("tree-sha256", "")
        return WheelRef(f"{canonicalize_name(str(name))}-{version}", str(tree),
                        path=str(directory.get("path", ".")), kind="directory",
                        editable=bool(directory.get("editable", False)))
    for key in ("sdist", "archive"):
        item = package.get(key)
        if not isinstance(item, dict):
            continue
        url, path = item.get("url"), item.get("path")
        filename = item.get("name") or (url or path or "").rsplit("/", 1)[-1].split("#")[0]
        sha256 = (item.get("hashes") or {}).get("sha256")
        if not sha256 or not filename:
            raise UsageError(f"{source}: {name} {version} has no file name or sha256",
                             "regenerate it with `fbundle lock`")
        kind = "wheel" if filename.endswith(".whl") else "sdist"
        return WheelRef(filename, str(sha256).lower(), url, path, item.get("size"), kind=kind)
    return None


def _requirement_key(line: str) -> str:
    """The project a requirement line is about (the line itself if it does not parse)."""
    try:
        return str(canonicalize_name(Requirement(line).name))
    except InvalidRequirement:
        return line


def requirement_changes(locked: list[str], current: list[str], text: str = "") -> list[str]:
    """What changed between the lines a lock was made from and the current ones, one phrase
    per change, paired by project name: ``line 2 changed: 'beta==1.0' -> 'beta==2.0'``,
    ``line 3 added: 'delta'``, ``removed: 'alpha'``. ``text`` (the current file) gives line
    numbers; without it the phrases have none."""
    from bundler.requirements import logical_lines

    numbers: dict[str, int] = {}
    for number, stripped in logical_lines(text):
        numbers.setdefault(stripped, number)

    def where(line: str) -> str:
        return f"line {numbers[line]} " if line in numbers else ""

    old = {_requirement_key(line): line for line in locked}
    new = {_requirement_key(line): line for line in current}
    changes = []
    for key, line in new.items():
        if key not in old:
            changes.append(f"{where(line)}added: {line!r}")
        elif old[key] != line:
            changes.append(f"{where(line)}changed: {old[key]!r} -> {line!r}")
    changes += [f"removed: {line!r}" for key, line in old.items() if key not in new]
    if not changes and locked != current:
        changes.append("the order of the lines changed")
    return changes
