"""The CPython 3.14 set-up (tests/support/python314.py): the mirror comes from apt's own
sources, the wrapper starts the real 3.14 through the root's loader and sees the host's /proc."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support import python314 as py314


def test_the_mirror_is_read_from_deb822_sources_skipping_security(tmp_path: Path) -> None:
    (tmp_path / "a-security.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n")
    (tmp_path / "b.sources").write_text(
        "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n")
    (tmp_path / "c.list.disabled").write_text("deb http://other.example/debian sid main\n")
    assert py314.debian_mirror((tmp_path,)) == "http://mirror.example/debian"


def test_the_mirror_is_read_from_a_one_line_sources_list(tmp_path: Path) -> None:
    listing = tmp_path / "sources.list"
    listing.write_text("# deb http://commented.example/debian sid main\n"
                       "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian "
                       "bookworm main\n")
    assert py314.debian_mirror((listing, tmp_path / "missing.d")) == \
        "http://mirror.example/debian"
    listing.write_text("deb-src http://src.example/debian bookworm main\n")
    assert py314.debian_mirror((listing,)) is None


def test_the_wrapper_runs_the_real_3_14_and_reads_the_host_proc(python314: Path) -> None:
    assert python314.read_text().count("\n") == 2  # the two-line wrapper (it calls the loader)
    probe = subprocess.run(
        [str(python314), "-I", "-c",
         "import os, sys, sysconfig; print(sys.implementation.name, sys.version_info[:2], "
         "sysconfig.get_config_var('Py_GIL_DISABLED'), os.getpid() == "
         "int(open('/proc/self/stat').read().split()[0]))"],
        capture_output=True, text=True, check=False)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["cpython", "(3,", "14)", "0", "True"]
    assert py314.works(python314)
    assert py314.ensure().wrapper == python314  # idempotent: there and working, nothing redone


def test_a_subprocess_started_with_sys_executable_runs_3_14_too(python314: Path) -> None:
    """Agents start helpers with ``sys.executable``; it must go through the root's loader."""
    code = ("import subprocess, sys; print(subprocess.run([sys.executable, '-I', '-c', "
            "'import sys; print(sys.version_info[:2])'], capture_output=True, text=True, "
            "check=True).stdout.strip())")
    done = subprocess.run([str(python314), "-I", "-c", code], capture_output=True, text=True,
                          check=False, env={"PATH": os.defpath})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(3, 14)"
