"""``fbundle run``: real bundles booted under the real CPython 3.13 and 3.14, asked on a real
loopback port; failing agents explained from the bundle's own bytes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from bundler.project import example_metadata
from tests.support import RunCli, SimpleIndex
from tests.support.binaries import elf, pe_dll
from tests.support.projects import make_project

SECRET = "s3cr3t-value-never-printed"

AGENT = '''"""A hermetic agent: stdlib http.server on PORT with /readiness and /invocations."""
import hashlib, json, os, site, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
import beta  # from packages/

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readiness" else 404)
        self.end_headers()

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        names = ("PORT", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "FROM_TEST", "MODEL")
        body = json.dumps({
            "route": self.path, "request": request, "beta": beta.VALUE,
            "python": "%d.%d" % sys.version_info[:2], "cwd": sorted(os.listdir(".")),
            "env": {name: os.environ.get(name) for name in names},
            "user_site": site.ENABLE_USER_SITE,
            "secret": hashlib.sha256(os.environ.get("API_KEY", "").encode()).hexdigest(),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        print("served", self.path, file=sys.stderr)

print("agent up, key", os.environ.get("API_KEY"), flush=True)
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
'''


@pytest.fixture
def index(simple_index: SimpleIndex, monkeypatch: pytest.MonkeyPatch) -> SimpleIndex:
    monkeypatch.setenv("PIP_INDEX_URL", simple_index.url)
    return simple_index


@pytest.fixture
def tmpdir_for_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where run makes its temporary folders, so a test can see they are gone."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def definition(runtime: str = "python_3_13", protocol: str = "invocations",
               entry: list[str] | None = None, env: dict[str, str] | None = None) -> str:
    data = example_metadata(runtime, "bundled", entry)
    data["definition"]["protocol_versions"] = [{"protocol": protocol, "version": "1.0.0"}]
    data["definition"]["environment_variables"] = env or {"MODEL": "gpt-test"}
    return json.dumps(data)


def agent_project(root: Path, runtime: str, main: str = AGENT, requirements: str = "beta\n",
                  **files: str) -> Path:
    project = make_project(root, requirements, runtime=runtime,
                           files={"main.py": main, **files})
    (project / "metadata.json").write_text(definition(runtime))
    return project


def hand_made_zip(path: Path, members: dict[str, bytes], runtime: str = "python_3_13") -> Path:
    """A zip build would refuse to make (the point of the test), with its definition beside."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    path.with_name(f"{path.stem}.metadata.json").write_text(definition(runtime))
    return path


@pytest.mark.parametrize("runtime", ["python_3_13", "python_3_14"])
def test_a_bundle_boots_under_the_target_cpython_with_the_containers_environment(
    request: pytest.FixtureRequest, tmp_path: Path, index: SimpleIndex, run_cli: RunCli,
    tmpdir_for_runs: Path, monkeypatch: pytest.MonkeyPatch, runtime: str,
) -> None:
    python = request.getfixturevalue("python313" if runtime == "python_3_13" else "python314")
    project = agent_project(tmp_path / "agent", runtime, **{".env": f"API_KEY={SECRET}\n"})
    monkeypatch.setenv("FROM_TEST", "leaked")
    monkeypatch.setenv("VIRTUAL_ENV", "/somewhere/venv")
    # 3.13 boots the project (built first), 3.14 the zip build left behind, as it is.
    target = project
    if runtime == "python_3_14":
        assert run_cli("build", project).exit_code == 0
        target = project / "dist" / "agent.zip"
        (project / "dist" / ".env").write_text(f"API_KEY={SECRET}\n")
    result = run_cli("run", target, "--python", python, "--port", "0", "--timeout", "20",
                     "--invoke", '{"input": "hi"}')
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["route"] == "/invocations" and answer["request"] == {"input": "hi"}
    assert answer["python"] == runtime[-4:].replace("_", ".")
    assert answer["beta"] == "beta 2.0"  # packages/ is on the path
    assert {"main.py", "packages", "requirements.txt"} <= set(answer["cwd"])
    env = answer["env"]
    assert env["PYTHONPATH"].endswith("/app/packages") and env["MODEL"] == "gpt-test"
    assert env["FROM_TEST"] is None and env["VIRTUAL_ENV"] is None and env["PYTHONHOME"] is None
    assert answer["user_site"] is False
    assert answer["secret"] == hashlib.sha256(SECRET.encode()).hexdigest()
    assert SECRET not in result.output
    assert "ready: GET http://127.0.0.1:" in result.stderr
    assert list(tmpdir_for_runs.iterdir()) == []


def test_text_is_sent_as_the_input_of_a_responses_request(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, python313: Path
) -> None:
    project = agent_project(tmp_path / "agent", "python_3_13", **{
        "deploy.key": "not a real key", ".fbundleignore": "!deploy.key\n"})
    data = json.loads((project / "metadata.json").read_text())
    data["definition"]["protocol_versions"] = [{"protocol": "responses", "version": "1.0.0"}]
    (project / "metadata.json").write_text(json.dumps(data))
    result = run_cli("run", project, "--python", python313, "--port", "0", "--invoke", "hello")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["route"] == "/responses"
    assert answer["request"] == {"input": "hello", "stream": False}
    # the build checked what it wrote: its warnings are shown as validate shows them
    assert result.stderr.startswith("FB112 deploy.key: looks like a secret (a private key "
                                    "file) and ships in the bundle")


FAILING_AGENT = '''"""Ready, but every response fails, as an agent without credentials answers."""
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readiness" else 404)
        self.end_headers()

    def do_POST(self):
        crash = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["input"]
        print("credential: none of the chained credentials worked", file=sys.stderr, flush=True)
        body = json.dumps({"object": "response", "status": "failed", "output": [], "error": {
            "code": "server_error", "message": "An internal server error occurred."}}).encode()
        self.send_response(500 if crash == "crash" else 200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
'''


def test_a_200_whose_response_failed_is_a_failure_with_the_agents_own_lines(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, python313: Path
) -> None:
    """The samples' agents answer 200 with status "failed" when they cannot reach their
    model; `fbundle invoke` calls that a failure, so `run --invoke` must too, and show why."""
    from bundler.deploy.invoke import answer_error

    project = agent_project(tmp_path / "agent", "python_3_13", main=FAILING_AGENT)
    data = json.loads((project / "metadata.json").read_text())
    data["definition"]["protocol_versions"] = [{"protocol": "responses", "version": "2.0.0"}]
    (project / "metadata.json").write_text(json.dumps(data))
    result = run_cli("run", project, "--python", python313, "--port", "0", "--invoke", "hi")
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["status"] == "failed"  # the answer is still shown
    assert "error: the agent answered 200 but its answer failed: server_error: An internal " \
        "server error occurred." in result.stderr
    assert "credential: none of the chained credentials worked" in result.stderr
    result = run_cli("run", project, "--python", python313, "--port", "0", "--invoke", "crash")
    assert result.exit_code == 1, result.output
    assert "error: the agent answered 500 — its output below says why" in result.stderr
    assert "credential: none of the chained credentials worked" in result.stderr
    assert answer_error({"error": {"code": "bad", "message": "m"}}, "invocations") == "bad: m"
    assert answer_error({"error": {"code": "bad"}, "status": "completed"}, "responses") is None


def test_a_remote_build_bundle_gets_its_requirements_installed_as_the_service_would(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, python314: Path
) -> None:
    project = agent_project(tmp_path / "agent", "python_3_14")
    data = json.loads((project / "metadata.json").read_text())
    data["definition"]["code_configuration"]["dependency_resolution"] = "remote_build"
    (project / "metadata.json").write_text(json.dumps(data))
    result = run_cli("run", project, "--python", python314, "--port", "0", "--invoke", "{}")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert "packages" not in answer["cwd"]  # the zip has sources only
    assert answer["beta"] == "beta 2.0" and answer["python"] == "3.14"
    assert answer["env"]["PYTHONPATH"].endswith("/site-packages")


def test_a_missing_module_names_what_would_provide_it(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, python313: Path
) -> None:
    project = agent_project(tmp_path / "agent", "python_3_13",
                            main="import beta\nimport yaml\n")
    result = run_cli("run", project, "--python", python313, "--port", "0")
    assert result.exit_code == 1, result.output
    assert "the agent exited with code 1 before GET /readiness answered 200" in result.stderr
    assert "no distribution in packages/ provides yaml (it usually comes from 'PyYAML'); " \
        "requirements.txt does not list it: add PyYAML and rebuild" in result.stderr
    assert "ModuleNotFoundError: No module named 'yaml'" in result.stderr
    assert "Traceback" in result.stderr  # the agent's own, quoted in the last lines


def test_a_windows_pyd_as_the_only_copy_of_a_module_is_named(
    tmp_path: Path, run_cli: RunCli, python313: Path
) -> None:
    record = "fastmod.cp313-win_amd64.pyd,,\nfastmod-1.0.dist-info/METADATA,,\n"
    zip_path = hand_made_zip(tmp_path / "agent.zip", {
        "main.py": b"import fastmod\n", "requirements.txt": b"fastmod\n",
        "packages/fastmod.cp313-win_amd64.pyd": pe_dll(),
        "packages/fastmod-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: fastmod\n"
                                                   b"Version: 1.0\n",
        "packages/fastmod-1.0.dist-info/RECORD": record.encode(),
    })
    result = run_cli("run", zip_path, "--python", python313, "--port", "0", "--no-validate")
    assert result.exit_code == 1, result.output
    assert "fastmod is installed by fastmod 1.0 in packages/" in result.stderr
    assert "the only copy of fastmod is a binary Python cannot import here:" in result.stderr
    assert "packages/fastmod.cp313-win_amd64.pyd: a Windows PE binary for x86_64" \
        in result.stderr


STDLIB_AGENT = b"""import os
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200); self.end_headers(); self.wfile.write(b'{"ok": true}')
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


def test_a_zip_is_validated_first_and_an_error_stops_it_before_anything_starts(
    tmp_path: Path, run_cli: RunCli, python313: Path, tmpdir_for_runs: Path
) -> None:
    zip_path = hand_made_zip(tmp_path / "agent.zip", {
        "main.py": STDLIB_AGENT, "requirements.txt": b"", "helper.pyd": pe_dll(),
        ".git/HEAD": b"ref: refs/heads/main\n"})
    validated = run_cli("validate", zip_path)
    assert validated.exit_code == 1
    assert "FB301 helper.pyd" in validated.stdout and "FB109 .git/" in validated.stdout
    result = run_cli("run", zip_path, "--python", python313, "--port", "0", "--invoke", "{}")
    assert result.exit_code == 1, result.output
    # the findings exactly as validate prints them, warnings included; then one line
    assert result.stderr.startswith(validated.stdout)
    assert result.stderr[len(validated.stdout):] == (
        f"error: {zip_path}: 1 validate error; not booted — fix the bundle (the lines above "
        "say how), or pass --no-validate to boot it anyway\n")
    assert result.stdout == "" and list(tmpdir_for_runs.iterdir()) == []
    # --no-validate boots it anyway (the stray .pyd is never imported)
    result = run_cli("run", zip_path, "--python", python313, "--port", "0", "--invoke", "{}",
                     "--no-validate")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ok": True}
    assert "FB301" not in result.stderr and "FB109" not in result.stderr


def test_warnings_are_shown_and_the_zip_still_boots(
    tmp_path: Path, run_cli: RunCli, python313: Path
) -> None:
    zip_path = hand_made_zip(tmp_path / "agent.zip", {
        "main.py": STDLIB_AGENT, "requirements.txt": b"", ".git/HEAD": b"ref\n"})
    result = run_cli("run", zip_path, "--python", python313, "--port", "0", "--invoke", "{}")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ok": True}
    lines = result.stderr.splitlines()
    assert lines[0].startswith("FB109 .git/: a git repository is shipped")
    assert lines[1].startswith("0 errors, 1 warning in ") and "ready: GET" in result.stderr


def test_an_extension_that_will_not_load_is_described_from_its_elf_header(
    tmp_path: Path, run_cli: RunCli, python313: Path
) -> None:
    name = "packages/native32.cpython-313-x86_64-linux-gnu.so"
    zip_path = hand_made_zip(tmp_path / "agent.zip", {
        "main.py": b"import native32\n", "requirements.txt": b"", name: elf(bits=32)})
    result = run_cli("run", zip_path, "--python", python313, "--port", "0", "--no-validate")
    assert result.exit_code == 1, result.output
    assert "an extension module would not load" in result.stderr
    assert f"{name}: ELF 32-bit" in result.stderr and "the service is x86-64" in result.stderr


def test_a_crash_on_start_shows_the_exit_code_and_the_last_lines_with_secrets_masked(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, python313: Path
) -> None:
    main = "import os\nprint('key is', os.environ['API_KEY'], flush=True)\nraise SystemExit(3)\n"
    project = agent_project(tmp_path / "agent", "python_3_13", main=main)
    env_file = tmp_path / "local.env"
    env_file.write_text(f'export API_KEY="{SECRET}"\n')
    result = run_cli("run", project, "--python", python313, "--port", "0",
                     "--env-file", env_file)
    assert result.exit_code == 1, result.output
    assert "the agent exited with code 3 before GET /readiness answered 200" in result.stderr
    assert "key is <redacted>" in result.stderr
    assert SECRET not in result.output


def test_readiness_that_never_answers_names_the_port_and_where_it_listens(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, python313: Path
) -> None:
    main = ("from http.server import HTTPServer, BaseHTTPRequestHandler\n"
            "print('listening on my own port', flush=True)\n"
            "HTTPServer(('127.0.0.1', 0), BaseHTTPRequestHandler).serve_forever()\n")
    project = agent_project(tmp_path / "agent", "python_3_13", main=main)
    result = run_cli("run", project, "--python", python313, "--port", "0", "--timeout", "1.5")
    assert result.exit_code == 1, result.output
    assert "/readiness did not answer 200 within 1.5 s" in result.stderr
    assert "it was told PORT=" in result.stderr
    assert "instead: read PORT from the environment" in result.stderr
    assert "listening on my own port" in result.stderr


def test_an_agent_that_exits_after_it_was_ready_is_a_failure(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, python313: Path
) -> None:
    main = ("import os\nfrom http.server import HTTPServer, BaseHTTPRequestHandler\n"
            "class H(BaseHTTPRequestHandler):\n"
            "    def do_GET(self):\n        self.send_response(200); self.end_headers()\n"
            "server = HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H)\n"
            "server.handle_request()\n")
    project = agent_project(tmp_path / "agent", "python_3_13", main=main)
    result = run_cli("run", project, "--python", python313, "--port", "0")
    assert result.exit_code == 1, result.output
    assert "ready: GET" in result.stderr
    assert "the agent exited by itself with code 0" in result.stderr


def test_an_unsafe_member_name_is_refused_before_anything_is_written(
    tmp_path: Path, run_cli: RunCli, python313: Path, tmpdir_for_runs: Path
) -> None:
    zip_path = hand_made_zip(tmp_path / "agent.zip", {
        "main.py": b"", "requirements.txt": b"", "../escaped.py": b"print('out')\n"})
    result = run_cli("run", zip_path, "--python", python313, "--port", "0", "--no-validate")
    assert result.exit_code == 2, result.output
    assert "member '../escaped.py' has a '..' part" in result.stderr
    assert not (tmpdir_for_runs / "escaped.py").exists()
    assert list(tmpdir_for_runs.iterdir()) == []


def test_a_host_interpreter_of_another_version_is_refused_by_name(
    tmp_path: Path, run_cli: RunCli, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zip_path = hand_made_zip(tmp_path / "agent.zip", {"main.py": b"", "requirements.txt": b""})
    host = f"{sys.version_info[0]}.{sys.version_info[1]}"
    result = run_cli("run", zip_path, "--python", sys.executable)
    assert result.exit_code == 2
    assert f"--python {sys.executable} is CPython {host}" in result.stderr
    assert "python_3_13 runs CPython 3.13" in result.stderr
    # Found on PATH under the target's name, it is still run and refused for what it is.
    (bin_dir / "python3.13").symlink_to(sys.executable)
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(tmp_path / "no-managed-pythons"))
    result = run_cli("run", zip_path)
    assert result.exit_code == 2
    assert f"python3.13 on PATH ({bin_dir / 'python3.13'}) is CPython {host}" in result.stderr
    assert "uv python install 3.13" in result.stderr and "does not install" in result.stderr


def test_python3_13_on_path_is_found(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, bin_dir: Path, python313: Path
) -> None:
    (bin_dir / "python3.13").symlink_to(python313)
    project = agent_project(tmp_path / "agent", "python_3_13")
    result = run_cli("run", project, "--port", "0", "--invoke", "{}")
    assert result.exit_code == 0, result.output
    assert ", python3.13 on PATH); PORT=" in result.stderr


def test_a_host_that_cannot_run_linux_x86_64_says_so_in_one_line(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import platform

    from bundler.interpreters import host_problem

    assert host_problem("Linux", "x86_64") is None
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    result = run_cli("run", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "this host is Darwin arm64" in result.stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_stops_the_agent_and_removes_the_temporary_folder(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, python313: Path, stop: signal.Signals
) -> None:
    """A real SIGINT (a terminal's Ctrl-C) or SIGTERM (`kill`) to a real `fbundle run`."""
    pid_file = tmp_path / "agent.pid"
    main = ("import os, sys\nfrom http.server import HTTPServer, BaseHTTPRequestHandler\n"
            "open(os.environ['PID_FILE'], 'w').write(str(os.getpid()))\n"
            "class H(BaseHTTPRequestHandler):\n"
            "    def do_GET(self):\n        self.send_response(200); self.end_headers()\n"
            "    def do_POST(self):\n"
            "        body = self.rfile.read(int(self.headers['Content-Length']))\n"
            "        self.send_response(200)\n"
            "        self.send_header('Content-Type', 'application/json'); self.end_headers()\n"
            "        self.wfile.write(b'{\"got\": ' + body + b'}')\n"
            "print('agent says hello', flush=True)\n"
            "HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n")
    project = agent_project(tmp_path / "agent", "python_3_13", main=main)
    data = json.loads((project / "metadata.json").read_text())
    data["definition"]["environment_variables"] = {"PID_FILE": str(pid_file)}
    (project / "metadata.json").write_text(json.dumps(data))
    assert run_cli("build", project).exit_code == 0
    temp = tmp_path / "tmp"
    temp.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "bundler", "run", str(project / "dist" / "agent.zip"),
         "--python", str(python313), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(temp)})
    assert process.stderr is not None and process.stdout is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "Ctrl-C stops it" in line:
            break
    assert any(line.startswith("ready: ") for line in seen), seen
    assert process.stdout.readline() == "agent says hello\n"  # streamed as it is written
    port = re.search(r"PORT=(\d+)", "".join(seen))
    assert port is not None
    # `fbundle invoke --local` reaches the agent `run` keeps up.
    local = run_cli("invoke", "--local", f"http://127.0.0.1:{port[1]}", "--protocol",
                    "invocations", "--input", "hi")
    assert local.exit_code == 0, local.output
    assert json.loads(local.stdout) == {"got": {"input": "hi"}}
    agent_pid = int(pid_file.read_text())
    assert len(list(temp.iterdir())) == 1  # the unpacked bundle, while it runs
    process.send_signal(stop)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopped the agent" in err
    assert list(temp.iterdir()) == []
    with pytest.raises(ProcessLookupError):
        os.kill(agent_pid, 0)


def test_what_cannot_be_booted_here_is_refused_in_one_line(
    tmp_path: Path, run_cli: RunCli, python313: Path
) -> None:
    zip_path = hand_made_zip(tmp_path / "agent.zip", {"main.py": b"", "requirements.txt": b""})
    result = run_cli("run", zip_path, "--python", python313, "--env-file", tmp_path / "none")
    assert result.exit_code == 2
    assert "--env-file" in result.stderr and "not found" in result.stderr
    data = json.loads(definition())
    data["definition"]["code_configuration"].update(runtime="dotnet_10",
                                                    entry_point=["dotnet", "Agent.dll"])
    zip_path.with_name("agent.metadata.json").write_text(json.dumps(data))
    result = run_cli("run", zip_path, "--python", python313)
    assert result.exit_code == 2
    assert "is a dotnet_10 bundle; fbundle run boots python_3_13 / python_3_14" in result.stderr


SERVICE_AGENT = '''import hashlib, json, os
from http.server import BaseHTTPRequestHandler, HTTPServer
NAMES = ("FOUNDRY_PROJECT_ENDPOINT", "FOUNDRY_PROJECT_ARM_ID", "FOUNDRY_AGENT_NAME",
         "FOUNDRY_AGENT_VERSION", "APPLICATIONINSIGHTS_CONNECTION_STRING")
endpoint = os.environ["FOUNDRY_PROJECT_ENDPOINT"]  # as the agent-framework samples read it
print("endpoint is", endpoint, flush=True)

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        seen = {n: os.environ.get(n) for n in NAMES}
        body = json.dumps({n: v if n.startswith("FOUNDRY_AGENT") or v is None
                           else hashlib.sha256(v.encode()).hexdigest()
                           for n, v in seen.items()}).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)

HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
'''
ENDPOINT = "https://unit.services.ai.azure.com/api/projects/proj-secret"
ARM_ID = "/subscriptions/0000/resourceGroups/rg/providers/x/accounts/a/projects/proj-secret"
APPINSIGHTS = "InstrumentationKey=ikey-secret-value;IngestionEndpoint=https://in.example"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_variables_the_service_injects_are_set_as_azds_local_run_sets_them(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, python313: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FOUNDRY_AGENT_NAME (the agent's name) and _VERSION (``local``) are set; the endpoint from
    the host environment, the project ARM id from the azd environment (AZURE_AI_PROJECT_ID, as
    azd maps it) and the App Insights string from --env-file are passed through, never shown."""
    for name in ("AZURE_ENV_NAME", "FOUNDRY_PROJECT_ARM_ID", "FOUNDRY_AGENT_NAME",
                 "FOUNDRY_AGENT_VERSION", "APPLICATIONINSIGHTS_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FOUNDRY_PROJECT_ENDPOINT", ENDPOINT)
    project = agent_project(tmp_path / "agent", "python_3_13", main=SERVICE_AGENT,
                            requirements="")
    azure = project / ".azure"
    (azure / "dev").mkdir(parents=True)
    (azure / "config.json").write_text('{"version": 1, "defaultEnvironment": "dev"}')
    (azure / "dev" / ".env").write_text(f'AZURE_AI_PROJECT_ID="{ARM_ID}"\n')
    env_file = tmp_path / "local.env"
    env_file.write_text(f'APPLICATIONINSIGHTS_CONNECTION_STRING="{APPINSIGHTS}"\n')
    result = run_cli("-v", "run", project, "--python", python313, "--port", "0", "--timeout",
                     "20", "--env-file", env_file, "--invoke", '{"input": "hi"}')
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "FOUNDRY_PROJECT_ENDPOINT": sha(ENDPOINT), "FOUNDRY_PROJECT_ARM_ID": sha(ARM_ID),
        "FOUNDRY_AGENT_NAME": "agent", "FOUNDRY_AGENT_VERSION": "local",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": sha(APPINSIGHTS)}
    assert "endpoint is <redacted>" in result.stderr  # the agent's own line, masked
    for secret in ("proj-secret", "ikey-secret-value"):
        assert secret not in result.output


def test_a_keyerror_on_a_service_variable_says_the_service_sets_it(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, python313: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FOUNDRY_PROJECT_ENDPOINT", raising=False)
    monkeypatch.delenv("AZURE_ENV_NAME", raising=False)
    project = agent_project(tmp_path / "agent", "python_3_13", main=SERVICE_AGENT,
                            requirements="")
    result = run_cli("run", project, "--python", python313, "--port", "0", "--timeout", "20")
    assert result.exit_code == 1, result.output
    assert "KeyError: 'FOUNDRY_PROJECT_ENDPOINT'" in result.stderr  # the agent's traceback
    assert ("FOUNDRY_PROJECT_ENDPOINT is set by the service in the agent's container, not "
            "here: put FOUNDRY_PROJECT_ENDPOINT=... in a dotenv file and pass --env-file"
            in result.stderr)
    assert "fbundle run --env-file FILE" in result.stderr
