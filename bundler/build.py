"""``fbundle build``: a project folder -> ``dist/<agent>.zip`` and its identities.

The pipeline: collect sources -> resolve (or read the lock) -> fetch wheels into the cache ->
lay them out under ``packages/`` -> the bundle plan (``plan.py``) -> checks (``validate.py``,
the same rules as ``fbundle validate``) -> the deterministic writer -> the files beside the zip
(``identity.py``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bundler import __version__
from bundler.checks.base import Finding
from bundler.errors import BuildError
from bundler.identity import BuildInfo, write_definition, write_identities
from bundler.model import MAX_BUNDLE_BYTES, file_sha256
from bundler.options import BuildOptions
from bundler.plan import Inputs, Plan, output_path, plan_inputs, read_inputs
from bundler.project import ProjectSpec
from bundler.shape import ShapeReport
from bundler.write import ZipTooLarge, compressor_fingerprint, fixed_timestamp, write_zip

log = logging.getLogger(__name__)


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
    shaped: ShapeReport | None = None  # exclusions, slim, compile (None when reused)
    warnings: list[Finding] = field(default_factory=list)
    secrets_left_out: list[str] = field(default_factory=list)

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
            "definition": {"source": self.spec.source, "notes": list(self.spec.notes)},
            "packages": self.packages,
            "reused": self.reused,
            **({"shaped": self.shaped.as_json()} if self.shaped else {}),
            "warnings": [finding_json(f) for f in self.warnings],
            "secrets_left_out": self.secrets_left_out,
        }


def finding_json(f: Finding) -> dict[str, str]:
    return {"code": f.code, "path": f.path, "message": f.message, "hint": f.hint,
            "severity": f.severity}


def _finding_from(data: dict[str, str]) -> Finding | None:
    severity = data.get("severity")
    if severity not in ("error", "warning") or not data.get("code"):
        return None
    return Finding(data.get("path", ""), data["code"], data.get("message", ""),
                   data.get("hint", ""), "warning" if severity == "warning" else "error")


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
               "timestamp": fixed_timestamp(),  # SOURCE_DATE_EPOCH as the zip will read it
               "requirements": inputs.requirements.lines if inputs.requirements else None,
               "wheels": [p["sha256"] for p in inputs.packages],
               **({"shaping": inputs.shaping.key()} if inputs.shaping.active else {})}
    digest.update(f"fbundle {__version__}\n{compressor_fingerprint()}\n".encode())
    digest.update(json.dumps(context, sort_keys=True, default=str).encode())
    for entry in sorted(inputs.collection.entries, key=lambda e: e.name):
        digest.update(f"\n{entry.name}\0{entry.mode & 0o111 and 1}\0{entry.digest()}".encode())
    return digest.hexdigest()


def build_project(root: Path, options: BuildOptions | None = None) -> BuildResult:
    """Build ``root`` into its zip; an unchanged input key reuses the zip already there."""
    options = options or BuildOptions()
    inputs = read_inputs(root, options)
    zip_path = output_path(inputs.spec, options)
    key = input_key(inputs)
    previous = BuildInfo.read(zip_path)
    # A no-op is noticed from the inputs' hashes: the same key as a zip that passed the checks
    # and still hashes to its recorded sha256 -> nothing is redone, not even the checks (nor a
    # .NET publish: publishing happens in plan_inputs, after this).
    collected = inputs.collection
    if previous is not None and previous.input_key == key and zip_path.is_file():
        if file_sha256(zip_path) == previous.sha256:
            log.info("inputs unchanged; %s is up to date", zip_path)
            write_definition(inputs.spec.written_metadata(), zip_path)
            recorded = [f for d in previous.warnings if (f := _finding_from(d))]
            return BuildResult(zip_path, previous.sha256, zip_path.stat().st_size,
                               previous.entries, previous.content_digest, key,
                               inputs.spec, previous.packages, reused=True,
                               warnings=sorted({*recorded, *collected.findings}),
                               secrets_left_out=list(collected.secrets))
    plan = plan_inputs(inputs, options)
    warnings = check_plan(plan)
    try:
        # The content digest comes from the bytes written (a source that changed since it was
        # collected fails the write, and the old zip stays).
        written = write_zip(plan.bundle.entries, zip_path, limit=MAX_BUNDLE_BYTES)
    except ZipTooLarge as error:
        from bundler.sizes import size_table

        top = size_table(plan.bundle, plan.target).top()
        raise BuildError(error.message, f"largest in the zip: {top}; leave out what the agent "
                         "does not import (--exclude-package, --slim)" if top else
                         "shrink the bundle") from None
    result = BuildResult(zip_path, written.sha256, written.size, written.entries,
                         written.content_digest, key, plan.spec,
                         shipped_packages(plan), reused=False, shaped=plan.shaped,
                         warnings=sorted({*warnings, *collected.findings}),
                         secrets_left_out=list(collected.secrets))
    write_identities(zip_path, BuildInfo(
        sha256=result.sha256, content_digest=result.content_digest, input_key=key,
        runtime=plan.spec.runtime, mode=plan.spec.mode, size=result.size,
        entries=result.entries, packages=result.packages,
        warnings=[finding_json(f) for f in warnings]))
    write_definition(plan.spec.written_metadata(), zip_path)
    return result


def shipped_packages(plan: Plan) -> list[dict[str, str]]:
    """The pinned packages the bundle ships (excluded ones are not)."""
    gone = set(plan.shaped.exclusion.dropped) if plan.shaped.exclusion else set()
    return [p for p in plan.packages if p["name"] not in gone]


def plan_findings(plan: Plan) -> list[Finding]:
    """Every finding (errors and warnings) for the plan, as ``validate`` would report them on
    the zip: build and validate share the rules and the context (``validate.context_for``)."""
    from bundler.validate import check_bundle, context_for

    context = context_for(plan.bundle, plan.spec.metadata, target=plan.target)
    # FB102's hint names the definition's own file, not the metadata.json build makes from it
    source = plan.spec.metadata_path
    context = replace(context, entry_fix=f"fix the entry point in {source.name}, or pass "
                      "--entry-point" if source is not None else "pass the right --entry-point")
    return check_bundle(plan.bundle, context)


def check_plan(plan: Plan) -> list[Finding]:
    """Refuse a plan the validator would fail; returns its warnings."""
    from bundler.checks import errors

    found = plan_findings(plan)
    findings = errors(found)
    if findings:
        first = findings[0]
        more = f" (and {len(findings) - 1} more; `fbundle validate` lists them)" \
            if len(findings) > 1 else ""
        raise BuildError(f"{first.code} {first.path}: {first.message}{more}", first.hint)
    return [f for f in found if f.severity == "warning"]
