"""``fbundle diff``, ``fbundle audit`` and ``fbundle inspect``: reproducible-build audits."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bundler.commands.build import build_options
from bundler.errors import EXIT_FAILURE

if TYPE_CHECKING:
    from bundler.model import Bundle
    from bundler.options import BuildOptions


def _load(path: Path) -> Bundle:
    """A zip as it is; a folder as ``build`` would ship it (its excludes, ``.fbundleignore``,
    no ``dist/`` or ``metadata.json``, links followed), so a listing or a comparison never
    shows a file that does not ship. The same reading as ``fbundle validate DIR``."""
    from bundler.diff import load
    from bundler.model import is_folder
    from bundler.validate import read_project_folder

    if is_folder(path):
        return read_project_folder(path, git=False)[0]
    return load(path)


@click.command()
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def diff(a: Path, b: Path, as_json: bool) -> None:
    """Compare two bundles (zips or folders): exit 0 identical, 1 different, 2 unusable.

    A folder is read as `fbundle build` would ship it (default excludes, .fbundleignore).

    Each changed entry is classified: content, permissions, timestamps/metadata only, or
    compressed bytes only (the same bytes stored as another deflate stream).
    """
    from bundler.diff import diff_sides, read_side

    result = diff_sides(read_side(a, _load(a)), read_side(b, _load(b)))
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        for line in result.lines():
            click.echo(line)
    if not result.identical:
        click.get_current_context().exit(EXIT_FAILURE)


@click.command()
@click.argument("zip_path", metavar="ZIP", type=click.Path(path_type=Path))
@click.argument("project", default=".", type=click.Path(path_type=Path))
@build_options
@click.option("--strict", is_flag=True,
              help="Also require the zip's sha256 to match (same compressor, same bytes).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def audit(zip_path: Path, project: Path, strict: bool, as_json: bool,
          options: BuildOptions) -> None:
    """Rebuild PROJECT (its lock, its sources) in a temporary folder and compare with ZIP.

    Prints `reproduced <content digest>` and exits 0 when the files, bytes and permissions
    match; otherwise prints the diff and exits 1. PROJECT/dist is never touched.
    """
    from bundler.audit import audit as run_audit

    result = run_audit(zip_path, project, options)
    ok = result.reproduced and (result.diff.same_zip_bytes or not strict)
    if as_json:
        click.echo(json.dumps({**result.as_json(), "ok": ok}, indent=2))
    else:
        if not result.reproduced:
            for line in result.diff.lines():
                click.echo(line)
        for note in result.notes:
            click.echo(f"note: {note}")
        if result.reproduced:
            same = "byte-identical zip, " if result.diff.same_zip_bytes else ""
            click.echo(f"{same}sha256 {result.diff.a.sha256}")
            click.echo(f"reproduced {result.digest}")
        else:
            click.echo(f"not reproduced: {zip_path} differs from what {project} builds")
    if not ok:
        click.get_current_context().exit(EXIT_FAILURE)


@click.command()
@click.argument("zip_path", metavar="ZIP", type=click.Path(path_type=Path))
@click.option("--provenance", is_flag=True,
              help="Say which wheel (name, version, sha256, url) each packages/ file came from.")
@click.option("--lock", "lock_path", type=click.Path(path_type=Path, dir_okay=False),
              help="The lock to name wheels from (default: pylock.toml of the zip's project, "
                   "else the <zip>.json sidecar).")
@click.option("--sizes", is_flag=True,
              help="Each distribution's zip and unpacked bytes, and why it is in, biggest first.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def inspect(zip_path: Path, provenance: bool, lock_path: Path | None, sizes: bool,
            as_json: bool) -> None:
    """List a bundle's entries (a folder: what `fbundle build` would ship from it); with
    --provenance, where each packages/ file came from; with --sizes, what each distribution
    costs."""
    from bundler.diff import read_side
    from bundler.provenance import provenance as trace
    from bundler.provenance import wheels_known

    bundle = _load(zip_path)  # the zip is parsed once, for the listing and the provenance
    side = read_side(zip_path, bundle)
    facts = [side.facts[name] for name in sorted(side.facts)]
    data: dict[str, Any] = {
        "path": str(zip_path), "sha256": side.sha256, "content_digest": side.content_digest,
        "entries": [{"name": f.name, "size": f.size, "mode": f"{f.mode:o}", "sha256": f.sha256}
                    for f in facts],
    }
    lines = [f"{stat.filemode(0o100000 | f.mode)}  {f.size:>10}  {f.name}" for f in facts]
    if provenance:
        known, source = wheels_known(zip_path, lock_path, bundle)
        traced = trace(bundle, known, source, {f.name: f.sha256 for f in facts})
        data["provenance"] = traced.as_json()
        lines = []
        for origin in traced.files:
            owner = origin.owner
            if owner is None:
                lines.append(f"{origin.name}  unowned (no RECORD lists it)")
                continue
            wheel = "  ".join(str(x) for x in (owner.wheel, owner.sha256 and
                                               f"sha256:{owner.sha256}", owner.url) if x) \
                or f"({owner.note})"
            flag = "  MODIFIED (bytes differ from RECORD)" if origin.status == "modified" else ""
            lines.append(f"{origin.name}  {owner.name} {owner.version}  {wheel}{flag}")
        lines += [f"{name}  missing (listed in a RECORD, not in the bundle)"
                  for name in traced.missing]
        lines.append(f"wheels named from: {source or 'nothing (no lock, no sidecar)'}; "
                     f"{len(traced.unowned)} unowned, {len(traced.modified)} modified")
    if sizes:
        from bundler.sizes import size_table
        from bundler.validate import context_for, find_definition

        target = context_for(bundle, find_definition(zip_path, bundle, None)).target
        table = size_table(bundle, target)
        data["sizes"] = table.as_json()
        lines = table.lines()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for line in lines:
        click.echo(line)
    if side.sha256:
        click.echo(f"sha256 {side.sha256}")
    click.echo(f"content digest {side.content_digest}  ({len(facts)} entries)")


commands: list[click.Command] = [diff, audit, inspect]
