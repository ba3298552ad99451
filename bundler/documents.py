"""Definition documents read with bounds: JSON and YAML whose size, depth, node count and
numbers are limited before anything looks at them (hostile input stays bounded), every
number kept as its text so ``0.25`` is never ``0.25000000000000001``."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bundler.errors import UsageError

#: What a definition document may hold before it is refused.

#: What a definition document may hold before it is refused (hostile input stays bounded).
MAX_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NUMBER_CHARS = 64
MAX_NODES = 100_000


class _Refused(Exception):
    """A value in a document is out of the bounds a definition can have."""


def _number(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER_CHARS:
            raise _Refused(f"holds a number of {len(text):,} digits")
        value = kind(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise _Refused(f"holds the number {text[:20]}, which is out of range")
        return value

    return parse


def _constant(text: str) -> Any:
    raise _Refused(f"holds {text}, which is not JSON")


def depth_problem(value: Any) -> str | None:
    """Why ``value`` nests deeper or holds more than a definition can, or None (iterative: never
    recurses; bounded, so YAML aliases that expand exponentially stop early)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            return f"holds more than {MAX_NODES:,} values (YAML aliases?)"
        if depth > MAX_DEPTH:
            return f"is nested more than {MAX_DEPTH} levels deep"
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return None


def _read_text(path: Path, hint: str) -> tuple[str, list[str]]:
    """A document's text without a UTF-8 BOM, and a note when it had one."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{path}: not found", hint) from None
    except OSError as error:
        raise UsageError(f"{path}: cannot be read ({error.strerror or error})",
                         "check the file and its permissions") from None
    if len(data) > MAX_BYTES:
        raise UsageError(f"{path}: larger than {MAX_BYTES:,} bytes; not an agent definition",
                         "pass the definition file")
    notes = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        notes.append(f"note: {path.name} starts with a UTF-8 byte order mark; read without it "
                     "(the definition fbundle writes has none)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: not UTF-8 (byte {error.start})",
                         "save the file as UTF-8") from None
    return text, notes


def read_json(path: Path) -> tuple[dict[str, Any], list[str]]:
    """A JSON object from ``path`` (BOM and CRLF accepted), or one exit-2 line saying why not.

    NaN/Infinity, numbers longer than 64 characters, nesting deeper than 64 levels and files
    over 1 MiB are refused: no definition has them, and each would otherwise fail deep inside.
    """
    text, notes = _read_text(path, "create it with `fbundle init`, or pass --metadata")
    try:
        data = json.loads(text, parse_int=_number(int), parse_float=_number(float),
                          parse_constant=_constant)
    except _Refused as error:
        raise UsageError(f"{path}: {error}", "write cpu, memory and versions as strings, "
                         'e.g. "cpu": "1"') from None
    except RecursionError:
        raise UsageError(f"{path}: is nested too deeply to be an agent definition",
                         "fix the JSON") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})",
                         "fix the JSON syntax") from None
    if problem := depth_problem(data):
        raise UsageError(f"{path}: {problem}", "fix the JSON") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: must hold a JSON object, not {kind_of(data)}",
                         'see `fbundle init` for an example: {"definition": {...}}')
    return data, notes


def read_yaml(path: Path) -> tuple[dict[str, Any], list[str]]:
    """A YAML mapping from ``path`` (safe loader), or one exit-2 line saying why not."""
    import yaml

    text, notes = _read_text(path, "pass the folder that holds it")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except RecursionError:
        raise UsageError(f"{path}: is nested too deeply", "fix the YAML") from None
    except ValueError as error:  # e.g. an integer over Python's 4,300-digit limit
        raise UsageError(f"{path}: a value cannot be read ({str(error)[:80]})",
                         "write cpu, memory and versions as short strings") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        what = getattr(error, "problem", None) or "syntax error"
        raise UsageError(f"{path}: not valid YAML{where}: {what}", "fix the YAML") from None
    if problem := depth_problem(data):
        raise UsageError(f"{path}: {problem}", "fix the YAML")
    if not isinstance(data, dict):
        raise UsageError(f"{path}: must hold a YAML mapping, not {kind_of(data)}",
                         "see azd's agent.yaml: kind, name, protocols, ...")
    return data, notes


def kind_of(value: Any) -> str:
    known = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             type(None): "null", int: "a number", float: "a number"}
    return known.get(type(value), f"a {type(value).__name__}")
