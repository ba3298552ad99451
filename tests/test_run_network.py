"""``fbundle run --invoke`` on the real agent-server stack from the package index:
azure-ai-agentserver-invocations and -responses (Hypercorn serving /readiness on PORT),
bundled for python_3_13 and python_3_14 and booted under the real CPython of each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import RunCli
from tests.support.projects import make_project

INVOCATIONS = '''"""An Invocations agent on the real agent-server stack."""
import platform

import psutil  # the stack brings it; it reads /proc (the host's, under the 3.14 loader too)
from azure.ai.agentserver.invocations import InvocationAgentServerHost
from starlette.requests import Request
from starlette.responses import JSONResponse

app = InvocationAgentServerHost()


@app.invoke_handler
async def handle(request: Request) -> JSONResponse:
    data = await request.json()
    return JSONResponse({"echo": data.get("input"), "python": platform.python_version(),
                         "rss": psutil.Process().memory_info().rss,
                         "cpus": psutil.cpu_count()})


app.run()
'''

RESPONSES = '''"""A Responses agent on the real agent-server stack."""
import platform

from azure.ai.agentserver.responses import ResponsesAgentServerHost, TextResponse

app = ResponsesAgentServerHost()


@app.response_handler
async def handler(request, context, cancellation_signal):
    text = await context.get_input_text()
    return TextResponse(context, request, text=f"echo {text} on {platform.python_version()}")


app.run()
'''


def definition(runtime: str, protocol: str, entry: str) -> str:
    return json.dumps({"definition": {
        "kind": "hosted", "cpu": "1", "memory": "2Gi",
        "protocol_versions": [{"protocol": protocol, "version": "1.0.0"}],
        "code_configuration": {"runtime": runtime, "entry_point": ["python", entry],
                               "dependency_resolution": "bundled"}}})


@pytest.mark.network
@pytest.mark.parametrize("runtime", ["python_3_13", "python_3_14"])
def test_the_real_agent_server_packages_boot_and_answer_both_protocols(
    request: pytest.FixtureRequest, tmp_path: Path, run_cli: RunCli, runtime: str
) -> None:
    python = request.getfixturevalue("python313" if runtime == "python_3_13" else "python314")
    version = runtime[-4:].replace("_", ".")
    project = make_project(tmp_path / "agent", "azure-ai-agentserver-invocations\n"
                           "azure-ai-agentserver-responses\n", runtime=runtime,
                           files={"main_inv.py": INVOCATIONS, "main_resp.py": RESPONSES})
    (project / "metadata.json").write_text(definition(runtime, "invocations", "main_inv.py"))
    (tmp_path / "responses.json").write_text(definition(runtime, "responses", "main_resp.py"))
    # The project is built and booted; then the same zip, as it is, with the other definition.
    invoked = run_cli("run", project, "--python", python, "--port", "0", "--timeout", "120",
                      "--invoke", '{"input": "ping"}')
    assert invoked.exit_code == 0, invoked.output
    answer = json.loads(invoked.stdout)
    assert answer["echo"] == "ping" and answer["python"].startswith(version + ".")
    assert answer["rss"] > 1_000_000 and answer["cpus"] >= 1
    assert "x-agent-invocation-id" in invoked.stderr
    responded = run_cli("run", project / "dist" / "agent.zip", "--metadata",
                        tmp_path / "responses.json", "--python", python, "--port", "0",
                        "--timeout", "120", "--invoke", "hello")
    assert responded.exit_code == 0, responded.output
    body = json.loads(responded.stdout)
    assert body["object"] == "response" and body["status"] == "completed"
    [text] = [c["text"] for item in body["output"] for c in item["content"]]
    assert text.startswith(f"echo hello on {version}.")
