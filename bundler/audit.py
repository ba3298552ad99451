"""``fbundle audit``: rebuild a project in a temporary folder and compare the result with a
zip (bundler.diff), explaining a sha256 that differs while the files are the same.

The top floor of the audit job: it imports the build (lazily) and the diff, never the other
way round.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bundler.diff import LABELS, Diff, diff_sides, read_side
from bundler.errors import UsageError
from bundler.lock import LOCK_FILE

if TYPE_CHECKING:
    from bundler.options import BuildOptions


@dataclass
class AuditResult:
    """A zip compared with what its project builds today."""

    diff: Diff
    rebuilt_compressor: str
    notes: list[str]

    @property
    def reproduced(self) -> bool:
        return self.diff.same_files

    @property
    def digest(self) -> str:
        return self.diff.a.content_digest

    def as_json(self) -> dict[str, Any]:
        return {"reproduced": self.reproduced, "byte_identical": self.diff.same_zip_bytes,
                "content_digest": self.digest, "rebuilt_compressor": self.rebuilt_compressor,
                "notes": self.notes, "diff": self.diff.as_json()}


def audit(zip_path: Path, project: Path, options: BuildOptions) -> AuditResult:
    """Rebuild ``project`` (its lock, its sources) in a temporary folder and compare with
    ``zip_path``. ``options`` is a :class:`bundler.options.BuildOptions`; its ``output`` is
    replaced, so the project's own ``dist/`` is never touched."""
    from bundler.build import build_project
    from bundler.write import compressor_fingerprint

    if not zip_path.exists():
        raise UsageError(f"{zip_path}: no such file", "pass the zip to audit")
    original = read_side(zip_path)  # fail on an unreadable zip before building anything
    notes = []
    if not (project / LOCK_FILE).is_file():
        notes.append(f"{project / LOCK_FILE} not found: the dependencies were resolved afresh, "
                     "so this audit says what the index serves today; run `fbundle lock` and "
                     "keep the lock with the sources")
    with tempfile.TemporaryDirectory(prefix="fbundle-audit-") as tmp:
        rebuilt_path = Path(tmp) / (zip_path.name if zip_path.suffix == ".zip" else "bundle.zip")
        build_project(project, replace(options, output=rebuilt_path))
        rebuilt = read_side(rebuilt_path)
    rebuilt.location = f"rebuilt from {project}"
    ours = compressor_fingerprint()
    rebuilt.compressor = ours
    diff = diff_sides(original, rebuilt)
    if diff.same_files and not diff.same_zip_bytes and original.read_from == "zip":
        notes.append(_explain_sha(diff, original.compressor, ours))
    if not diff.same_files and (note := _slim_note(diff, project, options)):
        notes.append(note)
    return AuditResult(diff, ours, notes)


def _slim_note(diff: Diff, project: Path, options: BuildOptions) -> str | None:
    """A zip built with ``--slim`` audited without it (or the reverse) differs by exactly
    what ``--slim`` leaves out (and the RECORDs): say which flag reproduces it, rather than
    leave the user a list of test files to read. The zip records no flags: its files say it."""
    from bundler.shape import with_project_config
    from bundler.slim import by_path

    slimmed = bool(with_project_config(project, options).slim)
    more, fewer, bigger = ((diff.removed, diff.added, diff.a) if slimmed
                           else (diff.added, diff.removed, diff.b))
    if not more or fewer:
        return None
    droppable = by_path([name for name in bigger.facts if name.startswith("packages/")])
    if not all(name in droppable for name in more):
        return None
    if slimmed:
        return (f"the zip has {len(more)} files the rebuild left out, all of them what --slim "
                "leaves out: the zip was built without --slim; audit with --no-slim")
    return (f"the rebuild has {len(more)} files the zip does not, all of them what --slim leaves "
            "out: the zip was built with --slim; audit with --slim (or set slim = true in "
            "fbundle.toml)")


def _explain_sha(diff: Diff, recorded: str | None, ours: str) -> str:
    """Why two zips with the same files have different sha256s."""
    head = (f"zip sha256 differs ({diff.a.sha256} vs {diff.b.sha256}) but the content digest "
            "matches: the files are the same, stored differently")
    counts = diff.counts()
    stored = f"{counts[LABELS['compressed']]} entries compressed differently, " \
        f"{counts[LABELS['metadata']]} with other timestamps/metadata"
    if recorded is None:
        return (f"{head}; no sidecar records the compressor that wrote the zip, this machine "
                f"writes {ours} ({stored})")
    if recorded != ours:
        return (f"{head}; the zip was written with {recorded}, this machine writes {ours}: "
                f"another zlib build or level gives other deflate bytes for the same data "
                f"({stored})")
    return (f"{head}; the sidecar records the same compressor as this machine ({ours}), so the "
            f"zip was rewritten after it was built ({stored})")
