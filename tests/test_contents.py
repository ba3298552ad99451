"""What a build collects and writes: junk and secrets left out, git-ignored files reported,
symlinked folders at every path, temps never shipped, outputs never over a source, identities
from the bytes written, write failures that name the path."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from bundler.collect import scan_sources
from bundler.errors import BuildError
from bundler.model import Bundle, BytesData, Entry, content_digest, digest_line, file_sha256
from bundler.sensitive import SCAN_LIMIT, SecretScan, judge
from bundler.write import TEMP_SUFFIX, atomic_output, write_zip
from tests.support import RunCli, SimpleIndex
from tests.support.projects import make_project

PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE\n-----END CERTIFICATE-----\n"
AWS_EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documented example
GCP_KEY = json.dumps({"type": "service_account", "project_id": "p", "private_key_id": "1",
                      "private_key": PRIVATE_KEY, "client_email": "a@p.iam.gserviceaccount.com"})


def names(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.namelist()


def listed(stdout: str) -> list[str]:
    return [line[2:].split("  ")[0] for line in stdout.splitlines() if line.startswith("+ ")]


def remote(root: Path, files: dict[str, str | bytes] | None = None) -> Path:
    return make_project(root, "", mode="remote_build", files=files)


# -- issue 14: secrets and junk ---------------------------------------------------------------

def test_azd_files_docker_files_and_any_venv_are_left_out_by_default(tmp_path: Path,
                                                                     run_cli: RunCli) -> None:
    project = remote(tmp_path / "agent", {
        ".azure/dev/.env": "AZURE_SUBSCRIPTION_ID=1", ".azure/config.json": "{}",
        "azure.yaml": "name: x", "agent.yaml": "kind: hosted", "agent.yml": "x",
        "Dockerfile": "FROM python",
        ".dockerignore": "*", "venv2/pyvenv.cfg": "home = /usr", "venv2/lib/x.py": "x = 1",
        "tools/env/pyvenv.cfg": "home = /usr", "tools/env/bin/python": "x",
        "app/agent.py": "x = 1",
    })
    result = run_cli("build", project, "--list")
    assert result.exit_code == 0, result.output
    assert listed(result.stdout) == ["app/agent.py", "main.py", "requirements.txt"]
    assert "- venv2/  (a virtual environment (holds pyvenv.cfg))" in result.stdout
    assert "- tools/env/  (a virtual environment (holds pyvenv.cfg))" in result.stdout
    assert "- .azure/  (excluded by default)" in result.stdout


def test_agent_yaml_ships_when_the_entry_point_names_it(tmp_path: Path, run_cli: RunCli) -> None:
    project = remote(tmp_path / "agent", {"agent.yaml": "kind: hosted"})
    metadata = json.loads((project / "metadata.json").read_text())
    metadata["definition"]["code_configuration"]["entry_point"] = [
        "python", "main.py", "--config=./agent.yaml"]
    (project / "metadata.json").write_text(json.dumps(metadata))
    result = run_cli("build", project, "--list")
    assert "agent.yaml" in listed(result.stdout), result.output


def test_files_that_look_like_secrets_are_left_out_and_named_in_a_note(tmp_path: Path,
                                                                       run_cli: RunCli) -> None:
    project = remote(tmp_path / "agent", {
        "id_rsa": PRIVATE_KEY, "certs/server.key": "x", "certs/key.pem": PRIVATE_KEY,
        "certs/ca.pem": CERTIFICATE, "gcp-key.json": GCP_KEY, "secrets.json": "{}",
        "prod.env": "TOKEN=1", ".envrc": "export TOKEN=1", "local.settings.json": "{}",
        "notes/deploy.txt": "the key:\n" + PRIVATE_KEY, "config.json": '{"type": "app"}',
        "aws/credentials": f"[default]\naws_secret_access_key = {AWS_EXAMPLE_SECRET}\n",
        # code that names the variables, or parses PEM, holds no secret
        "aws_client.py": 'import os\nKEY = os.environ["AWS_SECRET_ACCESS_KEY"]\n',
        "pem.py": 'def is_key(text):\n    return text.startswith("-----BEGIN PRIVATE KEY-----")\n',
    })
    result = run_cli("build", project, "--list")
    assert result.exit_code == 0, result.output
    # A CA bundle is public and ships; an ordinary JSON file ships.
    assert listed(result.stdout) == ["aws_client.py", "certs/ca.pem", "config.json", "main.py",
                                     "pem.py", "requirements.txt"]
    assert "- gcp-key.json  (looks like a secret: a Google Cloud service-account key;" \
        in result.stdout
    assert "- notes/deploy.txt  (looks like a secret: holds a private key;" in result.stdout
    built = run_cli("build", project)
    assert built.exit_code == 0, built.output
    assert "note: left out 10 files that look like secrets: .envrc, aws/credentials, " \
        "certs/key.pem, certs/server.key, gcp-key.json ..." in built.stderr
    assert "warning:" not in built.stderr


def test_a_secret_a_user_pattern_ships_is_a_warning_in_build_and_validate(
    tmp_path: Path, run_cli: RunCli
) -> None:
    project = remote(tmp_path / "agent", {
        "gcp-key.json": GCP_KEY, "deploy/id_rsa": PRIVATE_KEY, "notes.txt": PRIVATE_KEY,
        ".fbundleignore": "!gcp-key.json\n!deploy/id_rsa\n!notes.txt\n",
    })
    result = run_cli("build", project, "--json")
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert [line.split()[1:3] for line in warned] == [
        ["FB112", "deploy/id_rsa:"], ["FB112", "gcp-key.json:"], ["FB112", "notes.txt:"]]
    assert "a Google Cloud service-account key" in warned[1]
    data = json.loads(result.stdout)
    assert [w["code"] for w in data["warnings"]] == ["FB112"] * 3
    zip_path = project / "dist" / "agent.zip"
    assert {"gcp-key.json", "deploy/id_rsa", "notes.txt"} <= set(names(zip_path))
    checked = run_cli("validate", zip_path, "--format", "json")
    assert checked.exit_code == 0, checked.output
    found = {(f["code"], f["path"], f["message"])
             for f in json.loads(checked.stdout)["findings"]}
    # validate judges the zip's members with build's own scan: the same three, same words
    assert found == {(w["code"], w["path"], w["message"]) for w in data["warnings"]}


KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
SECRET_FILES: dict[str, str | bytes] = {
    # a key pasted into code, as a string with escaped newlines
    "config.py": 'KEY = "-----BEGIN PRIVATE KEY-----\\n' + KEY_BODY
                 + '\\n-----END PRIVATE KEY-----"\n',
    "notes.txt": f"prod creds\naws_secret_access_key: {AWS_EXAMPLE_SECRET}\n",
    "settings/prod.env": "TOKEN=1\n",
    ".env.staging": "TOKEN=2\n",
    "deep/er/still/sa.json": GCP_KEY,
}
NOT_JUDGED: dict[str, str | bytes] = {
    # past the scan's limit (the same limit for build and validate), and a binary file
    "big.log": "x" * (SCAN_LIMIT + 100) + PRIVATE_KEY,
    "blob.bin": b"\0\1\2" + PRIVATE_KEY.encode(),
    "app.py": "import os\nprint(os.environ['AWS_SECRET_ACCESS_KEY'])\n",
}


def _secrets(findings: list[dict[str, str]]) -> set[tuple[str, str, str]]:
    return {(f["code"], f["path"], f["message"]) for f in findings
            if f["code"] in ("FB110", "FB112")}


def test_build_and_validate_judge_every_text_file_alike_from_the_same_bytes(
    tmp_path: Path, run_cli: RunCli
) -> None:
    project = remote(tmp_path / "agent", {**SECRET_FILES, **NOT_JUDGED})
    # By default build leaves out what looks like a secret (.env.staging by its name)
    result = run_cli("build", project, "--json")
    assert result.exit_code == 0, result.output
    left_out = json.loads(result.stdout)["secrets_left_out"]
    assert left_out == ["config.py", "deep/er/still/sa.json", "notes.txt", "settings/prod.env"]
    assert set(NOT_JUDGED) <= set(names(project / "dist" / "agent.zip"))
    # `!` patterns ship them: build warns, validate says the very same of the zip
    (project / ".fbundleignore").write_text("".join(f"!{n}\n" for n in SECRET_FILES))
    result = run_cli("build", project, "--json")
    assert result.exit_code == 0, result.output
    built = _secrets(json.loads(result.stdout)["warnings"])
    assert {(code, path) for code, path, _ in built} == {
        ("FB112", "config.py"), ("FB112", "notes.txt"), ("FB112", "settings/prod.env"),
        ("FB110", ".env.staging"), ("FB112", "deep/er/still/sa.json")}
    assert ("FB112", "notes.txt", "looks like a secret (holds AWS credentials (a secret "
            "access key)) and ships in the bundle") in built
    checked = run_cli("validate", project / "dist" / "agent.zip", "--format", "json")
    assert checked.exit_code == 0, checked.output
    assert _secrets(json.loads(checked.stdout)["findings"]) == built
    folder = run_cli("validate", project, "--format", "json")
    assert _secrets(json.loads(folder.stdout)["findings"]) == built
    # a zip another tool made of the same files is judged the same
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in {**SECRET_FILES, **NOT_JUDGED, "main.py": "",
                           "requirements.txt": ""}.items():
            archive.writestr(name, data)
    checked = run_cli("validate", other, "--format", "json", "--mode", "remote_build")
    assert _secrets(json.loads(checked.stdout)["findings"]) == built
    for output in (result.output, checked.output, folder.output):
        assert KEY_BODY not in output and AWS_EXAMPLE_SECRET not in output


def test_the_secret_scan_streams_sees_across_chunks_and_stops_at_its_limit() -> None:
    text = ("x" * 1000 + PRIVATE_KEY).encode()
    scan = SecretScan("notes.txt")
    for index in range(0, len(text), 7):  # the header split over many chunks
        scan.feed(text[index:index + 7])
    assert scan.verdict() == "holds a private key"
    assert judge("notes.txt", iter([b"aws_secret_access_key = ", AWS_EXAMPLE_SECRET.encode()])) \
        == "holds AWS credentials (a secret access key)"
    # never more than the limit is read, however long the member
    endless = SecretScan("huge.txt")
    fed = 0
    while endless.feed(b"y" * 65536):
        fed += 65536
        assert fed <= SCAN_LIMIT
    assert endless.verdict() is None
    binary = SecretScan("data.db")
    assert binary.feed(b"SQLite format 3\0" + PRIVATE_KEY.encode()) is False
    assert binary.verdict() is None
    assert judge("secrets.json", iter([b"{}"])) == "a secrets file"  # by name, bytes clean


def _git(project: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(project), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull,
                        "GIT_CONFIG_NOSYSTEM": "1"})


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_files_git_ignores_are_one_warning_with_the_count_and_the_largest(
    tmp_path: Path, run_cli: RunCli
) -> None:
    project = remote(tmp_path / "agent", {
        "data/big.bin": b"\0" * 300_000, "data/small.txt": "x", "cache.db": b"\0" * 1000,
        "tracked.log": "kept on purpose", ".gitignore": "data/\n*.db\n*.log\n",
    })
    result = run_cli("build", project)
    assert result.exit_code == 0, result.output
    assert "FB114" not in result.stderr  # not a git work tree yet: no warning
    _git(project, "init", "-q")
    _git(project, "add", "-f", "tracked.log")  # tracked: git does not ignore it
    result = run_cli("build", project, "--json")
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if "FB114" in line]
    assert warned == ["warning: FB114 data/big.bin: 3 files that git ignores would ship "
                      "(0.3 MB); the largest is data/big.bin (0.3 MB) — list what the agent "
                      "does not need in .fbundleignore (`git check-ignore -v PATH` shows which "
                      "rule ignores a file)"]
    assert [w["code"] for w in json.loads(result.stdout)["warnings"]] == ["FB114"]
    # validate DIR judges the folder as build ships it, and says the same
    checked = run_cli("validate", project)
    assert "FB114 data/big.bin: 3 files" in checked.stdout
    # a rebuild that reuses the zip still prints it
    again = run_cli("build", project)
    assert "unchanged" in again.stdout and "FB114 data/big.bin" in again.stderr


def _committed_and_cloned(project: Path, setting: str, **values: str) -> dict[str, Path]:
    """Commit ``project`` and clone it once per ``name=value`` of the git ``setting``, each
    clone at ``<name>/agent`` beside it."""
    _git(project, "init", "-q")
    _git(project, "add", ".")
    _git(project, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "agent")
    clones = {}
    for name, value in values.items():
        clones[name] = project.parent / name / "agent"
        clones[name].parent.mkdir()
        _git(project.parent, "clone", "-q", "-c", f"{setting}={value}", str(project),
             str(clones[name]))
    return clones


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_crlf_checkout_of_a_commit_gives_the_zip_an_lf_checkout_gives(tmp_path: Path) -> None:
    """core.autocrlf=true (Git for Windows' default) writes CRLF where the commit has LF: the
    committed bytes ship. A file git sees edited, and one asking for CRLF everywhere
    (eol=crlf), ship as they are on disk."""
    from bundler.build import build_project

    project = remote(tmp_path / "agent", {
        "helpers/util.py": "x = 1\ny = 2\n", "run.bat": "echo hi\n",
        ".gitattributes": "*.bat eol=crlf\n", "edited.py": "a = 1\n", ".gitignore": "dist/\n"})
    clones = _committed_and_cloned(project, "core.autocrlf", linux="false", windows="true")
    windows = clones["windows"]
    assert (windows / "helpers/util.py").read_bytes() == b"x = 1\r\ny = 2\r\n"
    linux, crlf = build_project(clones["linux"]), build_project(windows)
    assert crlf.sha256 == linux.sha256
    with zipfile.ZipFile(crlf.zip_path) as archive:
        assert archive.read("helpers/util.py") == b"x = 1\ny = 2\n"
        assert archive.read("run.bat") == b"echo hi\r\n"  # eol=crlf: CRLF in every checkout
    (windows / "edited.py").write_bytes(b"a = 1\r\nb = 2\r\n")
    with zipfile.ZipFile(build_project(windows).zip_path) as archive:
        assert archive.read("edited.py") == b"a = 1\r\nb = 2\r\n"  # an edit: as on disk
        assert archive.read("helpers/util.py") == b"x = 1\ny = 2\n"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_symlinks_checked_out_as_text_files_ship_what_they_point_to(tmp_path: Path,
                                                                   run_cli: RunCli) -> None:
    """core.symlinks=false (Git for Windows without the privilege) writes a link as a file
    holding its target: the zip is the one a Linux clone gives, links followed."""
    from bundler.build import build_project

    project = remote(tmp_path / "agent", {"shared/prompts/a.txt": "hello\n",
                                          "config.json": "{}\n", ".gitignore": "dist/\n"})
    (project / "prompts").symlink_to("shared/prompts")
    (project / "settings.json").symlink_to("config.json")
    clones = _committed_and_cloned(project, "core.symlinks", linux="true", windows="false")
    windows = clones["windows"]
    assert not (windows / "prompts").is_symlink()
    assert (windows / "prompts").read_text() == "shared/prompts"
    linux, text = build_project(clones["linux"]), build_project(windows)
    assert text.sha256 == linux.sha256
    with zipfile.ZipFile(text.zip_path) as archive:
        assert archive.read("prompts/a.txt") == b"hello\n"
        assert archive.read("settings.json") == b"{}\n"
    (windows / "settings.json").write_text("{\"real\": 1}\n")  # replaced by content: as is
    with zipfile.ZipFile(build_project(windows).zip_path) as archive:
        assert archive.read("settings.json") == b'{"real": 1}\n'
    (windows / "settings.json").write_text("../../outside.json")  # the committed text, moved
    _git(windows, "add", "settings.json")
    refused = run_cli("build", windows)
    assert refused.exit_code == 2
    assert "settings.json is a symlink to ../../outside.json, outside the project" \
        in refused.stderr


def test_validate_dir_judges_the_folder_as_build_would_ship_it(tmp_path: Path,
                                                               run_cli: RunCli) -> None:
    project = remote(tmp_path / "agent", {
        ".venv/pyvenv.cfg": "home = /usr", ".git/HEAD": "ref", ".env": "TOKEN=1",
        ".azure/dev/.env": "X=1", "scratch/big.txt": "x", ".fbundleignore": "scratch/\n",
        "__pycache__/main.cpython-313.pyc": b"\0",
    })
    built = run_cli("build", project)
    assert built.exit_code == 0, built.output
    result = run_cli("validate", project, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["findings"] == []
    # what validate looked at is what the zip holds (no dist/, no metadata.json, no scratch/)
    assert data["summary"]["files"] == len(names(project / "dist" / "agent.zip")) == 2


def test_a_control_character_in_a_zip_name_is_a_warning(tmp_path: Path, run_cli: RunCli) -> None:
    zip_path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("main.py", "print(1)\n")
        archive.writestr("requirements.txt", "")
        archive.writestr("a\nb.txt", "x")
    result = run_cli("validate", zip_path, "--mode", "remote_build")
    assert result.exit_code == 0, result.output
    assert "FB209 a\\x0ab.txt: a control character in the name" in result.stdout


# -- issue 15: data loss and wrong outputs ----------------------------------------------------

@pytest.mark.parametrize("target", ["helper.py", "requirements.txt", "metadata.json",
                                    "pylock.toml", "agent.zip@agent.metadata.json",
                                    "out.zip@out.zip.json"])
def test_an_output_or_its_sidecar_onto_a_project_file_is_refused_before_anything_is_written(
    tmp_path: Path, run_cli: RunCli, target: str
) -> None:
    zip_name, _, victim = target.partition("@")
    victim = victim or zip_name
    project = remote(tmp_path / "agent", {"helper.py": "x = 1\n", victim: "precious\n"}
                     if victim != "metadata.json" and victim != "requirements.txt"
                     else {"helper.py": "x = 1\n"})
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    result = run_cli("build", project, "-o", project / zip_name)
    assert result.exit_code == 2, result.output
    assert f"{project / victim} is the " in result.stderr
    assert "would replace it" in result.stderr
    after = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    assert after == before  # nothing written, nothing replaced


def test_a_folder_symlinked_inside_the_project_ships_at_both_paths(tmp_path: Path,
                                                                   run_cli: RunCli) -> None:
    project = remote(tmp_path / "agent", {"pkg/__init__.py": "A = 1\n",
                                           "src/util.py": "B = 2\n", "other/x.py": ""})
    (project / "other" / "pkg").symlink_to("../pkg", target_is_directory=True)
    (project / "lib").symlink_to("src", target_is_directory=True)
    result = run_cli("build", project, "--list")
    assert result.exit_code == 0, result.output
    assert listed(result.stdout) == ["lib/util.py", "main.py", "other/pkg/__init__.py",
                                     "other/x.py", "pkg/__init__.py", "requirements.txt",
                                     "src/util.py"]
    assert "> lib/ -> src/  (symlink: stored as a copy of what it points to)" in result.stdout
    assert "> other/pkg/ -> pkg/  (symlink" in result.stdout
    assert run_cli("build", project).exit_code == 0
    with zipfile.ZipFile(project / "dist" / "agent.zip") as archive:
        assert archive.read("lib/util.py") == archive.read("src/util.py") == b"B = 2\n"
        assert archive.read("other/pkg/__init__.py") == archive.read("pkg/__init__.py")


def test_symlink_loops_end_and_a_link_to_itself_is_one_clear_line(tmp_path: Path,
                                                                  run_cli: RunCli) -> None:
    project = remote(tmp_path / "agent", {"src/a.py": ""})
    (project / "src" / "up").symlink_to("..", target_is_directory=True)
    (project / "here").symlink_to(".", target_is_directory=True)
    result = run_cli("build", project, "--list")
    assert result.exit_code == 0, result.output
    assert "- here/  (symlink loop: points to the project root, a folder it is inside)" \
        in result.stdout
    assert "- src/up/  (symlink loop: points to the project root" in result.stdout
    (project / "self").symlink_to("self")
    result = run_cli("build", project)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: self is a symlink loop (it leads back to itself) — remove it or point it at "
        "a real file"]


def test_a_killed_writes_temp_in_the_output_folder_never_ships_and_old_ones_are_cleaned(
    tmp_path: Path, run_cli: RunCli
) -> None:
    project = remote(tmp_path / "agent")
    out = project / "out" / "agent.zip"
    out.parent.mkdir()
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom pathlib import Path\nfrom bundler.write import atomic_output\n"
        f"with atomic_output(Path({str(out)!r})) as s:\n"
        "    s.write(b'PK' * 1000); print('ready', flush=True); time.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    temps = [p for p in out.parent.iterdir() if p.name.endswith(TEMP_SUFFIX)]
    assert len(temps) == 1
    result = run_cli("build", project, "-o", out)
    assert result.exit_code == 0, result.output
    assert names(out) == ["main.py", "requirements.txt"]
    assert temps[0].exists()  # fresh: it could be a write in progress, so it stays
    listing = run_cli("build", project, "-o", out, "--list")
    assert f"- out/{temps[0].name}  (a temp file an interrupted fbundle write left)" \
        in listing.stdout
    old = time.time() - 2 * 3600
    os.utime(temps[0], (old, old))
    (project / "main.py").write_text("print('changed')\n")
    assert run_cli("build", project, "-o", out).exit_code == 0
    assert not temps[0].exists()
    assert not [p for p in out.parent.iterdir() if p.name.endswith(TEMP_SUFFIX)]


def test_a_source_that_changes_while_the_build_reads_it_fails_and_keeps_the_old_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = remote(tmp_path / "agent", {"big.bin": b"a" * 5000})
    zip_path = tmp_path / "out.zip"
    zip_path.write_bytes(b"old zip")
    entries = scan_sources(project).entries  # what the input key is made of
    (project / "main.py").write_text("print('edited during the build')\n")
    with pytest.raises(BuildError, match="main.py changed while it was being read"):
        write_zip(entries, zip_path)
    assert zip_path.read_bytes() == b"old zip"
    # the same through the spool that large files take
    monkeypatch.setattr("bundler.write.SPOOL_OVER", 1000)
    entries = scan_sources(project).entries
    (project / "big.bin").write_bytes(b"b" * 5000)
    with pytest.raises(BuildError, match="big.bin changed while it was being read"):
        write_zip(entries, zip_path)
    assert zip_path.read_bytes() == b"old zip"


def test_the_recorded_content_digest_is_the_one_of_the_bytes_in_the_zip(tmp_path: Path,
                                                                       run_cli: RunCli) -> None:
    project = remote(tmp_path / "agent", {"app/x.py": "X = 1\n"})
    result = run_cli("build", project, "--json")
    assert result.exit_code == 0, result.output
    zip_path = project / "dist" / "agent.zip"
    recorded = json.loads(result.stdout)["content_digest"]
    assert recorded == content_digest(Bundle.from_zip(zip_path).entries)
    assert json.loads((project / "dist" / "agent.zip.json").read_text())["content_digest"] \
        == recorded


def test_a_control_character_in_a_source_name_is_refused_with_its_name(tmp_path: Path,
                                                                       run_cli: RunCli) -> None:
    project = remote(tmp_path / "agent", {"data/a\nb.txt": "x"})
    result = run_cli("build", project)
    assert result.exit_code == 2
    assert "has a control character ('\\n') in its name" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_newline_in_a_name_cannot_make_two_bundles_share_a_content_digest() -> None:
    x, y = b"x-bytes", b"y-bytes"
    sha_x, sha_y = (hashlib.sha256(d).hexdigest() for d in (x, y))
    two = [Entry("x", len(x), BytesData(x)), Entry("y", len(y), BytesData(y))]
    forged = [Entry(f"x\n{sha_y}  y", len(x), BytesData(x))]
    assert content_digest(two) != content_digest(forged)
    # Ordinary names keep the documented `<sha>  <name>\n` lines: their digests do not move.
    old = hashlib.sha256("".join(sorted([f"{sha_x}  x\n", f"{sha_y}  y\n"])).encode()).hexdigest()
    assert content_digest(two) == old
    assert digest_line("a\\b\nc", sha_x) == f"\\{sha_x}  a\\\\b\\nc\n"  # sha256sum's escaping


def test_a_write_that_fails_names_the_output_and_what_to_do(tmp_path: Path) -> None:
    # A real kernel error: the file-size limit makes the write fail with EFBIG.
    target = tmp_path / "out" / "agent.zip"
    code = (
        "import resource, signal\nfrom pathlib import Path\n"
        "from bundler.errors import FbundleError\nfrom bundler.write import atomic_output\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))\n"
        "try:\n"
        f"    with atomic_output(Path({str(target)!r})) as s:\n"
        "        s.write(b'x' * 50_000)\n"
        "except FbundleError as e:\n    print(e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.stdout.strip() == (
        f"cannot write {target}: the file is larger than the file system (or a ulimit) allows"
        " — raise the limit, or write somewhere else"), done.stderr
    assert list(target.parent.iterdir()) == []  # the temp is gone, nothing replaced
    assert resource.getrlimit(resource.RLIMIT_FSIZE)  # the limit was the child's only


def test_an_output_folder_that_cannot_be_written_names_the_path(tmp_path: Path,
                                                                run_cli: RunCli) -> None:
    project = remote(tmp_path / "agent")
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:  # root ignores modes; an immutable folder stops even root
        if subprocess.run(["chattr", "+i", str(locked)], capture_output=True,
                          check=False).returncode != 0:
            pytest.skip("running as root on a file system without chattr +i")
    else:
        locked.chmod(0o555)
    try:
        result = run_cli("build", project, "-o", locked / "agent.zip")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(locked)], check=False)
        else:
            locked.chmod(0o755)
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert line.startswith(f"error: cannot write {locked / 'agent.zip'}: ")
    assert "write somewhere else" in line and "Errno" not in line
    # and a file where a folder must be
    (tmp_path / "afile").write_text("x")
    result = run_cli("build", project, "-o", tmp_path / "afile" / "agent.zip")
    assert result.stderr.strip() == (
        f"error: cannot write {tmp_path / 'afile' / 'agent.zip'}: a file is in the way of its "
        "folder — remove or rename that file, or write somewhere else")


def test_stale_temps_of_other_names_or_fresh_ones_are_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "agent.zip"
    old = time.time() - 2 * 3600
    stale = tmp_path / f".agent.zip.abcd1234{TEMP_SUFFIX}"
    other = tmp_path / f".other.zip.abcd1234{TEMP_SUFFIX}"
    fresh = tmp_path / f".agent.zip.zzzz9999{TEMP_SUFFIX}"
    mine_not = tmp_path / ".agent.zip.abcd1234.tmp"
    for path in (stale, other, fresh, mine_not):
        path.write_text("x")
    for path in (stale, other, mine_not):
        os.utime(path, (old, old))
    with atomic_output(target) as stream:
        stream.write(b"new")
    assert not stale.exists()
    assert other.exists() and fresh.exists() and mine_not.exists()
    assert file_sha256(target) == hashlib.sha256(b"new").hexdigest()


def test_a_file_and_a_folder_that_are_one_name_once_normalised_are_refused(
    tmp_path: Path, run_cli: RunCli
) -> None:
    # found by the property test: a file "\u212b" (ANGSTROM SIGN) and a folder "\u00c5/"
    project = remote(tmp_path / "agent", {"src/\u212b": "x", "src/\u00c5/m.py": ""})
    result = run_cli("build", project)
    assert result.exit_code == 2, result.output
    assert "src/\u00c5 and src/\u00c5/ are the same name once normalised" in result.stderr


def test_a_resolution_that_cannot_be_kept_in_the_cache_does_not_fail_the_build(
    tmp_path: Path, index: SimpleIndex, monkeypatch: pytest.MonkeyPatch, run_cli: RunCli
) -> None:
    from bundler.cache import cache_root

    cache_root().mkdir(parents=True, exist_ok=True)
    (cache_root() / "resolutions").write_text("a file where the memo folder must be")
    project = make_project(tmp_path / "agent", "beta\n")
    result = run_cli("build", project)
    assert result.exit_code == 0, result.output
    assert "packages/beta-2.0.dist-info/METADATA" in names(project / "dist" / "agent.zip")
