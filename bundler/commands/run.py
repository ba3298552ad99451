"""``fbundle run``: boot the zip locally as the service would, stream its output or invoke it."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from bundler.commands.build import build_options
from bundler.errors import FbundleError, UsageError

if TYPE_CHECKING:
    from bundler.checks import Finding
    from bundler.options import BuildOptions
    from bundler.run.bundle import Runnable

INTERRUPTED = 130


def _report(findings: list[Finding], runnable: Runnable) -> None:
    """The findings on stderr as ``fbundle validate`` prints them (stdout is the --invoke
    answer's); errors stop the run (exit 1), warnings do not."""
    from bundler.checks import errors
    from bundler.commands.validate import subject_for
    from bundler.report import as_text

    subject = subject_for(str(runnable.zip_path), runnable.bundle, runnable.context)
    click.echo(as_text(findings, subject), err=True, nl=False)
    if found := errors(findings):
        raise FbundleError(f"{runnable.zip_path}: {len(found)} validate "
                           f"{'error' if len(found) == 1 else 'errors'}; not booted",
                           "fix the bundle (the lines above say how), or pass --no-validate "
                           "to boot it anyway")


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # a `kill` stops the agent and cleans up like Ctrl-C


@click.command()
@click.argument("path", metavar="[PROJECT|ZIP]", default=".", type=click.Path(path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=8088, show_default=True,
              help="The PORT the agent is given and asked on (0 picks a free one).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0,
              show_default=True, help="Seconds to wait for GET /readiness -> 200 (and for "
                                      "the --invoke answer).")
@click.option("--invoke", "invoke", metavar="JSON",
              help="Send one request (a JSON body, or text sent as its input) to the "
                   "definition's protocol, print the answer, stop.")
@click.option("--env-file", type=click.Path(path_type=Path, dir_okay=False),
              help="Local secrets as a dotenv file (default: .env of the project, or beside "
                   "the zip, when there is one). Never printed.")
@click.option("--no-validate", is_flag=True,
              help="Boot a ZIP without running validate's checks first (a PROJECT's build "
                   "always checks what it writes).")
@build_options
def run(path: Path, port: int, timeout: float, invoke: str | None, env_file: Path | None,
        no_validate: bool, options: BuildOptions) -> None:
    """Boot PROJECT (built first) or ZIP as the service does and wait for /readiness.

    Unpacked into a temporary folder and started with the definition's entry_point under the
    runtime's CPython: the zip root as working directory, PORT set, packages/ on PYTHONPATH,
    the definition's environment_variables, FOUNDRY_AGENT_NAME and FOUNDRY_AGENT_VERSION=local,
    and the service's FOUNDRY_PROJECT_ENDPOINT, FOUNDRY_PROJECT_ARM_ID and
    APPLICATIONINSIGHTS_CONNECTION_STRING when set (--env-file, this shell, the project's .env,
    the azd environment); nothing else of this shell's environment. Then the
    agent's output streams until Ctrl-C, or with --invoke one request is answered on stdout.
    A ZIP is checked first as `fbundle validate` checks it: its findings are printed, and an
    error stops here (exit 1) unless --no-validate.
    Exit 0 ready (or answered), 1 it failed (with the reason), 2 unusable input.
    --python is the CPython it runs under (default: python3.X on PATH, else `uv python find
    3.X`, X from the runtime), and the one --compile uses.
    """
    from bundler.envexpand import Environment
    from bundler.interpreters import find_interpreter, host_problem
    from bundler.run.bundle import (
        check_runnable,
        load,
        read_env_file,
        service_environment,
        validate,
    )
    from bundler.run.request import local_request, protocol_of
    from bundler.run.session import Session

    if problem := host_problem():
        raise UsageError(problem)
    verbose = options.verbose
    runnable = load(path, options)
    target = check_runnable(runnable)
    if not no_validate or runnable.built:
        _report(validate(runnable), runnable)
    request = local_request(protocol_of(runnable.protocols), invoke) if invoke else None
    interpreter = find_interpreter(target, options.python)
    secrets_file = env_file or (runnable.dotenv if runnable.dotenv.is_file() else None)
    secrets = read_env_file(secrets_file) if secrets_file else {}
    service, passed = service_environment(
        runnable, secrets, Environment.beside(runnable.dotenv.parent).lookup)

    def forward(stream: str, line: str) -> None:
        if request is None or verbose:
            click.echo(line, err=stream == "stderr" or request is not None)

    # Only the main thread may set handlers (CliRunner in a thread cannot, and needs not).
    on_sigterm = threading.current_thread() is threading.main_thread()
    if on_sigterm:
        previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    ready = False
    started = time.monotonic()
    try:
        with Session(runnable, interpreter, port=port, secrets=secrets, on_line=forward,
                     service=service, passed=passed) as session:
            click.echo(f"starting {' '.join(runnable.context.entry_point)} from "
                       f"{runnable.zip_path} under {interpreter.probe.label} "
                       f"({interpreter.path}, {interpreter.found_by}); PORT={session.port}"
                       + (f"; secrets from {secrets_file}" if secrets_file else "")
                       + f"; service variables {', '.join(sorted({**service, **passed}))}",
                       err=True)
            waited = session.wait_ready(timeout)
            ready = True
            click.echo(f"ready: GET {session.url}/readiness -> 200 after {waited:.1f} s",
                       err=True)
            if request is not None:
                answer = session.invoke(request, timeout)
                facts = [f"POST {request.route} -> {answer.status}"] + [
                    f"{name} {answer.headers[name]}" for name in
                    ("x-agent-session-id", "x-agent-invocation-id") if name in answer.headers]
                click.echo("; ".join(facts), err=True)
                sys.stdout.flush()
                click.echo(answer.body.decode("utf-8", "replace"))
                if (why := session.failed_answer(answer, request.protocol)) is not None:
                    raise why  # non-2xx, or 2xx with status "failed": the agent's log says why
                return
            click.echo("streaming the agent's output; Ctrl-C stops it", err=True)
            code = session.wait()
            raise FbundleError(
                f"the agent exited by itself with code {code} after "
                f"{time.monotonic() - started:.0f} s", "a hosted agent serves until stopped")
    except KeyboardInterrupt:
        click.echo("stopped the agent; its temporary folder is removed", err=True)
        click.get_current_context().exit(0 if ready else INTERRUPTED)
    finally:
        if on_sigterm:
            signal.signal(signal.SIGTERM, previous)


commands: list[click.Command] = [run]
