"""The files ``build`` writes beside a zip, and what they say about it.

``<zip>.sha256`` (``sha256sum`` format), ``<zip>.json`` (a ``BuildInfo``: both identities, the
input key, the packages) and ``<stem>.metadata.json`` (the effective agent definition, the
multipart ``metadata`` part that ``deploy`` sends). ``build`` writes them, ``collect`` never
takes them as sources, ``audit``, ``validate`` and ``deploy`` read them: one home for all.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bundler import __version__
from bundler.write import atomic_output, compressor_fingerprint

METADATA = "metadata.json"


def buildinfo_path(zip_path: Path) -> Path:
    """``<zip>.json``: the identities and inputs ``build`` records beside its zip."""
    return zip_path.with_name(zip_path.name + ".json")


def sha256_path(zip_path: Path) -> Path:
    """``<zip>.sha256``, in ``sha256sum`` format."""
    return zip_path.with_name(zip_path.name + ".sha256")


def definition_path(zip_path: Path) -> Path:
    """``<stem>.metadata.json``: the agent definition that travels with the zip."""
    return zip_path.with_name(f"{zip_path.stem}.{METADATA}")


def build_outputs(zip_path: Path) -> set[Path]:
    """Every file ``build`` writes for a zip: never a source of the next build."""
    return {zip_path, sha256_path(zip_path), buildinfo_path(zip_path), definition_path(zip_path)}


def metadata_beside(zip_path: Path) -> Path | None:
    """The agent definition that travels with a zip: ``<stem>.metadata.json`` (what ``build``
    writes beside its zip), else a plain ``metadata.json`` in the same folder."""
    for candidate in (definition_path(zip_path), zip_path.with_name(METADATA)):
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class BuildInfo:
    """What ``<zip>.json`` records: enough to notice a no-op and to explain an audit."""

    sha256: str
    content_digest: str
    input_key: str
    runtime: str
    mode: str
    size: int
    entries: int
    packages: list[dict[str, str]] = field(default_factory=list)
    compressor: str = field(default_factory=compressor_fingerprint)
    fbundle: str = __version__
    warnings: list[dict[str, str]] = field(default_factory=list)  # the checks' warnings

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def read(cls, zip_path: Path) -> BuildInfo | None:
        """The record beside ``zip_path``; None when absent, unreadable or of another shape."""
        try:
            data = json.loads(buildinfo_path(zip_path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        try:
            info = cls(
                sha256=str(data["sha256"]), content_digest=str(data["content_digest"]),
                input_key=str(data.get("input_key", "")), runtime=str(data.get("runtime", "")),
                mode=str(data.get("mode", "")), size=int(data.get("size", 0)),
                entries=int(data.get("entries", 0)),
                packages=_packages(data.get("packages")),
                compressor=str(data.get("compressor", "")), fbundle=str(data.get("fbundle", "")),
                warnings=_packages(data.get("warnings")))
        except (KeyError, TypeError, ValueError):
            return None
        return info


def _packages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        return []
    return [{str(k): str(v) for k, v in p.items()} for p in value if isinstance(p, dict)]


def write_identities(zip_path: Path, info: BuildInfo) -> None:
    """``<zip>.sha256`` and ``<zip>.json``, each written to a temp file and renamed."""
    with atomic_output(sha256_path(zip_path)) as stream:
        stream.write(f"{info.sha256}  {zip_path.name}\n".encode())
    with atomic_output(buildinfo_path(zip_path)) as stream:
        stream.write(info.to_json().encode())


def write_definition(definition: dict[str, Any], zip_path: Path) -> Path:
    """``<agent>.metadata.json`` beside the zip: the effective definition (flags applied, and
    what build itself decided, such as a .NET entry point), exactly what ``deploy`` sends."""
    path = definition_path(zip_path)
    with atomic_output(path) as stream:
        stream.write((json.dumps(definition, indent=2, sort_keys=True) + "\n").encode())
    return path
