"""Commands for this job; see bundler/cli.py for how they are registered."""

from __future__ import annotations

import click

commands: list[click.Command] = []
