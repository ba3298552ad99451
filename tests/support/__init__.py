"""The shared test kit: wheels, binaries and a package index, all generated inside the session.

Nothing here is checked in as bytes. ``wheels`` writes wheels (pure, or holding a gcc-compiled
CPython extension), ``binaries`` writes PE / Mach-O / ELF headers and gcc-built objects needing
a given glibc, ``index`` serves a folder of wheels to pip and uv over loopback HTTP. The
fixtures in ``tests/conftest.py`` put them together into a standard corpus.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

from click.testing import Result

from .binaries import elf, elf_needing_glibc, macho, macho_fat, pe_dll
from .index import SimpleIndex
from .wheels import compile_extension, extension_wheel, make_wheel, normalize_name


class RunCli(Protocol):
    """The ``run_cli`` fixture: ``run_cli("validate", zip_path, input=None, env=None)``."""

    def __call__(
        self,
        *args: str | os.PathLike[str],
        input: str | bytes | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> Result: ...


__all__ = [
    "RunCli",
    "SimpleIndex",
    "compile_extension",
    "elf",
    "elf_needing_glibc",
    "extension_wheel",
    "macho",
    "macho_fat",
    "make_wheel",
    "normalize_name",
    "pe_dll",
]
