"""Wheels built from source: sdists without a wheel for the target, and local packages.

Each is built in isolation by the build's resolver — ``uv build --wheel``, or with
``--resolver pip`` ``pip wheel --no-deps`` (both make a fresh build environment with the
project's own ``build-system.requires``, PEP 517) — with ``SOURCE_DATE_EPOCH`` fixed (the
project's value, else 1980-01-01) so a rebuild gives the same bytes. Only a pure result
(``py3-none-any``, ``py2.py3-none-any``) is accepted: a wheel built here is built for *this*
machine's interpreter and platform, never the service's, so native code built here would be
wrong for the target. The result is cached by what it was built from: an sdist's sha256, or a
local folder's tree hash (see :func:`bundler.lock.tree_sha256`).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

from bundler.errors import BuildError, UsageError
from bundler.indexes import IndexConfig, newest_fitting_version, release_wheels
from bundler.lock import Lock, WheelRef, tree_sha256
from bundler.model import file_sha256
from bundler.redact import redact_urls
from bundler.runner import Runner, run_logged
from bundler.targets import PythonTarget, glibc_to_ask, manylinux_floor

log = logging.getLogger(__name__)

#: 1980-01-01, the zip epoch: the default build time when the project sets none.
DEFAULT_EPOCH = "315532800"
#: The frontends that can build a wheel, one per resolver.
BUILDERS = ("uv", "pip")


def is_pure(filename: str) -> bool:
    """A wheel any CPython 3 on any platform can use: every tag ``py3``/``py2``, ``none``,
    ``any``."""
    try:
        tags: frozenset[Tag] = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        return False
    return all(t.abi == "none" and t.platform == "any" and t.interpreter in ("py3", "py2")
               for t in tags)


class SourceBuilder:
    """Builds (or finds in the cache) the wheel for an sdist or a local folder."""

    def __init__(self, cache_root: Path, indexes: IndexConfig, target: PythonTarget, *,
                 offline: bool = False, runner: Runner = run_logged, kind: str = "uv",
                 origin: str = "") -> None:
        if kind not in BUILDERS:
            raise UsageError(f"unknown builder {kind!r}", "use --resolver uv or --resolver pip")
        self.root = cache_root / "built"
        self.indexes = indexes
        self.target = target
        self.offline = offline
        self.runner = runner
        #: which frontend builds: ``uv`` (``uv build``) or ``pip`` (``pip wheel``)
        self.kind = kind
        #: what pinned the sdists, for messages: ``uv.lock``, ``requirements.txt``
        self.origin = origin

    def cached(self, key: str) -> Path | None:
        """The wheel built for ``key`` if its bytes still hash to what was recorded."""
        folder = self.root / key
        record = folder / "wheel.sha256"
        if not record.is_file():
            return None
        sha, _, name = record.read_text(encoding="utf-8").strip().partition("  ")
        wheel = folder / name
        if wheel.is_file() and file_sha256(wheel) == sha:
            return wheel
        shutil.rmtree(folder, ignore_errors=True)
        return None

    def from_sdist(self, ref: WheelRef, sdist: Path, name: str) -> Path:
        """The pure wheel of ``sdist`` (already verified against ``ref.sha256``). The
        caller asks :meth:`refuse_native` first, before it even fetches the sdist."""
        try:
            label = f"{name} {parse_sdist_filename(ref.filename)[1]}"
        except InvalidSdistFilename:
            label = name
        return self._build(ref.sha256, sdist, name, what=f"its sdist {ref.filename}",
                           label=label)

    def refuse_native(self, name: str, sdist_filename: str = "", version: str = "") -> None:
        """Raise when the sdist's own release (``version``, else read from its file name) has
        platform wheels on the indexes but none for the target — a native project, as
        ``pip --only-binary=:all:`` refuses it: building it here would compile for this
        machine (twenty minutes, for numpy) only to be refused as native. Offline, only
        ``--find-links`` folders are asked."""
        if not version:
            try:
                version = str(parse_sdist_filename(sdist_filename)[1])
            except InvalidSdistFilename:
                return  # a name no tool reads a version from: the build's result decides
        indexes = replace(self.indexes, no_index=True) if self.offline else self.indexes
        if error := native_release(name, version, release_wheels(name, version, indexes),
                                   self.target, self.origin):
            raise error

    def from_folder(self, folder: Path, name: str, tree: str) -> Path:
        if not folder.is_dir():
            raise UsageError(f"{name}: the local package {folder} is not a folder",
                             "fix the path in requirements.txt")
        return self._build(f"tree-{tree}", folder, name, what=f"the local package {folder}")

    def _uv_argv(self, source: Path, out: Path, env: dict[str, str]) -> list[str]:
        from uv import find_uv_bin

        env.setdefault("UV_NO_PROGRESS", "1")
        argv = [find_uv_bin(), "build", "--wheel", str(source), "--out-dir", str(out),
                "--no-config", "--python", sys.executable, "--no-python-downloads",
                "--quiet", *self.indexes.uv_args(), "--index-strategy", "unsafe-best-match"]
        return [*argv, "--offline"] if self.offline else argv

    def _pip_argv(self, source: Path, out: Path, env: dict[str, str]) -> list[str]:
        """``pip wheel --no-deps``, as a pip user builds one: isolated (pip's default), the
        index settings passed explicitly as for the resolution. ``--ignore-requires-python``:
        the package's Requires-Python was checked for the *target* when it was chosen, and
        this machine's interpreter only runs the (pure) build."""
        env["PIP_CONFIG_FILE"] = os.devnull
        argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--ignore-requires-python",
                "--disable-pip-version-check", "--quiet", "--wheel-dir", str(out),
                str(source), *self.indexes.pip_args()]
        return [*argv, "--no-index"] if self.offline and "--no-index" not in argv else argv

    def _build(self, key: str, source: Path, name: str, *, what: str,
               label: str = "") -> Path:
        if cached := self.cached(key):
            return cached
        with tempfile.TemporaryDirectory(prefix="fbundle-build-") as tmp:
            out = Path(tmp) / "out"
            env = dict(os.environ)
            env.setdefault("SOURCE_DATE_EPOCH", DEFAULT_EPOCH)
            argv = self._pip_argv(source, out, env) if self.kind == "pip" else \
                self._uv_argv(source, out, env)
            log.info("building %s from %s", label or name, what)  # minutes, for some
            result = self.runner(argv, env=env)
            if result.returncode != 0:
                output = redact_urls((result.stderr or result.stdout).strip())
                raise BuildError(f"building {name} from {what} failed: {output}",
                                 "fix the package's build, or pin a version that has a wheel")
            wheels = sorted(out.glob("*.whl"))
            if len(wheels) != 1:
                raise BuildError(f"building {name} from {what} gave {len(wheels)} wheels",
                                 "the build backend must write exactly one wheel")
            built = wheels[0]
            if not is_pure(built.name):
                raise NativeBuild(name, built.name)
            folder = self.root / key
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            final = folder / built.name
            shutil.move(str(built), final)
            (folder / "wheel.sha256").write_text(f"{file_sha256(final)}  {built.name}\n",
                                                 encoding="utf-8")
            log.info("built %s from %s", built.name, what)
            return final


def native_release(name: str, version: str, wheels: list[str], target: PythonTarget,
                   origin: str = "") -> BuildError | None:
    """The refusal for a release whose ``wheels`` (every platform's, from the index) make it a
    native project none of whose wheels fits ``target``; None when a wheel fits, or the release
    has no platform wheel (a pure project, or sdist-only: building it is the way)."""
    tags = [t for wheel in wheels for t in _tags_of(wheel)]
    if any(t in target.tag_rank for t in tags) or all(t.platform == "any" for t in tags):
        return None
    ours = {(t.interpreter, t.abi) for t in target.tag_rank}
    floors = sorted({floor for t in tags if (t.interpreter, t.abi) in ours
                     and (floor := manylinux_floor(t.platform)) is not None})
    where = f"{name} {version}" + (f" ({origin})" if origin else "")
    relock = "or lock a version with manylinux2014 wheels" if origin == "uv.lock" else \
        "or pin a version with manylinux2014 wheels"
    python = f"CPython {target.python_version}"
    if floors:
        low = floors[0]
        suggest = glibc_to_ask(low)  # a floor uv is asked at unchanged, so it takes the wheel
        return BuildError(
            f"{where} ships only manylinux_{low[0]}_{low[1]} wheels for {python}, above the "
            f"glibc {target.glibc_text} floor, and its sdist would build native code",
            f"build with --glibc {suggest[0]}.{suggest[1]}, {relock}")
    shipped = sorted({t.platform for t in tags if t.platform != "any"})
    shown = ", ".join(shipped[:4]) + (", ..." if len(shipped) > 4 else "")
    return BuildError(
        f"{where} ships platform wheels ({shown}) but none for {python} on manylinux "
        "x86_64, and its sdist would build native code",
        f"{relock.removeprefix('or ')}, or use remote_build")


def _tags_of(wheel: str) -> frozenset[Tag]:
    try:
        return parse_wheel_filename(wheel)[3]
    except InvalidWheelFilename:
        return frozenset()


class NativeBuild(BuildError):
    """An sdist (or local package) whose build compiled native code: wrong for the target."""

    def __init__(self, name: str, wheel: str) -> None:
        self.name = name
        self.wheel = wheel
        super().__init__(f"{name} builds native code ({wheel})")


def current_local(lock: Lock, base: Path, *, strict: bool, source: str) -> Lock:
    """``lock`` with each local folder's tree hash as the folder is now. ``strict`` (a
    project's own pylock.toml): a folder changed since the lock is a stale lock."""
    pins = []
    for pin in lock.pins:
        ref = pin.wheel
        if ref.kind == "directory":
            folder = base / (ref.path or ".")
            if not folder.is_dir():
                raise UsageError(f"{source}: the local package {ref.path} ({pin.name}) is "
                                 "not a folder", "fix requirements.txt and re-lock")
            tree = tree_sha256(folder)
            if tree != ref.sha256:
                if strict and ref.sha256:
                    raise BuildError(f"the local package {ref.path} ({pin.name}) changed "
                                     f"since {source} was written",
                                     "run `fbundle lock` (or build with --update-lock)")
                pin = replace(pin, wheel=replace(ref, sha256=tree))
        pins.append(pin)
    return replace(lock, pins=pins)


def wheel_of(name: str, ref: WheelRef, fetch: Callable[[WheelRef], Path],
             builder: SourceBuilder, base: Path) -> tuple[Path, str]:
    """The wheel file for one pinned artifact and its sha256: a wheel as fetched, an sdist or
    a local folder built (or taken from the build cache). A native result is refused with
    what the user can do instead."""
    try:
        if ref.kind == "wheel":
            return fetch(ref), ref.sha256
        if ref.kind == "sdist":
            built = builder.cached(ref.sha256)
            if built is None:
                builder.refuse_native(name, ref.filename)
                built = builder.from_sdist(ref, fetch(ref), name)
        else:
            folder = base / (ref.path or ".")
            built = builder.from_folder(folder, name, ref.sha256 or tree_sha256(folder))
    except NativeBuild as error:
        raise native_refusal(error, ref, builder) from None
    return built, file_sha256(built)


def native_refusal(error: NativeBuild, ref: WheelRef, builder: SourceBuilder) -> BuildError:
    """The truth about a native sdist: no wheel fits, and building here cannot make one."""
    target = builder.target
    abi = target.abi
    if ref.kind == "directory":
        return BuildError(
            f"the local package {ref.path} ({error.name}) builds native code ({error.wheel}), "
            f"which cannot run on {target.runtime} (CPython {target.python_version}, manylinux "
            "x86_64)", "use remote_build, or build its wheel on Linux (manylinux) and list "
            "that .whl in requirements.txt")
    newest = None if builder.offline else newest_fitting_version(error.name, builder.indexes,
                                                                  target)
    pin = f"pin a version with wheels (newest: {newest})" if newest else \
        "pin a version with wheels (none has one for this target)"
    return BuildError(
        f"{error.name} has no manylinux wheel for {abi} and its sdist builds native code",
        f"use remote_build, {pin}, or build the wheel on Linux and pass --find-links")
