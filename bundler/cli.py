"""The command line: parse, call the library, print, map errors to exit codes.

This is the only module that talks to the terminal. Each job's commands live in
``bundler/commands/<job>.py`` and are listed here.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click

from bundler import __version__
from bundler.errors import EXIT_FAILURE, EXIT_USAGE, FbundleError

# bundler/commands/<job>.py, each exposing ``commands``. Imported on first use, in this order and
# only until the command asked for is found: `fbundle build` never pays for deploy's HTTP stack.
JOBS = ("build", "validate", "audit", "deploy", "invoke", "sessions", "run")


class JobsGroup(click.Group):
    """The command group: loads each job's commands on first use, and is the one error
    boundary (a FbundleError is one red line and its exit code, never a traceback)."""

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        for job in ("", *JOBS):
            if job:
                self._load(job)
            if (command := super().get_command(ctx, name)) is not None:
                return command
        return None

    def list_commands(self, ctx: click.Context) -> list[str]:
        for job in JOBS:
            self._load(job)
        return super().list_commands(ctx)

    def _load(self, job: str) -> None:
        loaded: set[str] = self.__dict__.setdefault("_loaded_jobs", set())
        if job not in loaded:
            loaded.add(job)
            for command in importlib.import_module(f"bundler.commands.{job}").commands:
                self.add_command(command)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FbundleError as error:
            click.secho(f"error: {error}", fg="red", err=True)
            ctx.exit(error.exit_code)
        except BrokenPipeError:
            # The reader went away (`fbundle inspect ... | head`): stop quietly, as cat does.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(EXIT_FAILURE)
        except KeyboardInterrupt:
            click.secho("interrupted; outputs were left as they were", fg="red", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except OSError as error:
            click.secho(f"error: {error}", fg="red", err=True)
            ctx.exit(EXIT_USAGE if isinstance(error, FileNotFoundError) else EXIT_FAILURE)
        except Exception as error:
            if os.environ.get("FBUNDLE_DEBUG"):
                raise
            click.secho(
                f"internal error: {type(error).__name__}: {error} — please report it; "
                "FBUNDLE_DEBUG=1 shows the traceback",
                fg="red",
                err=True,
            )
            ctx.exit(EXIT_FAILURE)


@click.group(cls=JobsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fbundle")
@click.option("-v", "--verbose", is_flag=True, help="Log progress and subprocess output.")
def cli(verbose: bool) -> None:
    """Build, validate, audit and deploy source-code agents for Foundry Agent Service."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )


def main() -> None:
    cli(prog_name="fbundle")
