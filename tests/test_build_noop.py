"""The no-op rebuild keeps build's guarantees: it is only a no-op when nothing the checks see
changed either, it really leaves the zip alone, and the lazy command loading finds every
command. (How fast these paths are is measured in benchmarks/, not here.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bundler.build import build_project
from bundler.cli import JOBS, cli
from bundler.errors import BuildError
from tests.support.projects import make_project


def test_rebuild_reruns_the_checks_when_only_the_entry_point_changed(tmp_path: Path) -> None:
    project = make_project(tmp_path / "agent", "", mode="remote_build")
    first = build_project(project)
    assert not first.reused
    metadata_path = project / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["definition"]["code_configuration"]["entry_point"] = ["python", "missing.py"]
    metadata_path.write_text(json.dumps(metadata))
    with pytest.raises(BuildError, match="missing.py"):
        build_project(project)


def test_rebuild_with_nothing_changed_is_reused_without_rewriting(tmp_path: Path) -> None:
    project = make_project(tmp_path / "agent", "", mode="remote_build")
    first = build_project(project)
    info = json.loads((project / "dist" / "agent.zip.json").read_text())
    assert info["input_key"] == first.input_key
    before = os.stat(first.zip_path)
    again = build_project(project)
    after = os.stat(first.zip_path)
    assert again.reused and again.sha256 == first.sha256
    # Not rewritten: a rewrite goes through a temp file and a rename, a new inode.
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_tampered_zip_is_rebuilt_even_when_the_inputs_match(tmp_path: Path) -> None:
    project = make_project(tmp_path / "agent", "", mode="remote_build")
    first = build_project(project)
    first.zip_path.write_bytes(first.zip_path.read_bytes()[:-1])
    again = build_project(project)
    assert not again.reused and again.sha256 == first.sha256


def test_lazy_command_loading_lists_and_finds_every_jobs_commands() -> None:
    import importlib

    expected = {c.name for job in JOBS
                for c in importlib.import_module(f"bundler.commands.{job}").commands}
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines()
              if line.strip()}
    assert listed == expected
    for name in sorted(expected):
        assert CliRunner().invoke(cli, [name, "--help"]).exit_code == 0, name
