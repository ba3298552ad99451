"""FB6xx: the agent definition (``metadata.json``) fields the article documents."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from bundler.checks.base import Facts, Finding, finding, rules
from bundler.project import agent_name_problem, metadata_problems

RULES = rules(
    ("FB601", "error", "a definition field is missing or has a value the service rejects"),
    ("FB602", "error", "cpu / memory is not an allowed pair"),
    ("FB603", "error", "the agent name breaks the service's naming rule"),
)

METADATA = "metadata.json"
# Hosted agent sizes (Aspire.Hosting.Foundry HostedAgentOptions): cpu 0.5..3.5 vCPU in steps of
# 0.25, memory twice the cpu in GiB.
CPU_MIN, CPU_MAX, CPU_STEP = Decimal("0.5"), Decimal("3.5"), Decimal("0.25")


def cpu_memory_problem(cpu: Any, memory: Any) -> str | None:
    """Why a (cpu, memory) pair is not one the service accepts, or None."""
    if cpu is None and memory is None:
        return None
    if cpu is None or memory is None:
        return "cpu and memory must be set together (e.g. cpu \"1\", memory \"2Gi\")"
    try:
        cores = Decimal(str(cpu))
        if not str(memory).endswith("Gi"):
            raise InvalidOperation
        gib = Decimal(str(memory)[:-2])
    except (InvalidOperation, ValueError):
        return (f"cpu {cpu!r} / memory {memory!r} must look like \"1\" / \"2Gi\"")
    if not (CPU_MIN <= cores <= CPU_MAX) or cores % CPU_STEP:
        return f"cpu {cpu!r} must be 0.5 to 3.5 in steps of 0.25"
    if gib != cores * 2:
        return f"memory {memory!r} must be twice the cpu: {cores * 2:g}Gi for cpu {cpu!r}"
    return None


def check(facts: Facts) -> Iterator[Finding]:
    metadata = facts.context.metadata
    if metadata is None:
        return
    fix = "fix metadata.json (see the article's metadata example, or `fbundle init`)"
    for field, problem in metadata_problems(metadata):
        yield finding("FB601", METADATA, f"{field or 'metadata'} {problem}", fix)
    definition = metadata.get("definition")
    if isinstance(definition, dict):
        if pair := cpu_memory_problem(definition.get("cpu"), definition.get("memory")):
            yield finding("FB602", METADATA, f"definition.{pair}", fix)
    name = metadata.get("name")
    if isinstance(name, str) and (bad_name := agent_name_problem(name)):
        yield finding("FB603", METADATA, bad_name, "pick a name with letters, digits and inner "
                      "hyphens, at most 63 characters")
