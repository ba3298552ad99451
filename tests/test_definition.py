"""Where the agent definition comes from (bundler/definition.py), what is refused in one line,
what only warns, and bundles that are the same bytes on any host."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bundler.collect import elf_executable, portable_pattern
from bundler.definition import load_definition
from bundler.envexpand import Environment
from bundler.errors import UsageError
from bundler.metadata import Flags, cpu_memory_problem
from bundler.project import example_metadata, load_project
from tests.support.projects import MAIN


def project(root: Path, metadata: Any = None, *, raw: bytes | None = None,
            files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "main.py").write_text(MAIN)
    (root / "requirements.txt").write_text("")
    if raw is not None:
        (root / "metadata.json").write_bytes(raw)
    elif metadata is not None:
        (root / "metadata.json").write_text(json.dumps(metadata))
    for name, text in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def one_line_exit_2(result: Any, *expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "internal error" not in result.output and "Traceback" not in result.output
    for text in expected:
        assert text in result.stderr, result.stderr


def remote(**changes: Any) -> dict[str, Any]:
    metadata = example_metadata(mode="remote_build")
    metadata["definition"].update(changes)
    return {**metadata, "definition": {k: v for k, v in metadata["definition"].items()
                                       if v is not None}}


# ---- metadata.json variants (issues 12 and 15) ----------------------------------------------

HOSTILE = {
    "no-wrapper": (json.dumps(example_metadata()["definition"]).encode(), "wrap them in"),
    "container-only": (json.dumps({"definition": {
        "kind": "hosted", "cpu": "1", "memory": "2Gi",
        "container_configuration": {"image": "r.azurecr.io/a:1"}}}).encode(),
        "is an image deploy; a source-code deploy needs code_configuration"),
    "definition-list": (b'{"definition": []}', "definition must be an object, not a list"),
    "cpu-nan": (json.dumps(remote(cpu="NaN")).encode(), "FB602 definition.cpu 'NaN' is not a "
                "number of cores"),
    "nan-literal": (b'{"definition": {"cpu": NaN}}', "holds NaN, which is not JSON"),
    "5000-digits": (b'{"definition": {"cpu": ' + b"9" * 5000 + b"}}", "a number of 5,000 digits"),
    "nested-100000": (b"[" * 100_000 + b"]" * 100_000, "nested"),
    "nested-80": (b'{"definition": ' + b"[" * 80 + b"]" * 80 + b"}", "nested more than 64"),
    "cpu-number": (json.dumps(remote(cpu=1)).encode(), "cpu is a number; write it as a string"),
    "memory-alone": (json.dumps(remote(cpu=None)).encode(), "cpu is missing but memory is set"),
    "bad-env-name": (json.dumps(remote(environment_variables={"api-key": "x"})).encode(),
                     "FB608", "'api-key' is not a valid variable name"),
    "not-utf8": (b'{"description": "\xff"}', "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_bad_definitions_are_one_line_and_exit_2(tmp_path: Path, run_cli: Any, case: str) -> None:
    raw, *expected = HOSTILE[case]
    assert isinstance(raw, bytes) and all(isinstance(e, str) for e in expected)
    root = project(tmp_path / "agent", raw=raw)
    one_line_exit_2(run_cli("build", root), *(str(e) for e in expected))
    if case in ("nested-100000", "5000-digits", "nan-literal", "definition-list", "cpu-nan"):
        (tmp_path / "agent.zip").write_bytes(b"")  # validate and deploy read it the same way
        zipfile.ZipFile(tmp_path / "agent.zip", "w").writestr("main.py", MAIN)
        result = run_cli("validate", tmp_path / "agent.zip", "--metadata", root / "metadata.json")
        assert "internal error" not in result.output and result.exit_code in (1, 2), \
            result.output


def test_bom_and_crlf_are_read_and_the_written_definition_has_neither(tmp_path: Path,
                                                                     run_cli: Any) -> None:
    text = json.dumps(remote(), indent=2).replace("\n", "\r\n")
    root = project(tmp_path / "agent", raw=b"\xef\xbb\xbf" + text.encode())
    result = run_cli("build", root)
    assert result.exit_code == 0, result.output
    assert "UTF-8 byte order mark" in result.stderr
    written = (root / "dist" / "agent.metadata.json").read_bytes()
    assert not written.startswith(b"\xef\xbb\xbf") and b"\r" not in written
    assert json.loads(written) == remote()


def test_a_misspelt_key_is_read_as_meant_with_a_warning(tmp_path: Path, run_cli: Any) -> None:
    metadata = remote()
    metadata["definition"]["code_configuraton"] = metadata["definition"].pop("code_configuration")
    metadata["definition"]["code_configuraton"]["entrypoint"] = \
        metadata["definition"]["code_configuraton"].pop("entry_point")
    root = project(tmp_path / "agent", metadata)
    result = run_cli("build", root)
    assert result.exit_code == 0, result.output
    assert "warning: FB605 definition.code_configuraton is not a field the service documents " \
        "— read as 'code_configuration'" in result.stderr
    assert "definition.code_configuration.entrypoint" in result.stderr
    written = json.loads((root / "dist" / "agent.metadata.json").read_text())
    assert written == remote()
    # `validate` reads the file as the service would: the misspelt raw file is refused there
    (tmp_path / "agent.zip").write_bytes((root / "dist" / "agent.zip").read_bytes())
    checked = run_cli("validate", tmp_path / "agent.zip", "--metadata", root / "metadata.json")
    assert checked.exit_code == 1 and "FB601" in checked.stdout and "FB605" in checked.stdout


def test_cpu_memory_rule(tmp_path: Path, run_cli: Any) -> None:
    for cpu, memory in (("0.25", "0.5Gi"), ("0.5", "1Gi"), ("1", "2Gi"), ("2", "4Gi"),
                        ("4", "8Gi"), ("1.5", "3Gi"), (".5", "1Gi"), ("0.5", "1024Mi")):
        assert cpu_memory_problem(cpu, memory) is None, (cpu, memory)
    for cpu, memory in (("1", "4Gi"), ("8", "16Gi"), ("0.3", "0.6Gi")):
        assert cpu_memory_problem(cpu, memory)[0] == "warning"  # type: ignore[index]
    bad: list[tuple[str | None, str | None]] = [
        ("NaN", "1Gi"), ("1", "2"), ("-1", "2Gi"), ("0", "0Gi"), ("1", "2GB"), ("inf", "2Gi"),
        ("1" * 40, "2Gi"), (None, "2Gi"), ("1", None)]
    for maybe_cpu, maybe_memory in bad:
        problem = cpu_memory_problem(maybe_cpu, maybe_memory)
        assert problem is not None and problem[0] == "error", (maybe_cpu, maybe_memory)
    # both absent: azd's defaults are filled in and said in one line
    root = project(tmp_path / "agent", remote(cpu=None, memory=None))
    result = run_cli("build", root)
    assert result.exit_code == 0, result.output
    assert result.stderr.count('using azd\'s defaults cpu "1", memory "2Gi"') == 1
    written = json.loads((root / "dist" / "agent.metadata.json").read_text())
    assert (written["definition"]["cpu"], written["definition"]["memory"]) == ("1", "2Gi")
    # well-formed but unknown: a warning, and the build goes on
    root = project(tmp_path / "big", remote(cpu="1", memory="4Gi"))
    result = run_cli("build", root)
    assert result.exit_code == 0 and "warning: FB604" in result.stderr, result.output
    # flags override
    result = run_cli("build", root, "--cpu", "0.25", "--memory", "0.5Gi")
    assert result.exit_code == 0 and "FB604" not in result.stderr, result.output


def test_every_protocol_of_the_spec_is_accepted_and_others_warn(tmp_path: Path,
                                                                run_cli: Any) -> None:
    names = ["responses", "invocations", "invocations_ws", "a2a", "activity", "mcp"]
    args = [a for n in names for a in ("--protocol", f"{n}@1.0.0")]
    root = project(tmp_path / "agent", remote())
    result = run_cli("build", root, *args)
    assert result.exit_code == 0 and result.stderr == "", result.output
    written = json.loads((root / "dist" / "agent.metadata.json").read_text())
    assert [p["protocol"] for p in written["definition"]["protocol_versions"]] == names
    result = run_cli("build", root, "--protocol", "grpc@1")
    assert result.exit_code == 0 and "warning: FB609" in result.stderr
    one_line_exit_2(run_cli("build", root, "--protocol", "responses"), "PROTOCOL@VERSION")


def test_flags_alone_are_enough_and_without_them_the_error_says_what_to_add(
        tmp_path: Path, run_cli: Any) -> None:
    root = project(tmp_path / "agent", files={"serve.py": MAIN})
    one_line_exit_2(run_cli("build", root), "no agent definition", "fbundle init",
                    "--runtime and --mode")
    result = run_cli("build", root, "--runtime", "python_3_13", "--mode", "remote_build",
                     "--entry-point", "python serve.py", "--cpu", "0.5", "--memory", "1Gi",
                     "--protocol", "responses@2.0.0")
    assert result.exit_code == 0, result.output
    written = json.loads((root / "dist" / "agent.metadata.json").read_text())
    assert written == {"definition": {
        "kind": "hosted", "cpu": "0.5", "memory": "1Gi",
        "protocol_versions": [{"protocol": "responses", "version": "2.0.0"}],
        "code_configuration": {"runtime": "python_3_13", "entry_point": ["python", "serve.py"],
                               "dependency_resolution": "remote_build"}}}


def test_agent_name_from_flag_definition_or_folder(tmp_path: Path, run_cli: Any) -> None:
    for folder, name in (("My_Agent", "My-Agent"), ("über-agent", "uber-agent")):
        root = project(tmp_path / folder, remote())
        result = run_cli("build", root)
        assert result.exit_code == 0, result.output
        assert f"note: agent name {name!r} (the folder name {folder!r} made valid" \
            in result.stderr
        assert (root / "dist" / f"{name}.zip").is_file()
    root = project(tmp_path / "plain", remote())
    assert run_cli("build", root).stderr == ""  # a valid folder name is said nothing about
    (root / "agent.yaml").write_text("kind: hosted\nname: from-yaml\n")
    (root / "metadata.json").unlink()
    assert load_project(root).name == "from-yaml"
    assert load_project(root, name="flagged").name == "flagged"
    (root / "agent.yaml").write_text("kind: hosted\nname: -bad-\n")
    one_line_exit_2(run_cli("build", root), "agent.yaml: agent name '-bad-'", "--name")


def test_variables_come_from_the_environment_then_dotenv_and_are_never_printed(
        tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path / "agent", files={"agent.yaml": (
        "kind: hosted\nname: agent\ncode_configuration: {runtime: python_3_13, entry_point: "
        "main.py, dependency_resolution: remote_build}\nenvironment_variables:\n"
        "  - {name: A, value: '${FROM_ENV}'}\n  - {name: B, value: '${FROM_DOTENV}'}\n"
        "  - {name: C, value: 'x-${UNSET_ONE}-${UNSET_TWO:-dflt}'}\n"
        "  - {name: D, value: '${{connections.c.key}}'}\n")})
    (root / ".env").write_text("FROM_ENV=dotenv-loses\nFROM_DOTENV=hunter2-from-dotenv\n")
    monkeypatch.setenv("FROM_ENV", "env-wins")
    monkeypatch.delenv("UNSET_ONE", raising=False)
    result = run_cli("build", root)
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output and "env-wins" not in result.output
    assert "UNSET_ONE not set in the environment, agent/.env or the azd environment; kept as " \
        "written" in result.stderr
    assert result.stderr.count("environment_variables.C still holds ${UNSET_ONE}") == 1
    assert "warning: FB607 metadata.json: definition.environment_variables.C still holds " \
        "${UNSET_ONE}" in result.stderr
    written = json.loads((root / "dist" / "agent.metadata.json").read_text())
    # A value from .env never lands in a file: the file keeps the reference, and deploy
    # expands it at send time (test_shapes: deploy of the zip sends the real value).
    assert written["definition"]["environment_variables"] == {
        "A": "env-wins", "B": "${FROM_DOTENV}", "C": "x-${UNSET_ONE}-dflt",
        "D": "${{connections.c.key}}"}
    assert load_definition(root).definition["environment_variables"]["B"] == \
        "hunter2-from-dotenv"
    for path in (root / "dist").iterdir():
        assert b"hunter2" not in path.read_bytes(), path
    with zipfile.ZipFile(root / "dist" / "agent.zip") as archive:
        assert ".env" not in archive.namelist()
    assert Environment({}).expand("${A-}${B:-b}") == "b"
    # azd's own environment (.azure/<name>/.env, selected by .azure/config.json) comes last
    (root / ".azure" / "dev").mkdir(parents=True)
    (root / ".azure" / "config.json").write_text('{"defaultEnvironment": "dev"}')
    (root / ".azure" / "dev" / ".env").write_text('UNSET_ONE="from-azd"\nFROM_DOTENV=azd-loses\n')
    found = load_definition(root)
    assert found.definition["environment_variables"]["C"] == "x-from-azd-dflt"
    assert found.definition["environment_variables"]["B"] == "hunter2-from-dotenv"
    assert run_cli("build", root).exit_code == 0
    with zipfile.ZipFile(root / "dist" / "agent.zip") as archive:
        assert not [n for n in archive.namelist() if n.startswith(".azure")]


def test_azure_yaml_service_wins_over_agent_yaml_and_metadata_json_over_both(
        tmp_path: Path) -> None:
    root = project(tmp_path / "repo" / "src" / "agent", files={"agent.yaml": (
        "kind: hosted\nname: yaml-name\nresources: {cpu: 2, memory: 4Gi}\n")})
    azure = tmp_path / "repo" / "azure.yaml"
    azure.write_text("services:\n  agent:\n    host: azure.ai.agent\n    project: src/agent\n"
                     "    container: {resources: {cpu: '0.5', memory: 1Gi}}\n"
                     "    env: {LEVEL: debug}\n")
    found = load_definition(root)  # no inline kind: agent.yaml, with the service's overrides
    assert found.name == "yaml-name" and found.definition["cpu"] == "0.5"
    assert found.definition["environment_variables"] == {"LEVEL": "debug"}
    assert found.code["dependency_resolution"] == "remote_build"  # azd's default
    assert any("no code_configuration; using azd's defaults" in n for n in found.notes)
    azure.write_text(azure.read_text() + "    kind: hosted\n    name: inline-name\n")
    assert load_definition(root).name == "inline-name"
    azure.write_text("services:\n  agent:\n    host: azure.ai.agent\n    project: src/agent\n"
                     "    config: {kind: hosted, name: legacy-config}\n")
    assert load_definition(root).name == "legacy-config"
    (root / "metadata.json").write_text(json.dumps(remote()))
    assert load_definition(root).source == "metadata.json"


def test_init_on_an_existing_folder_adds_only_the_definition(tmp_path: Path,
                                                             run_cli: Any) -> None:
    root = tmp_path / "existing"
    root.mkdir()
    (root / "app.py").write_text("print('mine')\n")
    (root / "requirements.txt").write_text("mine==1\n")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.iterdir()}
    result = run_cli("init", root, "--mode", "remote_build")
    assert result.exit_code == 0, result.output
    assert f"wrote {root / 'metadata.json'} (python_3_13, remote_build, entry point python " \
        "app.py); nothing else was changed" in result.stdout
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.iterdir()}
    assert after.pop("metadata.json") and after == before
    assert load_project(root).entry_point == ["python", "app.py"]
    again = run_cli("init", root)
    assert again.exit_code == 0 and "already has an agent definition (metadata.json)" \
        in again.stdout
    yaml_project = project(tmp_path / "yaml", files={"agent.yaml": "kind: hosted\nname: y\n"})
    result = run_cli("init", yaml_project)
    assert "already has an agent definition (agent.yaml)" in result.stdout
    assert not (yaml_project / "metadata.json").exists()


# ---- the same bytes on any host -------------------------------------------------------------

def _tree(root: Path, *, exec_bits: str, nfd: bool, backslash: bool) -> Path:
    """One project as a Linux, Windows, WSL/FAT or macOS checkout leaves it."""
    cafe = unicodedata.normalize("NFD" if nfd else "NFC", "café.py")
    docs = unicodedata.normalize("NFD" if nfd else "NFC", "résumé")
    files = {"main.py": MAIN, cafe: "X = 1\n", "run.sh": "#!/bin/sh\nexec python main.py\n",
             "tool": "#!/usr/bin/env python3\nprint(1)\n", "data/notes.txt": "n\n",
             f"{docs}/build/x.txt": "excluded\n", "requirements.txt": ""}
    root = project(root, remote(), files=files)
    ignore = f"{docs}\\build\\\n" if backslash else f"{docs}/build/\n"
    (root / ".fbundleignore").write_text(unicodedata.normalize("NFD" if nfd else "NFC", ignore))
    for path in root.rglob("*"):
        if path.is_file():
            script = path.name in ("run.sh", "tool")
            mode = {"linux": 0o755 if script else 0o644, "windows": 0o644,
                    "fat": 0o755}[exec_bits]
            path.chmod(mode)
    return root


def test_bundle_bytes_do_not_depend_on_the_host(tmp_path: Path, run_cli: Any) -> None:
    hosts = {"linux": dict(exec_bits="linux", nfd=False, backslash=False),
             "windows": dict(exec_bits="windows", nfd=False, backslash=True),
             "wsl-or-fat": dict(exec_bits="fat", nfd=False, backslash=False),
             "macos": dict(exec_bits="linux", nfd=True, backslash=False)}
    shas = {}
    for host, shape in hosts.items():
        root = _tree(tmp_path / host / "agent", **shape)  # type: ignore[arg-type]
        result = run_cli("build", root)
        assert result.exit_code == 0, (host, result.output)
        zip_path = root / "dist" / "agent.zip"
        shas[host] = hashlib.sha256(zip_path.read_bytes()).hexdigest()
        with zipfile.ZipFile(zip_path) as archive:
            modes = {i.filename: i.external_attr >> 16 & 0o777 for i in archive.infolist()}
        assert modes == {"café.py": 0o644, "data/notes.txt": 0o644, "main.py": 0o644,
                         "requirements.txt": 0o644, "run.sh": 0o755, "tool": 0o755}, host
    assert len(set(shas.values())) == 1, shas


def test_names_a_windows_or_macos_checkout_would_merge_are_refused(tmp_path: Path,
                                                                   run_cli: Any) -> None:
    root = project(tmp_path / "agent", remote(), files={"Util.py": "", "util.py": ""})
    if len({p.name.casefold() for p in root.iterdir()}) == len(list(root.iterdir())):
        pytest.skip("this filesystem folds case")
    one_line_exit_2(run_cli("build", root), "Util.py and util.py differ only in case")
    (root / "Util.py").unlink()
    nfc, nfd = unicodedata.normalize("NFC", "é.py"), unicodedata.normalize("NFD", "é.py")
    (root / nfc).write_text("")
    (root / nfd).write_text("")
    if len(os.listdir(root)) == len({unicodedata.normalize("NFC", n) for n in os.listdir(root)}):
        pytest.skip("this filesystem normalises names")
    one_line_exit_2(run_cli("build", root), "are the same name once normalised")


def test_mode_is_a_function_of_the_bytes() -> None:
    with open(sys.executable, "rb") as stream:
        assert elf_executable(stream.read(4096))  # a PIE program
    elf_so = bytearray(64)
    elf_so[:6] = b"\x7fELF\x02\x01"
    elf_so[16] = 3  # ET_DYN without PT_INTERP: a shared library
    assert not elf_executable(bytes(elf_so))
    elf_so[16] = 2  # ET_EXEC
    assert elf_executable(bytes(elf_so))
    assert not elf_executable(b"#!/bin/sh\n")
    assert portable_pattern("docs\\build\\") == "docs/build/"
    assert portable_pattern("\\#not-a-comment") == "\\#not-a-comment"


YAML_BOMB = "kind: hosted\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))
BAD_AGENT_YAML = {
    "alias-bomb": (YAML_BOMB, "holds more than 100,000 values"),
    "5000-digits": ("kind: hosted\nresources:\n  cpu: " + "9" * 5000 + "\n  memory: 1Gi\n",
                    "a value cannot be read"),
    "date-version": ("kind: hosted\nprotocols:\n  - {protocol: responses, version: 2024-01-01}\n",
                     "protocols.version is a date"),
    "protocols-number": ("kind: hosted\nprotocols: 5\n", "protocols must be a list"),
    "env-name-number": ("kind: hosted\nenvironment_variables:\n  - name: 1\n",
                        "an entry is not {name, value}"),
    "a-list": ("- kind\n", "must hold a YAML mapping, not a list"),
    "no-kind": ("name: x\n", "kind is missing; fbundle builds hosted agents"),
    "prompt-kind": ("kind: prompt\n", "kind is 'prompt'"),
    "nan-cpu": ("kind: hosted\nresources: {cpu: .nan, memory: 1Gi}\n", "finite number"),
    "syntax": ("kind: [hosted\n", "not valid YAML (line"),
    "image-only": ("kind: hosted\nimage: r.azurecr.io/a:1\n", "that is a container deploy"),
    "manifest-template-list": ("name: m\ntemplate: [kind]\n", "template must be a non-empty"),
    "manifest-no-kind": ("name: m\ntemplate: {name: m}\n", "kind is missing"),
    "runtime-list": ("kind: hosted\ncode_configuration: {runtime: [x]}\n",
                     "code_configuration runtime is a list"),
}


@pytest.mark.parametrize("case", sorted(BAD_AGENT_YAML))
def test_bad_agent_yaml_is_one_line_and_exit_2(tmp_path: Path, run_cli: Any, case: str) -> None:
    text, expected = BAD_AGENT_YAML[case]
    root = project(tmp_path / "agent", files={"agent.yaml": text})
    one_line_exit_2(run_cli("build", root, "--mode", "remote_build"), expected)


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_KEYS = st.sampled_from(["definition", "kind", "cpu", "memory", "code_configuration",
                         "runtime", "entry_point", "dependency_resolution", "protocol_versions",
                         "protocol", "version", "environment_variables", "name", "x"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=8) | st.sampled_from(["hosted", "python_3_13", "bundled", "1", "2Gi"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=6),
    max_leaves=30)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_JSON)
def test_any_json_definition_loads_or_is_one_usage_error(tmp_path: Path, document: Any) -> None:
    root = project(tmp_path / "fuzz", files={"metadata.json": json.dumps(document)})
    try:
        spec = load_project(root)
    except UsageError as error:
        assert "\n" not in str(error)
    else:
        assert spec.runtime and spec.entry_point and spec.mode


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_JSON)
def test_any_agent_yaml_loads_or_is_one_usage_error(tmp_path: Path, document: Any) -> None:
    import yaml

    if isinstance(document, dict):
        document.setdefault("kind", "hosted")
    root = project(tmp_path / "fuzz", files={"agent.yaml": yaml.safe_dump(document)})
    (root / "metadata.json").unlink(missing_ok=True)
    try:
        load_project(root)
    except UsageError as error:
        assert "\n" not in str(error)


@given(text=st.text(max_size=40))
def test_expansion_never_fails_and_keeps_foundry_spans(text: str) -> None:
    value = f"{text}${{{{connections.a.key}}}}"
    assert Environment({"A": "1"}).expand(value).endswith("${{connections.a.key}}")
    assert Environment({}).expand("${MISSING:-${{event.body}}}") == "${{event.body}}"  # as azd


def test_a_file_and_a_folder_with_twin_names_are_refused(tmp_path: Path, run_cli: Any) -> None:
    root = project(tmp_path / "agent", remote(), files={"src/Data": "", "src/data/x.py": ""})
    if (root / "src" / "data").samefile(root / "src" / "Data"):
        pytest.skip("this filesystem folds case")
    one_line_exit_2(run_cli("build", root), "src/Data and src/data/ differ only in case")


MANIFEST = """name: manifest-agent
description: >
  Said by the manifest.
metadata:
  tags: [Sample]
template:
  name: template-agent
  kind: hosted
  protocols:
    - {protocol: responses, version: v1}
  environment_variables:
    - {name: ENDPOINT, value: plain}
    - {name: DEPLOYMENT, value: "{{chat}}"}
    - {name: TURNS, value: 10}
resources:
  - {kind: model, id: gpt-5, name: chat}
"""


def test_an_agent_manifest_is_read_from_its_template_as_azd_reads_it(
        tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The older samples' agent.yaml (and agent.manifest.yaml) nest the ContainerAgent under
    template: beside a list of model resources; azd's ExtractAgentDefinition reads the template,
    so a build must too, not stop at 'kind is missing' or 'resources must be a mapping'."""
    for name in ("chat", "CHAT", "AZURE_AI_MODEL_DEPLOYMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    root = project(tmp_path / "agent", files={"agent.yaml": MANIFEST})
    result = run_cli("build", root)
    assert result.exit_code == 0, result.output
    assert "agent.yaml is an agent manifest; its template: is the definition" in result.stderr
    # {{chat}} names the model resource: azd --no-prompt deploys it under its model's name
    assert "manifest parameters filled as azd ai agent init --no-prompt would: chat (the " \
        "model's id)" in result.stderr
    assert "using azd's defaults python_3_13, 'python main.py', remote_build" in result.stderr
    written = json.loads((root / "dist" / "template-agent.metadata.json").read_text())
    assert written["description"] == "Said by the manifest."
    definition = written["definition"]
    assert definition["environment_variables"] == {"ENDPOINT": "plain", "DEPLOYMENT": "gpt-5",
                                                   "TURNS": "10"}
    assert (definition["cpu"], definition["memory"]) == ("1", "2Gi")  # not the model list
    assert definition["protocol_versions"] == [{"protocol": "responses", "version": "v1"}]
    # the manifest's name and description fill in what the template leaves out
    (root / "agent.yaml").write_text(MANIFEST.replace("  name: template-agent\n", ""))
    assert load_definition(root).name == "manifest-agent"
    # a ContainerAgent that happens to have a template key is still read as itself
    (root / "agent.yaml").write_text("kind: hosted\nname: direct\ntemplate: {kind: prompt}\n")
    assert load_definition(root).name == "direct"


# ---- defaults: one protocol default everywhere, and notes that say only what happens --------


def test_every_protocol_default_is_azds_responses_2_0_0(tmp_path: Path, run_cli: Any) -> None:
    """azd sends responses 2.0.0 when a definition names no protocol (CreateHostedAgentAPIRequest,
    init --no-prompt); flags alone, an agent.yaml without protocols, `fbundle init` and the
    hints for a missing protocol_versions all say the same."""
    flags = project(tmp_path / "flags")
    result = run_cli("build", flags, "--runtime", "python_3_13", "--mode", "bundled")
    assert result.exit_code == 0, result.output
    assert "no --protocol; using responses 2.0.0 (azd's default)" in result.stderr
    written = json.loads((flags / "dist" / "flags.metadata.json").read_text())
    assert written["definition"]["protocol_versions"] == [
        {"protocol": "responses", "version": "2.0.0"}]
    yaml_only = project(tmp_path / "yaml", files={"agent.yaml": "kind: hosted\nname: y\n"})
    assert load_definition(yaml_only).definition["protocol_versions"] == [
        {"protocol": "responses", "version": "2.0.0"}]
    assert example_metadata()["definition"]["protocol_versions"] == [
        {"protocol": "responses", "version": "2.0.0"}]
    missing = remote()
    del missing["definition"]["protocol_versions"]
    result = run_cli("validate", project(tmp_path / "missing", missing))
    assert '"responses", "version": "2.0.0"' in result.output
    assert "1.0.0" not in result.output


def test_a_default_a_flag_replaces_is_not_announced(tmp_path: Path, run_cli: Any) -> None:
    """The notes name the defaults that land in the definition, never one a flag replaced:
    `--mode bundled` must not print "using azd's defaults ... remote_build"."""
    root = project(tmp_path / "agent", files={"agent.yaml": "kind: hosted\nname: n\n"})
    result = run_cli("build", root, "--mode", "bundled")
    assert result.exit_code == 0, result.output
    assert "remote_build" not in result.stderr, result.stderr
    assert "using azd's defaults python_3_13, 'python main.py' (" in result.stderr
    assert "declares no protocols; using responses 2.0.0" in result.stderr
    result = run_cli("build", root, "--mode", "bundled", "--runtime", "python_3_13",
                     "--entry-point", "python main.py", "--protocol", "invocations@1.0.0")
    assert result.exit_code == 0, result.output
    assert "no code_configuration" not in result.stderr, result.stderr
    assert "declares no protocols" not in result.stderr, result.stderr
    written = json.loads((root / "dist" / "n.metadata.json").read_text())["definition"]
    assert written["protocol_versions"] == [{"protocol": "invocations", "version": "1.0.0"}]
    assert written["code_configuration"]["dependency_resolution"] == "bundled"
    # code_configuration without dependency_resolution: the note only when --mode is absent
    (root / "agent.yaml").write_text("kind: hosted\nname: n\ncode_configuration:\n"
                                     "  runtime: python_3_13\n  entry_point: main.py\n")
    assert any("sets no dependency_resolution" in n for n in load_definition(root).notes)
    found = load_definition(root, flags=Flags(mode="bundled"))
    assert not any("dependency_resolution" in n for n in found.notes), found.notes
    assert found.code["dependency_resolution"] == "bundled"
    # --runtime dotnet_10 on a definition without code_configuration: the default entry point
    # is the .NET one, and the note says that one, not python's
    (root / "agent.yaml").write_text("kind: hosted\nname: n\n")
    found = load_definition(root, flags=Flags(runtime="dotnet_10"))
    assert found.code["entry_point"] == ["dotnet", "App.dll"]
    assert any("'dotnet App.dll', remote_build" in n for n in found.notes), found.notes


# ---- $ref includes in azure.yaml (azd's foundry.ResolveFileRefs) -----------------------------


def azd_project(tmp_path: Path, service: str, files: dict[str, str]) -> Path:
    """An azd project: azure.yaml with one azure.ai.agent service at src/agent, and files."""
    repo = tmp_path / "repo"
    project(repo / "src" / "agent")
    (repo / "azure.yaml").write_text("name: p\nservices:\n  agent:\n    host: azure.ai.agent\n"
                                     "    project: src/agent\n" + service)
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    return repo / "src" / "agent"


def test_a_service_definition_from_ref_is_read_as_azd_resolves_it(tmp_path: Path,
                                                                  run_cli: Any) -> None:
    """azd resolves $ref in an azure.ai.agent service before looking for its kind: the
    referenced file is the definition, paths are relative to the file holding the $ref, nested
    includes resolve, and the entry's own keys lay over the loaded object."""
    root = azd_project(tmp_path, "    $ref: ./agents/def.yaml\n    name: overlaid\n"
                       "    env: {LEVEL: debug}\n", {
                           "agents/def.yaml": "kind: hosted\nname: from-ref\n"
                           "protocols: [{protocol: invocations, version: 2.0.0}]\n"
                           "codeConfiguration: {$ref: ./code/code.json}\n"
                           "container: {resources: {cpu: '0.5', memory: 1Gi}}\n",
                           "agents/code/code.json": json.dumps({
                               "runtime": "python_3_13", "entryPoint": "main.py",
                               "dependencyResolution": "bundled"})})
    result = run_cli("build", root)
    assert result.exit_code == 0, result.output
    written = json.loads((root / "dist" / "overlaid.metadata.json").read_text())["definition"]
    assert written["code_configuration"] == {"runtime": "python_3_13",
                                             "entry_point": ["python", "main.py"],
                                             "dependency_resolution": "bundled"}
    assert written["protocol_versions"] == [{"protocol": "invocations", "version": "2.0.0"}]
    assert (written["cpu"], written["memory"]) == ("0.5", "1Gi")
    assert written["environment_variables"] == {"LEVEL": "debug"}
    # the deprecated config: block resolves its $ref too
    (root.parent.parent / "azure.yaml").write_text(
        "services:\n  agent:\n    host: azure.ai.agent\n    project: src/agent\n"
        "    config: {$ref: agents/def.yaml}\n")
    assert load_definition(root).name == "from-ref"


REF_REFUSED = {
    "missing": ("$ref: ./nope.yaml", {}, "$ref './nope.yaml' names no file"),
    "url": ("$ref: https://example.test/a.yaml", {}, "is a URL; remote includes"),
    "outside": ("$ref: ../outside.yaml", {"../outside.yaml": "kind: hosted\n"},
                "points outside the azd project folder"),
    "cycle": ("$ref: a.yaml", {"a.yaml": "kind: hosted\ncodeConfiguration: {$ref: b.yaml}\n",
                               "b.yaml": "x: {$ref: a.yaml}\n"}, "cyclic $ref include at a.yaml"),
    "not-a-mapping": ("$ref: l.yaml", {"l.yaml": "[1, 2]\n"}, "must hold a YAML mapping"),
    "not-a-string": ("$ref: [a]", {}, "$ref must be a path to a YAML or JSON file"),
    "core-field": ("$ref: c.yaml", {"c.yaml": "kind: hosted\nproject: elsewhere\n"},
                   "sets 'project', which azd reads only from azure.yaml"),
}


@pytest.mark.parametrize("case", sorted(REF_REFUSED))
def test_a_ref_that_cannot_be_followed_is_one_line(tmp_path: Path, run_cli: Any,
                                                   case: str) -> None:
    line, files, expected = REF_REFUSED[case]
    root = azd_project(tmp_path, f"    {line}\n", files)
    one_line_exit_2(run_cli("build", root), "service 'agent'", expected)


def test_ref_includes_nest_at_most_32_deep(tmp_path: Path, run_cli: Any) -> None:
    files = {f"r{i}.yaml": f"kind: hosted\nnext: {{$ref: r{i + 1}.yaml}}\n" for i in range(32)}
    files["r32.yaml"] = "end: true\n"  # 33 files: one too many
    root = azd_project(tmp_path, "    $ref: r0.yaml\n", files)
    one_line_exit_2(run_cli("build", root), "nest more than 32 levels deep")
    del files["r32.yaml"]  # 32 files, r0..r31, is as deep as azd goes
    files["r31.yaml"] = "end: true\n"
    root = azd_project(tmp_path / "ok", "    $ref: r0.yaml\n", files)
    assert load_definition(root).source.endswith("service 'agent'")


def test_ref_in_agent_yaml_is_not_followed_and_says_so(tmp_path: Path) -> None:
    """azd reads an on-disk agent.yaml as it is (parseContainerAgentYAML resolves nothing)."""
    root = project(tmp_path / "agent", files={"agent.yaml": "kind: hosted\nname: a\n"
                                              "$ref: other.yaml\n"})
    found = load_definition(root)
    assert found.name == "a"
    assert any("$ref is not followed here (azd resolves $ref includes only in azure.yaml"
               in note for note in found.notes), found.notes


# ---- manifest parameters ({{param}}), filled as azd ai agent init --no-prompt fills them -----

PARAMETERS = """name: param-agent
template:
  kind: hosted
  name: "{{agent_name}}"
  protocols: [{protocol: responses, version: "{{ protocol_version }}"}]
  resources: {cpu: "{{cpu}}", memory: 1Gi}
  environment_variables:
    - {name: API_KEY, value: "Bearer {{api_key}}"}
    - {name: SEARCH, value: "{{toolbox-endpoint}}"}
    - {name: MODEL, value: "{{ chat }}"}
    - {name: TONE, value: "{{tone}}"}
    - {name: FOUNDRY, value: "${{connections.c.key}}{{ notdeclared }}"}
    - {name: SPACED, value: "{{tone  }}"}
resources:
  - {kind: model, name: chat, id: gpt-5}
parameters:
  agent_name: {schema: {type: string, default: from-default}}
  protocol_version: {schema: {type: string}, default: 2.0.0}
  cpu: {default: 0.5}
  api_key: {schema: {type: string, secret: true, default: never-used}, required: true}
  toolbox-endpoint: {schema: {type: string}, required: true}
  tone: {schema: {type: string, enum: [calm, loud]}}
"""


def test_manifest_parameters_are_filled_from_the_environment_then_defaults(
        tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every {{param}} the template uses gets a value without a prompt: the environment (process,
    .env, azd environment), else the parameter's default (never a secret's), else an enum's first
    value, else a model's id. A .env value stays out of the file written beside the zip and no
    value is printed."""
    for name in ("agent_name", "AGENT_NAME", "api_key", "API_KEY", "TOOLBOX_ENDPOINT", "chat",
                 "CHAT", "tone", "TONE", "cpu", "CPU", "protocol_version", "PROTOCOL_VERSION",
                 "AZURE_AI_MODEL_DEPLOYMENT_NAME", "AZURE_ENV_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TOOLBOX_ENDPOINT", "https://process-toolbox.example")
    root = project(tmp_path / "agent", files={"agent.yaml": PARAMETERS,
                                              ".env": "api_key=dotenv-secret-value\n",
                                              ".azure/config.json": '{"defaultEnvironment": "dev"}',
                                              ".azure/dev/.env":
                                              "AZURE_AI_MODEL_DEPLOYMENT_NAME=azd-deployment\n"})
    result = run_cli("build", root)
    assert result.exit_code == 0, result.output
    for value in ("dotenv-secret-value", "process-toolbox", "azd-deployment", "never-used"):
        assert value not in result.output
    assert "agent_name (its default)" in result.stderr and "api_key (api_key from the " \
        "environment)" in result.stderr and "tone (its first enum value)" in result.stderr
    assert "chat (AZURE_AI_MODEL_DEPLOYMENT_NAME from the environment)" in result.stderr
    assert "{{notdeclared}} is no declared parameter or model resource; kept as written" \
        in result.stderr
    assert "{{tone  }} kept as written: azd fills only {{NAME}} and {{ NAME }}" in result.stderr
    found = load_definition(root)
    assert found.name == "from-default"
    definition = found.definition
    assert definition["cpu"] == "0.5"
    assert definition["protocol_versions"] == [{"protocol": "responses", "version": "2.0.0"}]
    assert definition["environment_variables"] == {
        "API_KEY": "Bearer dotenv-secret-value", "SEARCH": "https://process-toolbox.example",
        "MODEL": "azd-deployment", "TONE": "calm",
        "FOUNDRY": "${{connections.c.key}}{{ notdeclared }}", "SPACED": "{{tone  }}"}
    written = (root / "dist" / "from-default.metadata.json").read_text()
    assert "dotenv-secret-value" not in written and "azd-deployment" not in written
    env = json.loads(written)["definition"]["environment_variables"]
    assert env["API_KEY"] == "Bearer ${api_key}" and env["MODEL"] == \
        "${AZURE_AI_MODEL_DEPLOYMENT_NAME}"
    assert env["SEARCH"] == "https://process-toolbox.example"  # the process's: written expanded
    # the process environment wins over the parameter's default, by name or in upper case
    monkeypatch.setenv("AGENT_NAME", "from-env")
    assert load_definition(root).name == "from-env"


def test_a_parameter_without_a_value_is_one_line_naming_it(tmp_path: Path, run_cli: Any,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    for name in ("api_key", "API_KEY", "TOOLBOX_ENDPOINT", "toolbox-endpoint"):
        monkeypatch.delenv(name, raising=False)
    root = project(tmp_path / "agent", files={"agent.yaml": PARAMETERS})
    one_line_exit_2(run_cli("build", root), "manifest parameters api_key, toolbox-endpoint have "
                    "no value", "set api_key or API_KEY in the environment, a .env beside "
                    "agent.yaml", "give it a default: under parameters:")
    # a secret's default is never used (azd --no-prompt refuses it too); set it and only the
    # other one is missing
    monkeypatch.setenv("API_KEY", "s3cret-from-process")
    result = run_cli("build", root)
    one_line_exit_2(result, "manifest parameter toolbox-endpoint has no value",
                    "set TOOLBOX_ENDPOINT in the environment")
    assert "s3cret" not in result.output
    # a parameter the template does not use needs no value
    monkeypatch.setenv("TOOLBOX_ENDPOINT", "https://t.example")
    (root / "agent.yaml").write_text(PARAMETERS + "  extra: {schema: {type: string}}\n")
    result = run_cli("build", root)
    assert result.exit_code == 0, result.output
    # a secret parameter's value stays out of the file even from the process environment
    # (deploy expands the reference again, in memory); a plain one is written expanded
    assert load_definition(root).definition["environment_variables"]["API_KEY"] == \
        "Bearer s3cret-from-process"
    written = (root / "dist" / "from-default.metadata.json").read_text()
    assert "s3cret" not in written and "Bearer ${API_KEY}" in written
    assert "https://t.example" in written


@pytest.mark.parametrize("layout", ["list", "mapping"])
def test_both_of_azds_parameter_layouts_are_read(tmp_path: Path, layout: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("level", raising=False)
    monkeypatch.delenv("LEVEL", raising=False)
    body = ("  properties:\n    - {name: level, kind: string, default: warn}\n" if layout == "list"
            else "  properties:\n    level: {schema: {type: string, default: warn}}\n")
    root = project(tmp_path / "agent", files={"agent.yaml": (
        "name: m\ntemplate:\n  kind: hosted\n  environment_variables:\n"
        "    - {name: LOG_LEVEL, value: '{{level}}'}\nparameters:\n" + body)})
    assert load_definition(root).definition["environment_variables"] == {"LOG_LEVEL": "warn"}
    (root / "agent.yaml").write_text("name: m\ntemplate: {kind: hosted}\nparameters: [a]\n")
    with pytest.raises(UsageError, match="parameters must be a mapping"):
        load_definition(root)


_MANIFEST_KEYS = st.sampled_from(["template", "parameters", "properties", "resources", "schema",
                                  "default", "enum", "secret", "name", "kind", "id", "model",
                                  "environment_variables", "value", "p"])


def _manifest_children(inner: Any) -> Any:
    return st.lists(inner, max_size=4) | st.dictionaries(_MANIFEST_KEYS, inner, max_size=5)


_MANIFEST_JSON = st.recursive(
    st.none() | st.booleans() | st.integers()
    | st.sampled_from(["{{p}}", "{{ p }}", "{{model}}", "${{x}}", "hosted", "model", "p", ""]),
    _manifest_children, max_leaves=30)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.dictionaries(_MANIFEST_KEYS, _MANIFEST_JSON, max_size=5))
def test_any_agent_manifest_loads_or_is_one_usage_error(tmp_path: Path, document: Any) -> None:
    import yaml

    template = document.get("template")
    if isinstance(template, dict):
        template["kind"] = "hosted"
    root = project(tmp_path / "fuzz", files={"agent.yaml": yaml.safe_dump(document)})
    try:
        load_project(root)
    except UsageError as error:
        assert "\n" not in str(error)


def test_a_placeholder_left_in_a_plain_definition_warns(tmp_path: Path) -> None:
    """azd's init fills {{NAME}} from a manifest; one left in a plain agent.yaml or an azure.yaml
    service reaches the agent as written (azd's nextstep calls it a deploy-time landmine)."""
    root = project(tmp_path / "agent", files={"agent.yaml": (
        "kind: hosted\nname: n\nenvironment_variables:\n"
        "  - {name: A, value: '{{endpoint}}'}\n  - {name: B, value: '${{connections.c.key}}'}\n")})
    found = load_definition(root)
    assert found.definition["environment_variables"]["A"] == "{{endpoint}}"
    warned = [n for n in found.notes if n.startswith("warning:") and "azd's init fills" in n]
    assert len(warned) == 1 and "{{endpoint}} is a placeholder azd's init fills" in warned[0]
    assert "connections" not in warned[0]


# ---- what a new user met on Microsoft's samples ------------------------------------------------


def test_a_protocol_without_a_version_gets_azds_default_and_a_flag_replaces_it(
        tmp_path: Path, run_cli: Any) -> None:
    """foundry-samples' workflow-agent-with-checkpoint-and-hitl writes `protocols: [{protocol:
    responses}]`; azd does not refuse it (agent_yaml/map.go passes it on), so it gets the
    version azd sends by default, with a note. --protocol replaces the file's protocols before
    they are judged, so even a malformed list does not stop a build that names its own."""
    root = project(tmp_path / "agent", files={
        "agent.yaml": "kind: hosted\nname: hitl\nprotocols:\n  - protocol: responses\n"
                      "  - {protocol: invocations, version: ''}\n"})
    found = load_definition(root)
    assert found.definition["protocol_versions"] == [
        {"protocol": "responses", "version": "2.0.0"},
        {"protocol": "invocations", "version": "2.0.0"}]
    assert any("responses, invocations have no version; using 2.0.0" in n
               for n in found.notes), found.notes
    flagged = load_definition(root, flags=Flags(protocols=("responses@1.0.0",)))
    assert flagged.definition["protocol_versions"] == [
        {"protocol": "responses", "version": "1.0.0"}]
    assert not any("no version" in n for n in flagged.notes), flagged.notes
    (root / "agent.yaml").write_text("kind: hosted\nname: hitl\nprotocols: 5\n")
    one_line_exit_2(run_cli("build", root), "protocols must be a list")
    result = run_cli("build", root, "--protocol", "responses@1.0.0")
    assert result.exit_code == 0, result.output
    written = json.loads((root / "dist" / "hitl.metadata.json").read_text())["definition"]
    assert written["protocol_versions"] == [{"protocol": "responses", "version": "1.0.0"}]


def test_an_azd_project_root_names_its_agent_services_and_what_to_run(
        tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """At an azd project root whose agent services live in subfolders there is no definition
    to build; the one line names the services, their folders and the command that builds one
    (exit 2), and that command works."""
    repo = tmp_path / "repo"
    project(repo / "agents", files={"agent.yaml": "kind: hosted\nname: a\n"})
    (repo / "azure.yaml").write_text(
        "name: p\nservices:\n  agent-a:\n    project: ./agents\n    host: azure.ai.agent\n"
        "  flow:\n    project: workflows/\n    host: azure.ai.agent\n"
        "  web:\n    project: ./web\n    host: containerapp\n")
    result = run_cli("build", repo)
    one_line_exit_2(result, "azd project", "'agent-a' in agents, 'flow' in workflows",
                    f"run `fbundle build {repo.as_posix()}/agents`")
    assert "web" not in result.stderr, result.stderr
    assert run_cli("build", repo / "agents").exit_code == 0
    monkeypatch.chdir(repo)  # from the root itself, the hint is relative: ./agents
    with pytest.raises(UsageError, match=r"run `fbundle build \./agents`"):
        load_definition(Path("."))


def test_a_services_startup_command_is_the_entry_point_when_the_source_names_none(
        tmp_path: Path, run_cli: Any) -> None:
    """Azure-Samples' foundry-hosted-agentframework-demos: a `language: docker` service whose
    deprecated config: block holds container.resources and startupCommand, and an agent.yaml
    with no code_configuration. azd reads both settings from config: (ServiceConfigProps) and
    `azd ai agent run` starts startupCommand, so that is the entry point, not main.py; the
    note says so, and FB102's hint names the file the entry point came from."""
    repo = tmp_path / "repo"
    agents = repo / "agents"
    agents.mkdir(parents=True)
    (agents / "stage4.py").write_text(MAIN)
    (agents / "requirements.txt").write_text("")
    (agents / "agent.yaml").write_text(
        "kind: hosted\nname: demo\nresources: {cpu: '0.25', memory: 0.5Gi}\n")
    (repo / "azure.yaml").write_text(
        "name: p\nservices:\n  demo:\n    project: ./agents\n    host: azure.ai.agent\n"
        "    language: docker\n    docker:\n      remoteBuild: true\n    config:\n"
        "      container:\n        resources: {cpu: '1', memory: 2Gi}\n"
        "      startupCommand: python stage4.py\n")
    found = load_definition(agents)
    assert found.code["entry_point"] == ["python", "stage4.py"]
    assert (found.definition["cpu"], found.definition["memory"]) == ("1", "2Gi")
    notes = "\n".join(found.notes)
    assert "using the service's startupCommand 'python stage4.py' (what azd ai agent run " \
           "starts; azd deploys this language: docker service as a container" in notes, notes
    assert "main.py" not in notes, notes
    flagged = load_definition(agents, flags=Flags(entry_point="python stage4.py --x"))
    assert flagged.code["entry_point"] == ["python", "stage4.py", "--x"]
    assert "startupCommand" not in "\n".join(flagged.notes)
    result = run_cli("build", agents)
    assert result.exit_code == 0, result.output
    # an entry point the bundle lacks: the hint names the definition's own file
    (agents / "agent.yaml").write_text("kind: hosted\nname: demo\ncode_configuration:\n"
                                       "  entry_point: gone.py\n")
    result = run_cli("build", agents)
    assert result.exit_code == 1 and "FB102" in result.stderr, result.output
    assert "fix the entry point in agent.yaml, or pass --entry-point" in result.stderr
    assert "metadata.json" not in result.stderr, result.stderr
