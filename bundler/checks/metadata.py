"""FB6xx: the agent definition (the multipart ``metadata`` part) as the service takes it.

The rules live in ``bundler/metadata.py`` so that ``build`` (which refuses or warns before
writing) and ``validate`` (which reads the definition beside a zip) say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterator

from bundler.checks.base import Finding, finding, rules
from bundler.checks.facts import Facts
from bundler.metadata import definition_problems, metadata_problems
from bundler.project import agent_name_problem

RULES = rules(
    ("FB601", "error", "a definition field is missing or has a value the service rejects"),
    ("FB602", "error", "cpu / memory is missing, one without the other, or not a number"),
    ("FB603", "error", "the agent name breaks the service's naming rule"),
    ("FB604", "warning", "cpu / memory is well-formed but not a known allocation"),
    ("FB605", "warning", "a definition key the service does not document (misspelt?)"),
    ("FB606", "warning", "the definition declares no protocol_versions"),
    ("FB607", "warning", "an environment variable still holds an unresolved ${VAR}"),
    ("FB608", "error", "an environment variable name the service refuses"),
    ("FB609", "warning", "a protocol the service does not document"),
)

METADATA = "metadata.json"
FIX = "fix metadata.json (see the article's metadata example, or `fbundle init`)"
HINTS = {
    "FB602": 'set both as strings, e.g. "cpu": "1", "memory": "2Gi" (or 0.25/0.5Gi ... 4/8Gi)',
    "FB604": "0.25/0.5Gi, 0.5/1Gi, 1/2Gi, 2/4Gi ... 4/8Gi are known; check the service accepts "
             "yours",
    "FB605": "rename it to the documented field, or remove it",
    "FB606": 'add "protocol_versions": [{"protocol": "responses", "version": "2.0.0"}]',
    "FB607": "set the variable when building (environment or .env), or write the value",
    "FB608": "rename it: a letter or underscore first, then letters, digits or underscores",
    "FB609": "use responses, invocations, invocations_ws, a2a, activity or mcp",
}


def check(facts: Facts) -> Iterator[Finding]:
    metadata = facts.context.metadata
    if metadata is None:
        return
    for field, problem in metadata_problems(metadata):
        yield finding("FB601", METADATA, f"{field or 'metadata'} {problem}", FIX)
    for item in definition_problems(metadata):
        yield finding(item.code, METADATA, item.message, HINTS.get(item.code, FIX))
    name = metadata.get("name")
    if isinstance(name, str) and (bad_name := agent_name_problem(name)):
        yield finding("FB603", METADATA, bad_name, "pick a name with letters, digits and inner "
                      "hyphens, at most 63 characters")
