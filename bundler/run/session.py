"""One boot of a bundle: unpack into a temporary folder, start the entry point as the container
does, wait for ``GET /readiness`` -> 200, optionally send one request, stop, clean up.

The agent runs in its own process group, so stopping it (SIGTERM, as a container stop does;
SIGKILL after a grace period) reaches every process it started. The temporary folder is removed
on every way out, Ctrl-C included. Output is read line by line by two threads: forwarded to the
caller (secrets masked) and kept, the last lines, for the diagnosis of a failure.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from bundler.errors import FbundleError, UsageError
from bundler.interpreters import Interpreter
from bundler.redact import REDACTED, redact_urls
from bundler.requirements import requirement_lines
from bundler.run import diagnose
from bundler.run.bundle import Runnable, agent_environment, unpack
from bundler.run.request import LocalRequest

log = logging.getLogger(__name__)

TAIL = 12  # lines of output a diagnosis shows
KEEP = 400
STOP_GRACE = 5.0
_PYTHON = re.compile(r"^python(?:3(?:\.\d+)?)?$")
OnLine = Callable[[str, str], None]  # (stream "stdout"/"stderr", line)


class AgentFailed(FbundleError):
    """The agent did not boot or did not answer: a headline, a hint and the evidence."""

    def __init__(self, message: str, hint: str | None, details: list[str]) -> None:
        super().__init__(message, hint)
        self.details = details

    def __str__(self) -> str:
        return "\n".join([super().__str__(), *(f"  {line}" for line in self.details)])


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Session:
    """``with Session(...) as session: session.wait_ready(); session.invoke(...)``."""

    def __init__(self, runnable: Runnable, interpreter: Interpreter, *, port: int,
                 secrets: dict[str, str], on_line: OnLine | None = None,
                 service: dict[str, str] | None = None,
                 passed: dict[str, str] | None = None) -> None:
        """``service``: the service's variables set here (agent name, version); ``passed``:
        those passed through from this machine, masked in the output like ``secrets``."""
        self.runnable = runnable
        self.interpreter = interpreter
        self.port = port or free_port()
        self.secrets = secrets
        self.service = {**(service or {}), **(passed or {})}
        self.on_line = on_line
        self.lines: dict[str, deque[str]] = {"stdout": deque(maxlen=KEEP),
                                             "stderr": deque(maxlen=KEEP)}
        self.folder: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._readers: list[threading.Thread] = []
        self._masks = sorted({v for v in [*secrets.values(), *(passed or {}).values()]
                              if len(v) >= 3}, key=len, reverse=True)

    # ---- set-up -------------------------------------------------------------------------------

    def __enter__(self) -> Session:
        if port_in_use(self.port):
            raise UsageError(f"port {self.port} is already in use on this machine",
                             "stop what listens there, or pass --port N (0 picks a free one)")
        self.folder = Path(tempfile.mkdtemp(prefix="fbundle-run-"))
        try:
            self._start()
        except BaseException:
            self._cleanup()
            raise
        return self

    @property
    def root(self) -> Path:
        assert self.folder is not None
        return self.folder / "app"

    def argv(self) -> list[str]:
        """The entry point with its ``python`` (``python3``, ``/usr/local/bin/python``...: the
        image's own interpreter) made the target's interpreter."""
        entry = list(self.runnable.context.entry_point)
        if _PYTHON.match(Path(entry[0]).name):
            entry[0] = str(self.interpreter.path)
        return entry

    def _start(self) -> None:
        assert self.folder is not None
        root, home, shims = self.root, self.folder / "home", self.folder / "bin"
        for folder in (root, home, shims):
            folder.mkdir()
        unpack(self.runnable.bundle, root)
        site = self._remote_build(root)
        version = self.interpreter.probe.version
        for name in ("python", "python3", f"python{version[0]}.{version[1]}"):
            (shims / name).symlink_to(self.interpreter.path)  # `python` in a subprocess, too
        env = agent_environment(root, home, shims, self.port, self.runnable.context.mode,
                                self.runnable.environment_variables, self.secrets, site,
                                self.service)
        argv = self.argv()
        log.info("starting %s in %s (PORT=%d)", argv, root, self.port)
        try:
            self.process = subprocess.Popen(
                argv, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True)
        except OSError as error:
            raise AgentFailed(f"the entry point {argv[0]} could not be started "
                              f"({error.strerror or error})",
                              "check code_configuration.entry_point", []) from None
        assert self.process.stdout is not None and self.process.stderr is not None
        for name, stream in (("stdout", self.process.stdout), ("stderr", self.process.stderr)):
            reader = threading.Thread(target=self._read, args=(name, stream), daemon=True)
            reader.start()
            self._readers.append(reader)

    def _remote_build(self, root: Path) -> Path | None:
        """remote_build: install requirements.txt for the interpreter, as the service does at
        provisioning (uv, the indexes pip is configured with); None when nothing to install."""
        requirements = root / "requirements.txt"
        if self.runnable.context.mode != "remote_build" or not requirements.is_file() or \
                not any(line for _, line in requirement_lines(requirements.read_text("utf-8",
                                                                                   "replace"))):
            return None
        from uv import find_uv_bin

        from bundler.indexes import read_pip_config

        assert self.folder is not None
        site = self.folder / "site-packages"
        argv = [find_uv_bin(), "pip", "install", "--quiet", "--no-config",
                "--no-python-downloads", "--python", str(self.interpreter.path),
                "--target", str(site), "-r", str(requirements),
                *read_pip_config().uv_args(), "--index-strategy", "unsafe-best-match"]
        log.info("remote_build: installing requirements.txt into %s", site)
        done = subprocess.run(argv, capture_output=True, text=True, check=False,
                              env={**os.environ, "UV_NO_PROGRESS": "1"})
        if done.returncode != 0:
            lines = redact_urls(done.stderr or done.stdout).strip().splitlines()[-TAIL:]
            raise AgentFailed("installing requirements.txt failed (the service's remote "
                              "build would fail the same way)",
                              "fix requirements.txt, or build it bundled to see why",
                              lines)
        return site

    def mask(self, line: str) -> str:
        for value in self._masks:
            line = line.replace(value, REDACTED)
        return line

    def _read(self, name: str, stream: object) -> None:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            line = self.mask(raw.decode("utf-8", "replace").rstrip("\r\n"))
            self.lines[name].append(line)
            if self.on_line is not None:
                self.on_line(name, line)

    # ---- readiness and invoke -----------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float) -> float:
        """Seconds until ``GET /readiness`` answered 200; AgentFailed if it never did."""
        assert self.process is not None
        started = time.monotonic()
        last = "no answer (connection refused)"
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise self._exited()
                try:
                    reply = client.get(f"{self.url}/readiness")
                    if reply.status_code == 200:
                        return time.monotonic() - started
                    last = f"HTTP {reply.status_code}"
                except httpx.TransportError:
                    pass
                if time.monotonic() - started >= timeout:
                    raise self._not_ready(timeout, last)
                time.sleep(0.1)

    def invoke(self, request: LocalRequest, timeout: float) -> Answer:
        assert self.process is not None
        try:
            with httpx.Client(trust_env=False, timeout=timeout) as client:
                reply = client.post(f"{self.url}{request.route}", content=request.body,
                                    headers={"Content-Type": request.content_type})
        except httpx.TimeoutException:
            raise AgentFailed(f"POST {request.route} got no answer within {timeout:g} s",
                              "pass a longer --timeout, or read the agent's output",
                              self._tail()) from None
        except httpx.TransportError as error:
            if self.process.poll() is not None:
                raise self._exited() from None
            raise AgentFailed(f"POST {request.route} failed ({error})", None,
                              self._tail()) from None
        return Answer(reply.status_code, reply.content, dict(reply.headers))

    def failed_answer(self, answer: Answer, protocol: str) -> AgentFailed | None:
        """A non-2xx answer, or a 2xx one that still reports a failure (a Responses body with
        ``status: failed`` — what an agent without credentials answers), as the failure to
        raise with the agent's own last lines, which ``--invoke`` otherwise keeps to itself;
        else None."""
        from bundler.deploy.invoke import answer_error

        hint = "its output below says why (fbundle run -v streams all of it)"
        why: str | None = None
        if 200 <= answer.status < 300:
            try:
                why = answer_error(json.loads(answer.body), protocol)
            except ValueError:
                return None
            if why is None:
                return None
        self.stop()  # its readers then hold every line it wrote before answering
        if why is None:
            return AgentFailed(f"the agent answered {answer.status}", hint, self._tail())
        return AgentFailed(f"the agent answered {answer.status} but its answer failed: {why}",
                           hint, self._tail())

    def wait(self) -> int:
        """Block until the agent exits by itself; its exit code."""
        assert self.process is not None
        return self.process.wait()

    # ---- diagnosis ----------------------------------------------------------------------------

    def _tail(self, name: str | None = None) -> list[str]:
        streams = [name] if name else ["stderr", "stdout"]
        for stream in streams:
            self._drain()
            if lines := list(self.lines[stream])[-TAIL:]:
                return [f"last lines of {stream}:", *(f"  {line}" for line in lines)]
        return ["it printed nothing"]

    def _drain(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            for reader in self._readers:
                reader.join(timeout=2)

    def _exited(self) -> AgentFailed:
        assert self.process is not None
        code = self.process.wait()
        self._drain()
        output = [*self.lines["stderr"], *self.lines["stdout"]]
        why = diagnose.explain(output, self.root, self.runnable.target,
                               self.runnable.context.mode)
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return AgentFailed(
            f"the agent {how} before GET /readiness answered 200", _hint(why),
            [*why, *self._tail()])

    def _not_ready(self, timeout: float, last: str) -> AgentFailed:
        assert self.process is not None
        details = [f"it was told PORT={self.port}; GET /readiness: {last}"]
        ports = [p for p in diagnose.listening_ports(self.process.pid) if p != self.port]
        if ports:
            details.append(f"it listens on {', '.join(map(str, ports))} instead: read PORT "
                           "from the environment")
        return AgentFailed(
            f"GET {self.url}/readiness did not answer 200 within {timeout:g} s (the service "
            "answers 424 session_not_ready then)",
            "serve GET /readiness with 200 on $PORT once the agent can take requests",
            [*details, *self._tail()])

    # ---- stop ---------------------------------------------------------------------------------

    def stop(self) -> int | None:
        """SIGTERM the agent's process group, SIGKILL after a grace period; its exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            for sig, grace in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, STOP_GRACE)):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    process.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    log.info("the agent ignored %s", sig.name)
        else:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # what it left behind in its group
            except (ProcessLookupError, PermissionError):
                pass
        for reader in self._readers:
            reader.join(timeout=2)
        return process.returncode

    def _cleanup(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        # A second Ctrl-C while stopping must not leave the agent or the folder behind.
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.stop()
            self._cleanup()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)


def _hint(why: list[str]) -> str:
    if why and "--env-file" in why[0]:
        return "give the agent the variable the service would (fbundle run --env-file FILE)"
    if why and "rebuild" in why[0]:
        return "rebuild the bundle (fbundle build) with the distribution that provides it"
    if why:
        return "fix the bundle as said below and run again"
    return "read the last lines below; fbundle run -v streams all of the agent's output"
