"""A project's own build settings, so CI repeats what a developer chose on the command line.

Read from ``fbundle.toml`` at the project root (top-level keys) or, without one, from the
``[tool.fbundle]`` table of ``pyproject.toml`` — the place Python tools keep their settings
(PEP 518). Both at once is refused: one project, one place. Flags add to the list settings
(``--exclude-package``) and override the switches (``--slim`` / ``--no-slim``).

```toml
# fbundle.toml
exclude-packages = ["boto3"]   # left out with what only they pull in
slim = true                    # tests/, conftest.py, stubs, C sources of built binaries
compile = true                 # bytecode by the target's CPython
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from bundler.errors import UsageError

CONFIG_FILE = "fbundle.toml"
KEYS = ("exclude-packages", "slim", "compile")


@dataclass(frozen=True)
class ProjectConfig:
    exclude_packages: tuple[str, ...] = ()
    slim: bool | None = None
    compile: bool | None = None
    source: str | None = None  # where the settings were read from, for messages


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"{path}: cannot be read as TOML ({error})", "fix the file") from None


def read_config(root: Path) -> ProjectConfig:
    """The settings of ``root`` (empty when it has none)."""
    own = root / CONFIG_FILE
    table: dict[str, Any] | None = None
    source = None
    if own.is_file():
        table, source = _read_toml(own), CONFIG_FILE
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        tool = _read_toml(pyproject).get("tool", {})
        found = tool.get("fbundle") if isinstance(tool, dict) else None
        if found is not None:
            if table is not None:
                raise UsageError(f"{root}: build settings are in both {CONFIG_FILE} and "
                                 "pyproject.toml [tool.fbundle]", "keep them in one place")
            if not isinstance(found, dict):
                raise UsageError("pyproject.toml: [tool.fbundle] must be a table",
                                 "see docs/build.md")
            table, source = found, "pyproject.toml [tool.fbundle]"
    if table is None:
        return ProjectConfig()
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise UsageError(f"{source}: unknown setting {unknown[0]!r}",
                         f"the settings are {', '.join(KEYS)} (docs/build.md)")
    names = table.get("exclude-packages", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise UsageError(f"{source}: exclude-packages must be a list of package names",
                         'write exclude-packages = ["name", ...]')
    switches: dict[str, bool | None] = {}
    for key in ("slim", "compile"):
        value = table.get(key)
        if value is not None and not isinstance(value, bool):
            raise UsageError(f"{source}: {key} must be true or false", f"write {key} = true")
        switches[key] = value
    return ProjectConfig(tuple(str(canonicalize_name(n)) for n in names), switches["slim"],
                         switches["compile"], source)
