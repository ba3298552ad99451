"""What a runtime value means: the CPython, ABIs, platform tags and markers a bundle must fit.

Everything that decides what goes into a bundle takes a ``Target``; nothing in fbundle reads
``sys.version_info`` or ``platform`` to decide that (pip's ``--python-version`` still evaluates
some markers for the host: pip issues 11010 and 13296).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags

from bundler.errors import UsageError

PYTHON_RUNTIMES = {"python_3_13": (3, 13), "python_3_14": (3, 14)}
DOTNET_RUNTIMES = {"dotnet_10": "net10.0"}
RUNTIMES = (*PYTHON_RUNTIMES, *DOTNET_RUNTIMES)
DEFAULT_GLIBC = (2, 17)
# The glibc floors that have a legacy manylinux alias (PEP 600).
_LEGACY_ALIASES = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def parse_glibc(text: str) -> tuple[int, int]:
    """``"2.28"`` -> ``(2, 28)``; a clear error for anything else."""
    try:
        major, minor = (int(part) for part in text.strip().split("."))
    except ValueError:
        raise UsageError(
            f"--glibc {text!r} is not a glibc version", "write it as MAJOR.MINOR, e.g. 2.17"
        ) from None
    if major != 2 or minor < 5:
        raise UsageError(f"--glibc {text} is out of range", "manylinux floors start at 2.5")
    return major, minor


def manylinux_platforms(glibc: tuple[int, int], arch: str = "x86_64") -> list[str]:
    """Platform tags accepted at a glibc floor, most specific first; never bare ``linux_*``."""
    platforms: list[str] = []
    for minor in range(glibc[1], 4, -1):
        platforms.append(f"manylinux_2_{minor}_{arch}")
        legacy = _LEGACY_ALIASES.get((2, minor))
        if legacy:
            platforms.append(f"{legacy}_{arch}")
    return platforms


def manylinux_floor(platform: str) -> tuple[int, int] | None:
    """The glibc floor of an x86_64 manylinux platform tag (None for any other platform)."""
    if match := re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", platform):
        return int(match.group(1)), int(match.group(2))
    legacy = {alias: floor for floor, alias in _LEGACY_ALIASES.items()}
    return legacy.get(platform.removesuffix("_x86_64")) if platform.endswith("_x86_64") else None


def _uv_named_floor(minor: int) -> int:
    """uv's ``--python-platform`` names only some floors (``manylinux_2_17``, ``_2_28``, then
    every one from ``_2_31``; ``2_25`` is "invalid value"): the named one at or below."""
    return (28 if minor >= 28 else 17) if 17 <= minor < 31 else minor


def glibc_to_ask(floor: tuple[int, int]) -> tuple[int, int]:
    """The ``--glibc`` to suggest for a wheel that needs ``floor``: the lowest floor uv is
    asked at unchanged, so uv takes the wheel (2.27 -> 2.28, 2.29 -> 2.31)."""
    minor = floor[1]
    while _uv_named_floor(minor) < floor[1]:
        minor += 1
    return floor[0], minor


@dataclass(frozen=True)
class Target:
    """A runtime a bundle is built for: a :class:`PythonTarget` or a :class:`DotnetTarget`.

    What only a CPython has (ABI, wheel tags, markers) lives on ``PythonTarget``, so code that
    needs it says so in its signature instead of asserting at run time.
    """

    runtime: str
    glibc: tuple[int, int] = DEFAULT_GLIBC

    @staticmethod
    def for_runtime(runtime: str,
                    glibc: tuple[int, int] = DEFAULT_GLIBC) -> PythonTarget | DotnetTarget:
        if runtime in PYTHON_RUNTIMES:
            return PythonTarget(runtime, glibc, python=PYTHON_RUNTIMES[runtime])
        if runtime in DOTNET_RUNTIMES:
            return DotnetTarget(runtime, glibc, framework=DOTNET_RUNTIMES[runtime])
        raise UsageError(
            f"unknown runtime {runtime!r}", f"use one of: {', '.join(RUNTIMES)}"
        )

    @property
    def glibc_text(self) -> str:
        return f"{self.glibc[0]}.{self.glibc[1]}"

    @property
    def platforms(self) -> list[str]:
        return manylinux_platforms(self.glibc)

    @property
    def uv_platform(self) -> str:
        """The value for ``uv pip --python-platform``.

        uv names only some floors (``manylinux_2_17``, ``_2_28``, then every one from ``_2_31``;
        ``--glibc 2.25`` is refused with "invalid value"), so a floor between them is asked at
        the nearest named one below: every wheel uv picks then fits the floor, which the tag
        and ELF checks still apply exactly. Floors below 2.17 (or from 2.31) go as written."""
        return f"x86_64-manylinux_{self.glibc[0]}_{_uv_named_floor(self.glibc[1])}"


@dataclass(frozen=True)
class DotnetTarget(Target):
    """A .NET runtime; ``framework`` is its target framework moniker (``net10.0``)."""

    framework: str = field(kw_only=True)


@dataclass(frozen=True)
class PythonTarget(Target):
    """A CPython runtime: what decides which wheels, ABIs and marker values fit."""

    python: tuple[int, int] = field(kw_only=True)

    @staticmethod
    def for_runtime(runtime: str, glibc: tuple[int, int] = DEFAULT_GLIBC) -> PythonTarget:
        """The Python target of ``runtime``; a usage error when it names .NET."""
        target = Target.for_runtime(runtime, glibc)
        if not isinstance(target, PythonTarget):
            raise UsageError(f"runtime {runtime} is not a Python runtime",
                             f"use one of: {', '.join(PYTHON_RUNTIMES)}")
        return target

    @property
    def python_version(self) -> str:
        """``"3.13"``."""
        return f"{self.python[0]}.{self.python[1]}"

    @property
    def abi(self) -> str:
        """``"cp313"``: the one non-abi3 ABI the runtime accepts (never the free-threaded ``t``)."""
        return f"cp{self.python[0]}{self.python[1]}"

    @cached_property
    def tags(self) -> list[Tag]:
        """Every wheel tag the runtime accepts, best first (cp3X, abi3, then ``py3``), in the
        order pip and uv rank them: ``py3-none-manylinux…`` (a pure package that ships a Linux
        executable) fits the platforms like a binary wheel does, ahead of ``py3-none-any``."""
        binary = cpython_tags(self.python, [self.abi], self.platforms)
        pure = compatible_tags(self.python, self.abi, self.platforms)
        return [*binary, *pure]

    @cached_property
    def tag_rank(self) -> dict[Tag, int]:
        """Tag -> preference (lower is better); a tag listed twice keeps its better place."""
        rank: dict[Tag, int] = {}
        for i, tag in enumerate(self.tags):
            rank.setdefault(tag, i)
        return rank

    @property
    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker variables of the service's runtime (CPython on x86_64 Linux)."""
        version = self.python_version
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{version}.0",
            "os_name": "posix",
            "platform_machine": "x86_64",
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": f"{version}.0",
            "python_version": version,
            "sys_platform": "linux",
            "extra": "",
        }

    def evaluate(self, marker: Marker | None, extras: frozenset[str] = frozenset()) -> bool:
        """Whether ``marker`` holds on the target (for any of ``extras``, or none)."""
        if marker is None:
            return True
        env = self.marker_environment
        if not extras:
            return marker.evaluate(env)
        return any(marker.evaluate({**env, "extra": extra}) for extra in extras)
