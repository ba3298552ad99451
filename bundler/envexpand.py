"""``${VAR}`` in azd's shapes, expanded as azd's ``foundry.ExpandEnv`` does: from the process
environment, then a ``.env`` beside the file that holds it, then the selected azd environment's
``.azure/<name>/.env`` (python-dotenv reads the files). Values are never printed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bundler.errors import UsageError

# Written here because no library does drone/envsubst's braced subset while keeping Foundry's
# ${{...}} spans: ${VAR}, ${VAR:-default}, ${VAR-default} (and := / =), nothing else.
FOUNDRY_SPAN = re.compile(r"\$\{\{.*?\}\}", re.S)
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=])([^}]*))?\}")


@dataclass
class Environment:
    """Where ``${VAR}`` values come from: the process environment, then a ``.env`` file."""

    variables: Mapping[str, str]
    dotenv: Mapping[str, str | None] = field(default_factory=dict)
    used_dotenv: bool = False
    unset: list[str] = field(default_factory=list)
    dotenv_lookups: int = 0  # lookups a file must not keep: .env values, secret parameters
    #: variables that carry a ``secret: true`` manifest parameter: kept out of files even when
    #: the process environment supplies them
    secret: set[str] = field(default_factory=set)

    @classmethod
    def beside(cls, folder: Path, variables: Mapping[str, str] | None = None) -> Environment:
        """The process environment, then ``folder/.env``, then the selected azd environment's
        ``.azure/<name>/.env`` (``AZURE_ENV_NAME``, else ``.azure/config.json``'s
        ``defaultEnvironment``, in ``folder`` or up to four folders above it)."""
        variables = os.environ if variables is None else variables
        dotenv: dict[str, str | None] = {}
        for path in reversed([folder / ".env", *_azd_env_file(folder, variables)]):
            if path.is_file():
                dotenv.update(read_dotenv(path))
        return cls(variables, dotenv)

    def lookup(self, name: str) -> str | None:
        if name in self.variables:
            if name in self.secret:
                self.dotenv_lookups += 1
            return self.variables[name]
        value = self.dotenv.get(name)
        if value is not None:
            self.used_dotenv = True
            self.dotenv_lookups += 1
        return value

    def expand_noting_dotenv(self, value: str) -> tuple[str, bool]:
        """``expand(value)``, and whether a ``.env`` file (or a secret parameter's variable)
        supplied any part of it: then the text as written is what a file may keep."""
        before = self.dotenv_lookups
        expanded = self.expand(value)
        return expanded, self.dotenv_lookups > before

    def expand(self, value: str) -> str:
        """``value`` with its ``${VAR}`` references replaced; unset ones are kept and noted.
        ``${{...}}`` spans are left as they are (only the text between them is expanded)."""

        def replace(match: re.Match[str]) -> str:
            name, operator, default = match.group(1), match.group(2), match.group(3)
            found = self.lookup(name)
            if operator is None:
                if found is None:
                    self.unset.append(name)
                    return match.group(0)
                return found
            if found is None or (operator.startswith(":") and found == ""):
                return default
            return found

        # As azd does: mask each span with a placeholder the value does not contain, expand,
        # restore (so a span may even be a default: ${MISSING:-${{event.body}}}).
        spans = FOUNDRY_SPAN.findall(value)
        if not spans:
            return REFERENCE.sub(replace, value)
        mark = "\ue000"
        while mark in value:
            mark += "\ue000"
        counter = iter(range(len(spans)))
        masked = FOUNDRY_SPAN.sub(lambda _m: f"{mark}{next(counter)}\ue001", value)
        expanded = REFERENCE.sub(replace, masked)
        return re.sub(re.escape(mark) + r"(\d+)\ue001", lambda m: spans[int(m.group(1))],
                      expanded)


def read_dotenv(path: Path, shown: str | None = None,
                hint: str = "fix or remove it") -> dict[str, str | None]:
    """A dotenv file as python-dotenv reads it (quotes, ``export``, comments, ``${VAR}`` from
    earlier lines); a key without ``=`` maps to None. Values never reach a message: an
    unreadable file is named (as ``shown``) with the error's kind only."""
    from dotenv import dotenv_values

    try:
        return dict(dotenv_values(path))
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{shown or path}: cannot be read ({type(error).__name__})",
                         hint) from None


def _azd_env_file(folder: Path, variables: Mapping[str, str]) -> list[Path]:
    for base in [folder, *folder.resolve().parents][:5]:
        azure = base / ".azure"
        if not azure.is_dir():
            continue
        name = variables.get("AZURE_ENV_NAME")
        if not name:
            try:
                config = json.loads((azure / "config.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return []
            name = config.get("defaultEnvironment") if isinstance(config, dict) else None
        if isinstance(name, str) and name and "/" not in name and "\\" not in name \
                and name not in (".", ".."):
            return [azure / name / ".env"]
        return []
    return []
