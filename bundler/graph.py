"""Who needs whom, on the target: the requirement graph of a set of installed distributions.

One home for the question "why is this distribution in the bundle" (the chain from
``requirements.txt``, for size tables) and "what else goes when this one is left out" (for
``--exclude-package``). Markers are evaluated for the *target* with the extras that were asked
for, as ``deps`` does; a requirement that names nothing installed is simply not an edge.

The graph reads no requirement line itself: the roots come from ``requirements.txt`` as
:mod:`bundler.requirements` reads it (the one grammar: ``-r`` includes, local wheels and
``#egg=`` names, ``--hash`` options), and the edges from each distribution's ``Requires-Dist``,
which is PEP 508 and nothing else, read by ``packaging``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from bundler.targets import PythonTarget

ROOT = NormalizedName("requirements.txt")  # where every chain starts


@dataclass
class Graph:
    """Distributions (canonical names) and who pulls in whom.

    ``parent[name]`` is the first distribution (or :data:`ROOT`) found to need ``name`` in a
    breadth-first walk from the roots, so :meth:`chain` is a shortest chain.
    """

    reachable: set[NormalizedName] = field(default_factory=set)
    parent: dict[NormalizedName, NormalizedName] = field(default_factory=dict)
    needs: dict[NormalizedName, set[NormalizedName]] = field(default_factory=dict)

    def chain(self, name: str) -> list[str]:
        """``["requirements.txt", "a", "b", name]``, or ``[]`` when nothing needs ``name``."""
        key = canonicalize_name(name)
        if key not in self.reachable:
            return []
        out = [str(key)]
        while key in self.parent and self.parent[key] != ROOT:
            key = self.parent[key]
            out.append(str(key))
        return ["requirements.txt", *reversed(out)]

    def needed_by(self, name: str) -> list[str]:
        """The reachable distributions that require ``name`` directly, sorted."""
        key = canonicalize_name(name)
        return sorted(str(d) for d, children in self.needs.items()
                      if key in children and (d in self.reachable or d == ROOT))


def requires_dist(lines: Iterable[str]) -> list[Requirement]:
    """A distribution's ``Requires-Dist`` values (PEP 508, by ``packaging``); a malformed one
    is no edge here (``fbundle validate`` reports it, FB4xx)."""
    out = []
    for line in lines:
        try:
            out.append(Requirement(line))
        except InvalidRequirement:
            continue
    return out


def walk(roots: Iterable[Requirement], requires: Mapping[NormalizedName, list[str]],
         target: PythonTarget, *, skip: Iterable[str] = ()) -> Graph:
    """Breadth-first from ``roots`` (what requirements.txt asks for:
    :meth:`bundler.requirements.Requirements.roots`) through each installed distribution's
    ``Requires-Dist`` (``requires``: canonical name -> lines), never entering a name in
    ``skip``."""
    skipped = {canonicalize_name(s) for s in skip}
    graph = Graph()
    seen: set[tuple[NormalizedName, str]] = set()
    queue: deque[tuple[NormalizedName, str]] = deque()

    def reach(req: Requirement, parent: NormalizedName, extras: frozenset[str]) -> None:
        if not target.evaluate(req.marker, extras):
            return
        name = canonicalize_name(req.name)
        if name not in requires or name in skipped:
            return
        graph.needs.setdefault(parent, set()).add(name)
        if name not in graph.reachable:
            graph.reachable.add(name)
            graph.parent[name] = parent
        for extra in sorted(req.extras) or [""]:
            state = (name, str(canonicalize_name(extra)) if extra else "")
            if state not in seen:
                seen.add(state)
                queue.append(state)

    for req in roots:
        reach(req, ROOT, frozenset())
    while queue:
        name, extra = queue.popleft()
        active = frozenset({extra}) if extra else frozenset()
        for child in requires_dist(requires.get(name, [])):
            reach(child, name, active)
    return graph


@dataclass(frozen=True)
class Exclusion:
    """What ``--exclude-package`` decided: what goes, what stays although asked, and why."""

    asked: tuple[str, ...]  # canonical names the user excluded
    dropped: tuple[str, ...]  # every distribution left out (asked + only-needed-by-them)
    kept: tuple[tuple[str, tuple[str, ...]], ...]  # dependency of an excluded one, still needed
    unknown: tuple[str, ...]  # asked for but not in the resolution

    def notes(self) -> list[str]:
        """One line per decision, for ``build`` to print."""
        lines = []
        for name in self.asked:
            if name not in self.unknown:
                lines.append(f"excluded {name} (as asked)")
        for name in self.dropped:
            if name not in self.asked:
                lines.append(f"excluded {name} (needed only by excluded packages)")
        for name, by in self.kept:
            lines.append(f"kept {name}: still needed by {', '.join(by)}")
        for name in self.unknown:
            lines.append(f"--exclude-package {name}: not in the resolution; nothing to exclude")
        return lines


def exclude(names: Iterable[str], roots: list[Requirement],
            requires: Mapping[NormalizedName, list[str]], target: PythonTarget) -> Exclusion:
    """Leave out ``names`` and every distribution only they pulled in; a dependency of an
    excluded distribution that something else still needs stays, and is reported."""
    asked = tuple(sorted({str(canonicalize_name(n)) for n in names}))
    unknown = tuple(n for n in asked if canonicalize_name(n) not in requires)
    full = walk(roots, requires, target)
    kept_graph = walk(roots, requires, target, skip=asked)
    # Only what the full walk reaches can be dropped: a pin nothing needs is not ours to judge.
    gone = (full.reachable - kept_graph.reachable) | {canonicalize_name(n) for n in asked
                                                      if n not in unknown}
    dropped = tuple(sorted(str(n) for n in gone))
    # What a dropped distribution requires directly but something kept still needs: those
    # stay, and are named (deeper ones stay with them, which goes without saying).
    under = {child for name in gone for child in full.needs.get(name, set())}
    kept = tuple((str(n), tuple(kept_graph.needed_by(n))) for n in sorted(under)
                 if n in kept_graph.reachable and str(n) not in asked)
    return Exclusion(asked, dropped, kept, unknown)
