"""The project-shape corpus (fixtures/shapes): every shape builds bundled and remote_build as its
author left it, validates clean, and the bundled zips import under the real CPython 3.13."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests import deploykit
from tests.support.projects import import_under

SHAPES = Path(__file__).resolve().parent.parent / "fixtures" / "shapes"
FLAGS = {"flags-only": ["--runtime", "python_3_13", "--entry-point", "python main.py"]}
# (folder to build, inside the copied shape; agent name; what the definition must say)
EXPECTED: dict[str, tuple[str, str, dict[str, Any]]] = {
    "agent-yaml": (".", "echo-agent", {"cpu": "0.25", "memory": "0.5Gi",
                                       "protocol_versions": [{"protocol": "responses",
                                                              "version": "2.0.0"}]}),
    "agent-manifest": (".", "manifest-echo", {"cpu": "1", "memory": "2Gi",
                                              "environment_variables": {
        "AZURE_AI_MODEL_DEPLOYMENT_NAME": "gpt-4.1-mini", "LOG_LEVEL": "info"}}),
    "azure-yaml-ref": ("src/echo", "echo-ref", {
        "cpu": "0.5", "memory": "1Gi", "environment_variables": {"LOG_LEVEL": "info"},
        "protocol_versions": [{"protocol": "responses", "version": "2.0.0"}]}),
    "agent-yaml-and-metadata": (".", "agent-yaml-and-metadata", {
        "cpu": "0.5", "memory": "1Gi",
        "protocol_versions": [{"protocol": "invocations", "version": "1.0.0"}]}),
    "azure-yaml": ("src/echo", "echo-azure", {
        "cpu": "1", "memory": "2Gi", "environment_variables": {"LOG_LEVEL": "info"},
        "protocol_versions": [{"protocol": "invocations", "version": "1.0.0"}]}),
    "flags-only": (".", "flags-only", {"cpu": "1", "memory": "2Gi", "protocol_versions": [
        {"protocol": "responses", "version": "2.0.0"}]}),
    "metadata-small": (".", "metadata-small", {"cpu": "0.25", "memory": "0.5Gi"}),
    "metadata-bom-crlf": (".", "metadata-bom-crlf", {"cpu": "1", "memory": "2Gi"}),
    "metadata-misspelt": (".", "metadata-misspelt", {"environment_variables": {
        "LOG_LEVEL": "info"}}),
    "metadata-no-protocols": (".", "metadata-no-protocols", {"cpu": "1"}),
}
NOTES = {
    "agent-manifest": ["agent.yaml is an agent manifest", "manifest parameters filled as "
                       "azd ai agent init --no-prompt would: chat (the model's id), log_level "
                       "(its default)"],
    "flags-only": ['note: no --cpu/--memory; using azd\'s defaults cpu "1", memory "2Gi"',
                   "note: no --protocol; using responses 2.0.0 (azd's default)"],
    "metadata-bom-crlf": ["note: metadata.json starts with a UTF-8 byte order mark"],
    "metadata-misspelt": ["warning: FB605 definition.enviroment_variables is not a field the "
                          "service documents — read as 'environment_variables'"],
    "metadata-no-protocols": ["warning: FB606 metadata.json: definition.protocol_versions is "
                              "missing"],
}


def test_every_shape_in_the_corpus_is_tested() -> None:
    assert sorted(p.name for p in SHAPES.iterdir() if p.is_dir()) == sorted(EXPECTED)


@pytest.mark.parametrize("mode", ["bundled", "remote_build"])
@pytest.mark.parametrize("shape", sorted(EXPECTED))
def test_shape_builds_validates_and_imports(tmp_path: Path, run_cli: Any, python313: Path,
                                            monkeypatch: pytest.MonkeyPatch, shape: str,
                                            mode: str) -> None:
    copy = tmp_path / shape
    shutil.copytree(SHAPES / shape, copy)
    monkeypatch.delenv("FOUNDRY_PROJECT_ENDPOINT", raising=False)
    monkeypatch.delenv("AZURE_AI_MODEL_DEPLOYMENT_NAME", raising=False)
    for name in ("LOG_LEVEL", "log_level", "chat", "CHAT"):
        monkeypatch.delenv(name, raising=False)
    if shape == "agent-yaml":  # a .env beside agent.yaml, never shipped, never printed
        (copy / ".env").write_text("FOUNDRY_PROJECT_ENDPOINT=https://dotenv-secret.example\n")
    where, name, expected = EXPECTED[shape]
    project = copy / where
    result = run_cli("build", project, "--mode", mode, *FLAGS.get(shape, []))
    assert result.exit_code == 0, result.output
    assert "internal error" not in result.output and "dotenv-secret" not in result.output
    for note in NOTES.get(shape, []):
        assert note in result.stderr, result.stderr
    zip_path = project / "dist" / f"{name}.zip"
    metadata = json.loads((project / "dist" / f"{name}.metadata.json").read_text())
    definition = metadata["definition"]
    assert definition["code_configuration"] == {
        "runtime": "python_3_13", "entry_point": ["python", "main.py"],
        "dependency_resolution": mode}
    assert expected.items() <= definition.items()
    if shape == "agent-yaml":
        assert definition["environment_variables"] == {  # the .env value stays a reference
            "FOUNDRY_PROJECT_ENDPOINT": "${FOUNDRY_PROJECT_ENDPOINT}",
            "AZURE_AI_MODEL_DEPLOYMENT_NAME": "gpt-4.1-mini",
            "CONNECTION_KEY": "${{connections.search.credentials.key}}"}
        assert metadata["description"] == "An echo agent, as the samples lay one out."
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
    assert "main.py" in names and "requirements.txt" in names
    assert not {".env", "metadata.json"} & set(names)
    checked = run_cli("validate", zip_path, "--mode", mode)  # picks up <agent>.metadata.json
    assert checked.exit_code == 0, checked.output
    if mode == "bundled":
        out = import_under(python313, zip_path, tmp_path, "import main\nprint(main.answer('x'))")
        assert out.strip() == "echo: x"


fake = deploykit.fake


def test_deploy_sends_exactly_the_definition_written_beside_the_zip(
        fake: Any, run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "agent-yaml"
    shutil.copytree(SHAPES / "agent-yaml", copy)
    monkeypatch.setenv("FOUNDRY_PROJECT_ENDPOINT", "https://env.example")
    result = run_cli("deploy", copy)
    assert result.exit_code == 0, result.output
    sidecar = json.loads((copy / "dist" / "echo-agent.metadata.json").read_text())
    version = fake.agents["echo-agent"].latest
    assert version is not None
    assert version.definition == sidecar["definition"]
    assert version.description == sidecar["description"]
    assert sidecar["definition"]["environment_variables"]["FOUNDRY_PROJECT_ENDPOINT"] == \
        "https://env.example"



def test_a_dotenv_value_is_sent_by_deploy_and_written_to_no_file(
        fake: Any, run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "agent-yaml"
    shutil.copytree(SHAPES / "agent-yaml", copy)
    monkeypatch.delenv("FOUNDRY_PROJECT_ENDPOINT", raising=False)
    (copy / ".env").write_text("FOUNDRY_PROJECT_ENDPOINT=https://hunter2.example\n")
    built = run_cli("build", copy)
    assert built.exit_code == 0, built.output
    for path in (copy / "dist").iterdir():
        assert b"hunter2" not in path.read_bytes(), path
    # Deploying the zip (not the project) reads the file beside it and expands the reference
    # from the project's .env in memory: the service gets the value.
    result = run_cli("deploy", copy / "dist" / "echo-agent.zip", "--agent", "echo-agent")
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    version = fake.agents["echo-agent"].latest
    assert version is not None
    assert version.definition["environment_variables"]["FOUNDRY_PROJECT_ENDPOINT"] == \
        "https://hunter2.example"


def test_a_manifest_parameter_from_dotenv_is_sent_by_deploy_and_written_to_no_file(
        fake: Any, run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """{{log_level}} filled from a .env lands in the definition as ${log_level}: the file beside
    the zip keeps the reference, and deploying the zip sends the value."""
    copy = tmp_path / "agent-manifest"
    shutil.copytree(SHAPES / "agent-manifest", copy)
    for name in ("LOG_LEVEL", "log_level", "chat", "CHAT", "AZURE_AI_MODEL_DEPLOYMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    (copy / ".env").write_text("log_level=hunter2-level\n")
    built = run_cli("build", copy)
    assert built.exit_code == 0, built.output
    assert "hunter2" not in built.output and "log_level (log_level from the environment)" \
        in built.stderr
    for path in (copy / "dist").iterdir():
        assert b"hunter2" not in path.read_bytes(), path
    result = run_cli("deploy", copy / "dist" / "manifest-echo.zip", "--agent", "manifest-echo")
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    version = fake.agents["manifest-echo"].latest
    assert version is not None
    assert version.definition["environment_variables"] == {
        "AZURE_AI_MODEL_DEPLOYMENT_NAME": "gpt-4.1-mini", "LOG_LEVEL": "hunter2-level"}


REFUSED = Path(__file__).resolve().parent.parent / "fixtures" / "refused"
REFUSED_LINES = {
    "no-wrapper": "wrap them in \"definition\": {...}",
    "container-only": "is an image deploy; a source-code deploy needs code_configuration",
    "definition-list": "definition must be an object, not a list",
    "cpu-nan": "FB602 definition.cpu 'NaN' is not a number of cores",
    "memory-only": "FB602 definition.cpu is missing but memory is set",
}


@pytest.mark.parametrize("shape", sorted(REFUSED_LINES))
def test_refused_definition_is_one_line_and_exit_2(tmp_path: Path, run_cli: Any,
                                                   shape: str) -> None:
    assert sorted(p.name for p in REFUSED.iterdir() if p.is_dir()) == sorted(REFUSED_LINES)
    copy = tmp_path / shape
    shutil.copytree(REFUSED / shape, copy)
    result = run_cli("build", copy)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert REFUSED_LINES[shape] in result.stderr and "internal error" not in result.stderr
    assert not (copy / "dist").exists()
