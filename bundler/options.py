"""What the user asked a build for: one typed record, built from the flags by name.

``plan``, ``shape``, ``build``, ``audit``, ``run`` and ``deploy`` all take a ``BuildOptions``; it
sits below them so none has to reach up to another stage for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bundler.metadata import Flags


@dataclass(frozen=True)
class BuildOptions:
    output: Path | None = None
    runtime: str | None = None
    mode: str | None = None
    resolver: str = "uv"
    glibc: str | None = None
    offline: bool = False
    name: str | None = None
    metadata: Path | None = None
    update_lock: bool = False
    project_file: str | None = None
    verbose: bool = False
    refresh: bool = False
    no_build: bool = False  # wheels only: no sdist or local package is built
    entry_point: str | None = None
    cpu: str | None = None
    memory: str | None = None
    protocols: tuple[str, ...] = ()
    #: Distributions to leave out, with what only they pull in (plus the project config's).
    exclude_packages: tuple[str, ...] = ()
    slim: bool | None = None  # None: the project config decides (default off)
    compile: bool | None = None
    python: Path | None = None  # the target interpreter for --compile

    def flags(self) -> Flags:
        """What the flags say about the agent definition (they override its source)."""
        return Flags(runtime=self.runtime, mode=self.mode, entry_point=self.entry_point,
                     cpu=self.cpu, memory=self.memory, protocols=tuple(self.protocols))


#: What a build does when asked nothing (a frozen value, safe as a default argument).
DEFAULT_OPTIONS = BuildOptions()
