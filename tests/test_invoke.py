"""``fbundle invoke``, ``sessions``, ``agents list``, ``versions list`` against the fake service.

Each runs the real CLI and httpx stack, under the article's preview api-version and under v1.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from bundler.deploy.http import Reply, Scrub, ServiceError
from bundler.deploy.invoke import Answer, build_request, send
from bundler.errors import UsageError
from bundler.project import example_metadata
from bundler.settings import RetryPolicy
from tests import deploykit
from tests.deploykit import AGENT, RunCli, make_bundle
from tests.fakeservice import PREVIEW, V1, FakeService

fake = deploykit.fake
API_VERSIONS = pytest.mark.parametrize("api_version", [PREVIEW, V1])


def deployed(fake: FakeService, run_cli: RunCli, tmp_path: Path, api_version: str = PREVIEW,
             protocol: str = "responses") -> Path:
    meta = example_metadata(mode="remote_build")
    meta["definition"]["protocol_versions"] = [
        {"protocol": protocol, "version": "1.0.0"}]
    zip_path = make_bundle(tmp_path / "bundle", metadata=meta)
    result = run_cli("deploy", zip_path, "--agent", AGENT, "--api-version", api_version)
    assert result.exit_code == 0, result.output
    return zip_path


def invokes(fake: FakeService) -> list[Any]:
    return [c for c in fake.calls("POST") if "/endpoint/protocols/" in c.path]


@API_VERSIONS
def test_invoke_responses_prints_the_answer_and_the_session_headers(
        fake: FakeService, run_cli: RunCli, tmp_path: Path, api_version: str) -> None:
    deployed(fake, run_cli, tmp_path, api_version)
    result = run_cli("invoke", "--agent", AGENT, "--input", "Hello, agent!",
                     "--api-version", api_version)
    assert result.exit_code == 0, result.output
    assert result.stdout == "v1 says: Hello, agent!\n"
    session = next(iter(fake.agents[AGENT].sessions))
    lines = result.stderr.splitlines()
    assert f"x-agent-session-id: {session}" in lines
    assert "x-ms-region: swedencentral" in lines
    assert any(line.startswith("x-agent-invocation-id: ") for line in lines)
    call = invokes(fake)[-1]
    assert call.path == f"/agents/{AGENT}/endpoint/protocols/openai/responses"
    assert call.query == {"api-version": "v1"}  # the endpoint is v1 even under the preview
    assert json.loads(call.body) == {"input": "Hello, agent!", "stream": False}
    assert call.headers["content-type"] == "application/json"
    assert call.headers["foundry-features"] == "CodeAgents=V1Preview,HostedAgents=V1Preview"


def test_consecutive_invokes_reuse_the_session_until_new_session(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    deployed(fake, run_cli, tmp_path)
    assert run_cli("invoke", "--agent", AGENT, "--input", "one").exit_code == 0
    first = next(iter(fake.agents[AGENT].sessions))
    again = run_cli("invoke", "--agent", AGENT, "--input", "two")
    assert again.exit_code == 0, again.output
    assert f"{AGENT}: reusing session {first} (--new-session for a fresh one)" in again.stderr
    sent = json.loads(invokes(fake)[-1].body)
    assert (sent["agent_session_id"], sent["session_id"]) == (first, first)  # spec, azd
    assert len(fake.agents[AGENT].sessions) == 1  # the fake routes by agent_session_id only
    fresh = run_cli("invoke", "--agent", AGENT, "--input", "three", "--new-session")
    assert fresh.exit_code == 0, fresh.output
    assert not {"agent_session_id", "session_id"} & set(json.loads(invokes(fake)[-1].body))
    assert len(fake.agents[AGENT].sessions) == 2
    own = run_cli("invoke", "--agent", AGENT, "--body", '{"input": "x", "session_id": "mine"}',
                  "--session", first)
    assert own.exit_code == 0, own.output
    assert json.loads(invokes(fake)[-1].body) == {"input": "x", "session_id": "mine",
                                                   "stream": False}  # a body keeps its own


def test_an_active_session_keeps_serving_the_old_version_after_a_deploy(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    deployed(fake, run_cli, tmp_path)
    assert run_cli("invoke", "--agent", AGENT, "--input", "hi").stdout == "v1 says: hi\n"
    second = make_bundle(tmp_path / "b", "x = 2\n")
    assert run_cli("deploy", second, "--agent", AGENT).exit_code == 0
    assert run_cli("invoke", "--agent", AGENT, "--input", "hi").stdout == "v1 says: hi\n"
    fresh = run_cli("invoke", "--agent", AGENT, "--input", "hi", "--new-session")
    assert fresh.stdout == "v2 says: hi\n"


@API_VERSIONS
def test_invoke_streams_responses_deltas(
        fake: FakeService, run_cli: RunCli, tmp_path: Path, api_version: str) -> None:
    deployed(fake, run_cli, tmp_path, api_version)
    result = run_cli("invoke", "--agent", AGENT, "--input", "stream this please", "--stream",
                     "--api-version", api_version)
    assert result.exit_code == 0, result.output
    assert result.stdout == "v1 says: stream this please\n"
    call = invokes(fake)[-1]
    assert call.headers["accept"] == "text/event-stream"
    assert json.loads(call.body)["stream"] is True


@API_VERSIONS
def test_invoke_invocations_from_the_definition_sends_the_session_in_the_query(
        fake: FakeService, run_cli: RunCli, tmp_path: Path, api_version: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    zip_path = deployed(fake, run_cli, tmp_path, api_version, protocol="invocations")
    monkeypatch.chdir(zip_path.parent)  # metadata.json here declares invocations
    result = run_cli("invoke", "--agent", AGENT, "--body", '{"input": "hi", "n": 1}',
                     "--api-version", api_version)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"output": "v1 says: hi", "version": "1"}
    call = invokes(fake)[-1]
    assert call.path == f"/agents/{AGENT}/endpoint/protocols/invocations"
    assert json.loads(call.body) == {"input": "hi", "n": 1}
    assert "agent_session_id" not in call.query
    again = run_cli("invoke", "--agent", AGENT, "--input", "more", "--api-version", api_version)
    assert again.exit_code == 0, again.output
    session = next(iter(fake.agents[AGENT].sessions))
    assert invokes(fake)[-1].query == {"api-version": "v1", "agent_session_id": session}
    assert json.loads(invokes(fake)[-1].body) == {"input": "more"}


def test_the_protocol_comes_from_the_zips_metadata_and_unknown_protocols_are_refused(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    zip_path = deployed(fake, run_cli, tmp_path, protocol="invocations")
    result = run_cli("invoke", "--agent", AGENT, "--input", "x", "--metadata", zip_path)
    assert result.exit_code == 0, result.output
    assert invokes(fake)[-1].path.endswith("/protocols/invocations")
    ws = tmp_path / "ws.json"
    meta = example_metadata(mode="remote_build")
    meta["definition"]["protocol_versions"] = [
        {"protocol": "invocations_ws", "version": "1.0.0"}]
    ws.write_text(json.dumps(meta))
    refused = run_cli("invoke", "--agent", AGENT, "--input", "x", "--metadata", ws)
    assert refused.exit_code == 2
    assert "the agent declares invocations_ws, none of which fbundle can invoke" in \
        refused.stderr


def test_a_version_still_being_provisioned_is_waited_for_then_retried(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    deployed(fake, run_cli, tmp_path)
    fake.config.provisioning_invokes = 1
    result = run_cli("invoke", "--agent", AGENT, "--input", "hi")
    assert result.exit_code == 0, result.output
    assert result.stdout == "v1 says: hi\n"
    assert f"{AGENT}: version 1 is still being provisioned; waiting" in result.stderr
    assert [c.status for c in invokes(fake)] == [400, 200]


def test_a_424_prints_the_session_the_details_and_a_hint_per_code(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    deployed(fake, run_cli, tmp_path)
    fake.config.invoke_failure = (424, "session_not_ready", "ReadinessTimeout")
    result = run_cli("invoke", "--agent", AGENT, "--input", "hi")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    session = next(iter(fake.agents[AGENT].sessions))
    assert f"x-agent-session-id: {session}" in lines  # "returned even on 424"
    assert "x-adc-response-details: ReadinessTimeout" in lines
    assert lines[-1].startswith(f"error: POST {fake.endpoint}/agents/{AGENT}/endpoint/protocols"
                                "/openai/responses: HTTP 424 Failed Dependency: "
                                "session_not_ready: The session is not ready "
                                "[x-adc-response-details ReadinessTimeout] (x-request-id ")
    assert lines[-1].endswith("— the container did not answer /readiness in time; read "
                              "`fbundle logs --kind system` and the console logs, fix startup, "
                              "redeploy (or retry: a slow start can pass)")
    assert result.stdout == ""


def test_invoke_refuses_bad_input_before_any_request(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    for args, message in (
            (["--input", "a", "--body", "{}"], "pass exactly one of --input TEXT and --body JSON"),
            ([], "pass exactly one of --input TEXT and --body JSON"),
            (["--body", "{nope"], "--body is not JSON"),
            (["--body", "[1]"], "--body for the responses protocol must be a JSON object"),
            (["--input", "a", "--session", "../x"], "--session '../x' is not a session id"),
            (["--input", "a", "--session", "a", "--new-session"], "contradict each other")):
        result = run_cli("invoke", "--agent", AGENT, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr
        assert len(result.stderr.splitlines()) == 1
    assert fake.requests == []


def test_invoke_body_from_a_file(fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    deployed(fake, run_cli, tmp_path)
    body = tmp_path / "req.json"
    body.write_text('{"input": "from a file"}')
    result = run_cli("invoke", "--agent", AGENT, "--body", f"@{body}")
    assert result.stdout == "v1 says: from a file\n"
    missing = run_cli("invoke", "--agent", AGENT, "--body", f"@{tmp_path / 'nope.json'}")
    assert missing.exit_code == 2 and "cannot read it" in missing.stderr


# -- a local agent (fbundle run) ---------------------------------------------------------------

class _LocalAgent(BaseHTTPRequestHandler):
    """A plain agent as `fbundle run` boots it: /responses and /invocations, no auth."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.seen.append((self.path, self.command, dict(self.headers), data))
        if self.path == "/responses":
            text = f"local: {json.loads(data)['input']}"
            body = json.dumps({"output": [{"type": "message", "content": [
                {"type": "output_text", "text": text}]}], "status": "completed"}).encode()
        else:
            body = json.dumps({"echo": json.loads(data)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-agent-session-id", "local-session")
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def local_agent() -> Iterator[str]:
    _LocalAgent.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LocalAgent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_invoke_local_sends_the_same_request_to_a_local_agent_without_auth(
        run_cli: RunCli, local_agent: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FBUNDLE_TOKEN", "must-not-be-sent")
    result = run_cli("invoke", "--local", local_agent, "--input", "hi")
    assert result.exit_code == 0, result.output
    assert result.stdout == "local: hi\n"
    assert "x-agent-session-id: local-session" in result.stderr
    path, method, headers, body = _LocalAgent.seen[-1]
    assert (path, method) == ("/responses", "POST")
    assert "authorization" not in {k.lower() for k in headers}
    assert "foundry-features" not in {k.lower() for k in headers}
    assert json.loads(body) == {"input": "hi", "stream": False}
    inv = run_cli("invoke", "--local", local_agent, "--protocol", "invocations",
                  "--body", '{"a": 1}', "--session", "s-1")
    assert inv.exit_code == 0, inv.output
    assert _LocalAgent.seen[-1][0] == "/invocations?agent_session_id=s-1"


def test_the_request_builder_is_one_library_function_for_both_targets() -> None:
    request = build_request("invocations", input_text="hi", session="s-1")
    assert request.route(None) == "/invocations"
    assert request.route("my-agent") == "/agents/my-agent/endpoint/protocols/invocations"
    assert request.query == {"agent_session_id": "s-1"}
    assert request.body == b'{"input": "hi"}'
    responses = build_request("responses", input_text="hi", stream=True)
    assert responses.route(None) == "/responses"
    assert responses.accept == "text/event-stream"
    with pytest.raises(UsageError, match="cannot be invoked over HTTP"):
        build_request("a2a", input_text="hi")
    assert callable(send)


def test_invoke_local_says_when_nothing_listens(run_cli: RunCli,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("FBUNDLE_RETRIES", "0")
    result = run_cli("invoke", "--local", f"http://127.0.0.1:{port}", "--input", "hi")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(f"is the agent running at http://127.0.0.1:{port}? "
                                          "start it with `fbundle run`")


# -- sessions, agents, versions ----------------------------------------------------------------

@API_VERSIONS
def test_sessions_list_stop_delete(fake: FakeService, run_cli: RunCli, tmp_path: Path,
                                   api_version: str) -> None:
    deployed(fake, run_cli, tmp_path, api_version)
    ids = [fake.add_session(AGENT, "1", f"s-{i}") for i in range(3)]
    listed = run_cli("sessions", "list", "--agent", AGENT, "--api-version", api_version)
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["SESSION", "STATUS", "VERSION", "LAST", "USED"]
    assert [line.split()[0] for line in lines[1:]] == ids[::-1]  # newest first
    assert all(line.split()[1:3] == ["active", "1"] for line in lines[1:])
    stop = run_cli("sessions", "stop", "--agent", AGENT, "s-1", "--api-version", api_version)
    assert (stop.exit_code, stop.stdout) == (0, f"{AGENT}: stopped session s-1\n")
    assert fake.agents[AGENT].sessions["s-1"].status == "idle"
    post = fake.calls("POST")[-1]
    assert post.path == f"/agents/{AGENT}/endpoint/sessions/s-1:stop"
    assert post.query == {"api-version": "v1"}
    gone = run_cli("sessions", "delete", "--agent", AGENT, "s-2", "--yes",
                   "--api-version", api_version)
    assert gone.exit_code == 0, gone.output
    assert sorted(fake.agents[AGENT].sessions) == ["s-0", "s-1"]
    as_json = run_cli("sessions", "list", "--agent", AGENT, "--json", "--order", "asc")
    assert [s["agent_session_id"] for s in json.loads(as_json.stdout)] == ["s-0", "s-1"]


def test_lists_follow_has_more_and_honour_limit_order_after(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    deployed(fake, run_cli, tmp_path)
    for n in range(2, 26):
        zip_path = make_bundle(tmp_path / f"v{n}", f"x = {n}\n")
        assert run_cli("deploy", zip_path, "--agent", AGENT, "--no-wait").exit_code == 0
    every = run_cli("versions", "list", "--agent", AGENT, "--json")
    assert [v["version"] for v in json.loads(every.stdout)] == [str(n) for n in range(25, 0, -1)]
    pages = [c for c in fake.calls("GET") if c.path == f"/agents/{AGENT}/versions"]
    assert [c.query.get("after") for c in pages] == [None, "6"]  # 20 a page, then after
    few = run_cli("versions", "list", "--agent", AGENT, "--limit", "3", "--order", "asc",
                  "--after", "10")
    assert [line.split()[0] for line in few.stdout.splitlines()[1:]] == ["11", "12", "13"]
    assert fake.calls("GET")[-1].query == {"api-version": PREVIEW, "limit": "3",
                                           "order": "asc", "after": "10"}
    table = run_cli("versions", "list", "--agent", AGENT, "--limit", "1")
    header, row = table.stdout.splitlines()
    assert header.split() == ["VERSION", "STATUS", "CREATED", "SHA256"]
    assert row.split()[0:2] == ["25", "creating"]


def test_agents_list(fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("agents", "list").stdout == "no agents\n"
    deployed(fake, run_cli, tmp_path)
    result = run_cli("agents", "list")
    assert result.exit_code == 0, result.output
    assert [line.split() for line in result.stdout.splitlines()] == [
        ["AGENT", "LATEST", "STATUS"], [AGENT, "1", "active"]]
    missing = run_cli("versions", "list", "--agent", "nobody")
    assert missing.exit_code == 1 and "agent nobody not found" in missing.stderr


def test_a_long_running_invocation_is_polled_until_it_completes(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    deployed(fake, run_cli, tmp_path, protocol="invocations")
    fake.config.invoke_202 = True
    fake.config.polls_until_done = 2
    result = run_cli("invoke", "--agent", AGENT, "--protocol", "invocations", "--input", "hi")
    assert result.exit_code == 0, result.output
    invocation = next(line.split(": ")[1] for line in result.stderr.splitlines()
                      if line.startswith("x-agent-invocation-id: "))
    assert json.loads(result.stdout) == {"id": invocation, "status": "completed",
                                         "output": "done later"}
    polls = [c for c in fake.calls("GET") if "/protocols/invocations/" in c.path]
    assert len(polls) == 3  # in_progress, in_progress, completed
    assert {c.path for c in polls} == {
        f"/agents/{AGENT}/endpoint/protocols/invocations/{invocation}"}
    assert polls[-1].query == {"api-version": "v1"}


def test_a_long_running_invocation_gives_up_at_the_timeout(
        fake: FakeService, run_cli: RunCli, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    deployed(fake, run_cli, tmp_path, protocol="invocations")
    fake.config.invoke_202 = True
    fake.config.polls_until_done = 10**9
    monkeypatch.setenv("FBUNDLE_BACKOFF", "0.02")
    monkeypatch.setenv("FBUNDLE_BACKOFF_MAX", "0.02")  # a poll every 20 ms at most
    result = run_cli("invoke", "--agent", AGENT, "--protocol", "invocations", "--input", "hi",
                     "--timeout", "0.2")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].endswith(
        "is still in_progress after 0.2s — raise --timeout (or FBUNDLE_INVOKE_TIMEOUT; 0 waits "
        "as long as it takes)")
    assert [c for c in fake.calls("GET") if "/protocols/invocations/" in c.path]


def test_a_202_is_polled_with_backoff_until_the_deadline_not_in_a_busy_loop() -> None:
    """The pacing, on an injected clock: each pause advances it, so no real time passes."""
    now = [0.0]
    pauses: list[float] = []

    def reply(status: int, body: dict[str, str] | None = None) -> Reply:
        request = httpx.Request("GET", "http://127.0.0.1/agents/a/endpoint/protocols/invocations")
        response = httpx.Response(status, json=body, request=request,
                                  headers={"x-agent-invocation-id": "inv-1"})
        return Reply(response, Scrub(lambda: None))

    def poll(invocation: str) -> Reply:
        assert invocation == "inv-1" and len(pauses) < 20, "polled without pausing"
        return reply(200, {"id": invocation, "status": "in_progress"})

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    answer = Answer(reply(202), "invocations", poll, timeout=1.0,
                    policy=RetryPolicy(backoff=0.1, backoff_max=0.4), sleep=sleep,
                    clock=lambda: now[0])
    with pytest.raises(ServiceError, match="invocation inv-1 is still in_progress after 1s"):
        list(answer.text())
    assert pauses == [0.1, 0.2, 0.4]  # doubling, capped; the next would pass the deadline


def test_the_answer_timeout_is_its_own_not_the_read_timeout_of_other_requests(
        fake: FakeService, run_cli: RunCli, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    deployed(fake, run_cli, tmp_path)
    fake.config.invoke_delay = 1.0  # an agent that thinks longer than the read timeout
    monkeypatch.setenv("FBUNDLE_READ_TIMEOUT", "0.3")
    slow = run_cli("invoke", "--agent", AGENT, "--input", "think")
    assert slow.exit_code == 0, slow.output
    assert slow.stdout == "v1 says: think\n"
    for args, env in ((["--timeout", "0.3"], None), ([], "0.3")):
        if env:
            monkeypatch.setenv("FBUNDLE_INVOKE_TIMEOUT", env)
        short = run_cli("invoke", "--agent", AGENT, "--input", "think", *args)
        assert short.exit_code == 1, (args, short.output)
        assert short.stderr.splitlines()[-1] == (
            f"error: POST {fake.endpoint}/agents/{AGENT}/endpoint/protocols/openai/responses: "
            "timed out after 0.3s waiting for the response — raise --timeout (or "
            "FBUNDLE_INVOKE_TIMEOUT; 0 waits as long as it takes)")
    unlimited = run_cli("invoke", "--agent", AGENT, "--input", "think", "--timeout", "0")
    assert unlimited.exit_code == 0, unlimited.output  # the flag beats the environment
    monkeypatch.setenv("FBUNDLE_INVOKE_TIMEOUT", "soon")
    bad = run_cli("invoke", "--agent", AGENT, "--input", "x")
    assert bad.exit_code == 2
    assert bad.stderr.strip() == ("error: FBUNDLE_INVOKE_TIMEOUT='soon' is not a number of "
                                  "seconds — unset FBUNDLE_INVOKE_TIMEOUT or fix it")


def test_a_stream_that_goes_quiet_past_the_timeout_is_one_error_line(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    deployed(fake, run_cli, tmp_path)
    fake.config.stream_stall = 5.0  # ends early when the fake stops
    result = run_cli("invoke", "--agent", AGENT, "--input", "stall this answer", "--stream",
                     "--timeout", "1")
    assert result.exit_code == 1
    assert result.stdout == "v1 "  # what arrived before the agent went quiet
    assert result.stderr.splitlines()[-1] == (
        f"error: POST {fake.endpoint}/agents/{AGENT}/endpoint/protocols/openai/responses: "
        "the agent sent nothing more for 1s — raise --timeout (or FBUNDLE_INVOKE_TIMEOUT; 0 "
        "waits as long as it takes)")


def test_a_streamed_invocations_answer_prints_each_data_line(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    deployed(fake, run_cli, tmp_path, protocol="invocations")
    result = run_cli("invoke", "--agent", AGENT, "--protocol", "invocations", "--input",
                     "two words", "--stream")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["delta"] for line in result.stdout.splitlines()] == [
        "v1", "says:", "two", "words"]


@pytest.mark.parametrize("stream", [False, True])
def test_an_agent_error_in_the_answer_is_exit_1_with_its_code(
        fake: FakeService, run_cli: RunCli, tmp_path: Path, stream: bool) -> None:
    deployed(fake, run_cli, tmp_path)
    fake.config.agent_error = True
    result = run_cli("invoke", "--agent", AGENT, "--input", "hi",
                     *(["--stream"] if stream else []))
    assert result.exit_code == 1
    assert "server_error: the agent raised — read `fbundle logs` for the agent's side" in \
        result.stderr.splitlines()[-1]


def test_the_request_id_is_read_from_additional_info_when_no_header_carries_it(
        fake: FakeService, run_cli: RunCli) -> None:
    fake.config.no_request_id_header = True
    result = run_cli("status", "--agent", "nobody", "--version", "1", "--api-version", V1)
    assert result.exit_code == 1
    assert "(x-request-id " in result.stderr
    assert fake.calls()[-1].status == 404


@API_VERSIONS
def test_the_whole_lifecycle_under_either_api_version(
        fake: FakeService, run_cli: RunCli, tmp_path: Path, api_version: str) -> None:
    """build → deploy → invoke → logs → download → lists → delete, one api-version throughout."""
    project = tmp_path / "lifecycle-agent"
    project.mkdir()
    (project / "main.py").write_text("print('hi')\n")
    (project / "requirements.txt").write_text("agent-framework\n")
    meta = example_metadata(mode="remote_build")
    (project / "metadata.json").write_text(json.dumps(meta))
    name = "lifecycle-agent"

    def cli(*args: str | Path) -> Any:
        result = run_cli(*args, "--api-version", api_version)
        assert result.exit_code == 0, (args, result.output)
        return result

    assert cli("deploy", project).stdout.splitlines()[-1] == f"{name}: version 1 is active"
    assert cli("status", "--agent", name).stdout == f"{name}: version 1: active\n"
    assert cli("invoke", "--agent", name, "--input", "ping").stdout == "v1 says: ping\n"
    fake.config.log_events = [{"message": "served ping"}]
    logs = cli("logs", "--agent", name)
    assert logs.stdout.endswith("stdout: served ping\n")
    out = tmp_path / "back.zip"
    assert "verified against" in cli("download", "--agent", name, "-o", out).stdout
    assert cli("versions", "list", "--agent", name).stdout.splitlines()[1].split()[:2] == [
        "1", "active"]
    session = next(iter(fake.agents[name].sessions))
    assert session in cli("sessions", "list", "--agent", name).stdout
    assert cli("sessions", "delete", "--agent", name, session, "--yes").exit_code == 0
    assert cli("delete", "--agent", name, "--yes").stdout == \
        f"deleted agent {name} and all versions\n"
    assert {r.query["api-version"] for r in fake.requests
            if "/endpoint/" not in r.path} == {api_version}


def test_the_protocol_comes_from_a_projects_agent_yaml_as_build_reads_it(
        fake: FakeService, run_cli: RunCli, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    deployed(fake, run_cli, tmp_path, protocol="invocations")
    project = tmp_path / "project"
    project.mkdir()
    (project / "main.py").write_text("print('hi')\n")
    (project / "agent.yaml").write_text("kind: hosted\nname: hello-agent\nprotocols:\n"
                                        "  - {protocol: invocations, version: 1.0.0}\n")
    result = run_cli("invoke", "--agent", AGENT, "--input", "x", "--metadata", project)
    assert result.exit_code == 0, result.output
    assert invokes(fake)[-1].path.endswith("/protocols/invocations")
    monkeypatch.chdir(project)  # the project here, without --metadata
    here = run_cli("invoke", "--agent", AGENT, "--input", "x")
    assert here.exit_code == 0, here.output
    assert invokes(fake)[-1].path.endswith("/protocols/invocations")
    monkeypatch.chdir(tmp_path / "bundle")
    (tmp_path / "bundle" / "metadata.json").unlink()
    plain = run_cli("invoke", "--agent", AGENT, "--input", "x")  # nothing to read: responses
    assert plain.exit_code == 0, plain.output
    assert invokes(fake)[-1].path.endswith("/openai/responses")
