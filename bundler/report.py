"""Findings -> text (one line each), JSON, or GitHub Actions workflow commands.

Paths are shown as stored in the zip; control characters in them are escaped so a hostile name
cannot forge extra lines (or workflow commands) in CI logs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bundler.checks import Finding

FORMATS = ("text", "json", "github")


@dataclass(frozen=True)
class Subject:
    """What was validated, for the summary."""

    location: str
    files: int
    bytes: int
    runtime: str
    mode: str
    layout: str = ""  # where the dependencies were found (checks.layout.LAYOUT_WORDS)


def printable(text: str) -> str:
    """``text`` with control characters and lone surrogates escaped (``\\n`` -> ``\\x0a``)."""
    out = []
    for char in text:
        code = ord(char)
        if code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\x{code & 0xFF:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def counts(findings: Sequence[Finding]) -> tuple[int, int]:
    errors = sum(1 for f in findings if f.severity == "error")
    return errors, len(findings) - errors


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary_line(findings: Sequence[Finding], subject: Subject) -> str:
    errors, warnings = counts(findings)
    where = (f"{printable(subject.location)} ({_plural(subject.files, 'file')}, "
             f"{subject.bytes / 1_000_000:.1f} MB, {subject.runtime} {subject.mode}"
             f"{', ' + subject.layout if subject.layout else ''})")
    if not findings:
        return f"no findings in {where}"
    line = f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')} in {where}"
    if not errors:
        line += "; warnings do not fail validation"
    return line


def finding_line(f: Finding) -> str:
    where = f"{f.code} {printable(f.path)}:" if f.path else f"{f.code}:"
    return f"{where} {printable(f.message)} — {printable(f.hint)}"


def as_text(findings: Sequence[Finding], subject: Subject) -> str:
    return "".join(f"{finding_line(f)}\n" for f in findings) + summary_line(findings, subject) \
        + "\n"


def as_json(findings: Sequence[Finding], subject: Subject) -> str:
    errors, warnings = counts(findings)
    document: dict[str, Any] = {
        "findings": [
            {"code": f.code, "path": f.path, "message": f.message, "hint": f.hint,
             "severity": f.severity}
            for f in findings
        ],
        "summary": {
            "errors": errors, "warnings": warnings, "location": subject.location,
            "files": subject.files, "bytes": subject.bytes, "runtime": subject.runtime,
            "mode": subject.mode, "layout": subject.layout,
        },
    }
    # ensure_ascii keeps undecodable names (surrogates) representable.
    return json.dumps(document, indent=2, ensure_ascii=True) + "\n"


def _escape_data(text: str) -> str:
    return printable(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def as_github(findings: Sequence[Finding], subject: Subject) -> str:
    """``::error file=…,title=CODE::message — hint`` per finding (GitHub workflow commands)."""
    lines = []
    for f in findings:
        props = f"title={_escape_property(f.code)}"
        if f.path:
            props = f"file={_escape_property(f.path)},{props}"
        lines.append(f"::{f.severity} {props}::{_escape_data(f.path + ': ' if f.path else '')}"
                     f"{_escape_data(f.message)} — {_escape_data(f.hint)}\n")
    return "".join(lines) + summary_line(findings, subject) + "\n"


def render(findings: Sequence[Finding], subject: Subject, fmt: str) -> str:
    return {"text": as_text, "json": as_json, "github": as_github}[fmt](findings, subject)
