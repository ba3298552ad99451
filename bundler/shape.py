"""After layout, before the plan: what a build leaves out of ``packages/`` and what it adds.

In order: ``--exclude-package`` drops distributions (and what only they pulled in); the
``.fbundleignore`` patterns that reach into ``packages/`` drop files; ``--slim`` drops what no
import needs; ``--compile`` adds the target's bytecode. Each wheel's RECORD is rewritten once,
to list exactly what ships (so ``validate`` holds the result to it), and its dist-info is never
touched. What was left out is recorded inside the bundle (``packages/.fbundle-excluded``) so
``validate``, which sees only the zip, knows it was deliberate.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import NormalizedName, canonicalize_name

from bundler.collect import _ignore_lines
from bundler.config import read_config
from bundler.graph import Exclusion, exclude
from bundler.model import BytesData, Entry
from bundler.records import EXCLUDED_FILE, PACKAGES
from bundler.slim import Slimming, plan_slim
from bundler.targets import PythonTarget, Target
from bundler.wheels import LaidOutWheel, Removed, package_ignore, reshape

if TYPE_CHECKING:
    from packaging.requirements import Requirement

    from bundler.compile import Compiler
    from bundler.options import BuildOptions


def with_project_config(root: Path, options: BuildOptions) -> BuildOptions:
    """``options`` with the project's settings (fbundle.toml / [tool.fbundle]) folded in:
    exclusions add up, a flag given on the command line wins over a setting."""
    config = read_config(root)
    names = sorted({str(canonicalize_name(n)) for n in
                    (*config.exclude_packages, *options.exclude_packages)})
    return dataclasses.replace(
        options, exclude_packages=tuple(names),
        slim=options.slim if options.slim is not None else bool(config.slim),
        compile=options.compile if options.compile is not None else bool(config.compile))


@dataclass(frozen=True)
class Shaping:
    """What decides the shape of ``packages/`` (part of the build's input key)."""

    exclude: tuple[str, ...] = ()
    slim: bool = False
    compiler: Compiler | None = None
    ignore: tuple[str, ...] = ()  # .fbundleignore lines that reach into packages/

    def key(self) -> dict[str, Any]:
        return {"exclude": list(self.exclude), "slim": self.slim, "ignore": list(self.ignore),
                "compile": self.compiler.fingerprint if self.compiler else None}

    @property
    def active(self) -> bool:
        return bool(self.exclude or self.slim or self.compiler or self.ignore)


def shaping_for(root: Path, options: BuildOptions, target: Target) -> Shaping:
    """The shaping ``options`` ask for; with ``--compile`` the target interpreter is found
    now, so a missing one stops the build before anything is fetched."""
    compiler = None
    if options.compile:
        from bundler.compile import find_compiler

        compiler = find_compiler(target, options.python)
    lines = tuple(line for line in _ignore_lines(root)
                  if line.strip().lstrip("!").lstrip("/").startswith(PACKAGES))
    return Shaping(tuple(options.exclude_packages), bool(options.slim), compiler, lines)


@dataclass
class ShapeReport:
    """What shaping did, for ``build --list`` / ``--json`` and the build's own summary."""

    exclusion: Exclusion | None = None
    removed: list[Removed] = field(default_factory=list)
    kept_for_imports: list[tuple[str, str]] = field(default_factory=list)  # (path, importer)
    compiled: int = 0
    compile_failed: list[tuple[str, str]] = field(default_factory=list)
    compiler: str | None = None
    #: One line per pair of distributions that ship the same path with different bytes
    #: (:func:`bundler.plan.settle_overlaps`): which copy ships.
    overwritten: list[str] = field(default_factory=list)

    def saved(self, prefix: str = "") -> tuple[int, int]:
        """(unpacked, zip) bytes of the files removed whose reason starts with ``prefix``."""
        chosen = [r for r in self.removed if r.reason.startswith(prefix)]
        return sum(r.size for r in chosen), sum(r.zip_bytes for r in chosen)

    def as_json(self) -> dict[str, Any]:
        slim = self.saved("slim")
        data: dict[str, Any] = {
            "removed": [{"name": r.name, "reason": r.reason, "size": r.size,
                         "zip_bytes": r.zip_bytes} for r in self.removed],
            "slim_saved": {"files": sum(1 for r in self.removed if r.reason.startswith("slim")),
                           "unpacked_bytes": slim[0], "zip_bytes": slim[1],
                           "kept_for_imports": [{"name": n, "imported_by": by}
                                                for n, by in self.kept_for_imports]},
            "overwritten": list(self.overwritten),
            "compiled": self.compiled, "compile_failed": [
                {"name": n, "error": e} for n, e in self.compile_failed],
        }
        if self.exclusion is not None:
            data["excluded"] = {"asked": list(self.exclusion.asked),
                                "dropped": list(self.exclusion.dropped),
                                "kept": [{"name": n, "needed_by": list(by)}
                                         for n, by in self.exclusion.kept],
                                "unknown": list(self.exclusion.unknown)}
        return data

    def notes(self) -> list[str]:
        lines = [f"warning: {line}" for line in self.overwritten]
        lines += self.exclusion.notes() if self.exclusion else []
        slim = [r for r in self.removed if r.reason.startswith("slim")]
        if slim:
            unpacked, zipped = self.saved("slim")
            lines.append(f"--slim left out {len(slim)} files: {unpacked / 1e6:.1f} MB unpacked, "
                         f"{zipped / 1e6:.1f} MB of zip")
        if self.kept_for_imports:
            first, by = self.kept_for_imports[0]
            more = len(self.kept_for_imports) - 1
            count = len(self.kept_for_imports)
            lines.append(f"--slim kept {count} file{'s' if count > 1 else ''} a kept module "
                         "imports "
                         f"({first[len(PACKAGES):]}, imported by {by[len(PACKAGES):]}"
                         + (f", and {more} more" if more else "") + ")")
        ignored = [r for r in self.removed if not r.reason.startswith("slim")]
        if ignored:
            lines.append(f".fbundleignore left out {len(ignored)} files from packages/ "
                         f"({sum(r.size for r in ignored) / 1e6:.1f} MB unpacked)")
        if self.compiler:
            lines.append(f"--compile: {self.compiled} .pyc files by {self.compiler}"
                         + (f"; {len(self.compile_failed)} sources do not compile for it "
                            "(kept as source)" if self.compile_failed else ""))
        return lines


def shape(wheels: list[LaidOutWheel], sources: list[Entry], requirements: list[Requirement],
          target: PythonTarget, shaping: Shaping) -> tuple[list[LaidOutWheel], list[Entry],
                                                     ShapeReport]:
    """The wheels as they will ship, the entries to add beside them (the sources' bytecode,
    the exclusion record), and what was done."""
    report = ShapeReport()
    if not shaping.active:
        return wheels, [], report
    extra: list[Entry] = []
    if shaping.exclude:
        requires: dict[NormalizedName, list[str]] = {}
        for wheel in wheels:
            from email.parser import HeaderParser

            message = HeaderParser().parsestr(wheel.metadata_text())
            requires[canonicalize_name(wheel.name)] = [
                str(r) for r in message.get_all("Requires-Dist") or []]
        report.exclusion = exclude(shaping.exclude, requirements, requires, target)
        gone = set(report.exclusion.dropped)
        wheels = [w for w in wheels if str(canonicalize_name(w.name)) not in gone]
        text = ("# Left out on purpose by fbundle build --exclude-package: validate does not "
                "report them missing.\n" + "".join(f"{n}\n" for n in sorted(gone)))
        data = text.encode("utf-8")
        extra.append(Entry(EXCLUDED_FILE, len(data), BytesData(data), origin="generated"))
    spec = package_ignore(shaping.ignore)
    slimmed = Slimming()
    if shaping.slim:
        by_name = {e.name: e for w in wheels for e in w.entries}
        candidates = [name for name in by_name
                      if not (spec is not None and spec.match_file(name))]
        slimmed = plan_slim(candidates, lambda name: by_name[name].read())
        report.kept_for_imports = slimmed.kept_for_imports

    def drop(name: str) -> str | None:
        if spec is not None and spec.match_file(name):
            return "matched .fbundleignore"
        return slimmed.dropped.get(name)

    kept: dict[str, list[Entry]] = {}
    for wheel in wheels:
        folder = f"{PACKAGES}{wheel.dist_info}/"
        kept[wheel.filename] = [e for e in wheel.entries
                                if e.name.startswith(folder) or drop(e.name) is None]
    adds: dict[str, list[Entry]] = {w.filename: [] for w in wheels}
    if shaping.compiler is not None:
        from bundler.compile import compile_sources, describe

        owner = {e.name: w.filename for w in wheels for e in kept[w.filename]}
        py = [e for entries in kept.values() for e in entries if e.name.endswith(".py")]
        py += [e for e in sources if e.name.endswith(".py")]
        compiled = compile_sources(py, shaping.compiler)
        report.compiler = describe(shaping.compiler)
        report.compiled = len(compiled.entries)
        report.compile_failed = compiled.failed
        origin_of = {e.name: e.origin for entries in kept.values() for e in entries}
        for pyc in compiled.entries:
            source = _source_of(pyc.name)
            if source in owner:
                adds[owner[source]].append(dataclasses.replace(pyc, origin=origin_of[source]))
            else:
                extra.append(dataclasses.replace(pyc, origin="generated"))
    shaped = []
    for wheel in wheels:
        if len(kept[wheel.filename]) == len(wheel.entries) and not adds[wheel.filename]:
            shaped.append(wheel)
            continue
        new, removed = reshape(wheel, drop, adds[wheel.filename])
        shaped.append(new)
        report.removed += removed
    report.removed.sort(key=lambda r: r.name)
    return shaped, extra, report


def _source_of(pyc: str) -> str:
    """``a/b.py`` for ``a/__pycache__/b.cpython-313.pyc``."""
    folder, _, base = pyc.rpartition("/")
    parent = folder.rsplit("/", 1)[0] if "/" in folder else ""
    stem = base.split(".", 1)[0]
    return f"{parent + '/' if parent else ''}{stem}.py"
