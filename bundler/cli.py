"""The command line: parse, call the library, print, map errors to exit codes.

This is the only module that talks to the terminal. Each job's commands live in
``bundler/commands/<job>.py`` and are listed here.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from bundler import __version__
from bundler.commands import audit, build, deploy, validate
from bundler.errors import EXIT_FAILURE, EXIT_USAGE, FbundleError


class _Group(click.Group):
    """One error boundary: a FbundleError is one red line and its exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FbundleError as error:
            click.secho(f"error: {error}", fg="red", err=True)
            ctx.exit(error.exit_code)
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


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fbundle")
@click.option("-v", "--verbose", is_flag=True, help="Log progress and subprocess output.")
def cli(verbose: bool) -> None:
    """Build, validate, audit and deploy source-code agents for Foundry Agent Service."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )


for _module in (build, validate, audit, deploy):
    for _command in _module.commands:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="fbundle")
