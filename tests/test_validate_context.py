"""build and validate judge a bundle in one context: the plan's, and the zip's with the
definition written beside it, are equal (``validate.context_for`` is the one function)."""

from __future__ import annotations

from pathlib import Path

from bundler.build import build_project
from bundler.checks import CheckContext
from bundler.options import BuildOptions
from bundler.plan import plan_project
from bundler.validate import context_for, find_definition, load_bundle
from tests.support import SimpleIndex
from tests.support.projects import make_project


def contexts(project: Path, options: BuildOptions) -> tuple[CheckContext, CheckContext]:
    plan = plan_project(project, options)
    built = context_for(plan.bundle, plan.spec.metadata, target=plan.target)
    result = build_project(project, options)
    bundle = load_bundle(result.zip_path)
    return built, context_for(bundle, find_definition(result.zip_path, bundle, None))


def test_the_context_build_checks_is_the_one_validate_reads_from_the_zip(
        tmp_path: Path, index: SimpleIndex) -> None:
    built, validated = contexts(make_project(tmp_path / "agent", "beta==1.0\n"), BuildOptions())
    assert built == validated


def test_flags_reach_validate_through_the_definition_beside_the_zip(
        tmp_path: Path, index: SimpleIndex) -> None:
    # metadata.json inside the zip says bundled; the build was told remote_build.
    project = make_project(tmp_path / "agent", "beta==1.0\n", mode="bundled")
    built, validated = contexts(project, BuildOptions(mode="remote_build"))
    assert built == validated
    assert validated.mode == "remote_build"
