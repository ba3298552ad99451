"""The requirement graph reads requirements.txt with the one grammar (bundler.requirements)
and each distribution's Requires-Dist with packaging: chains and exclusions start from what
pip would install, not from the lines that happen to parse as PEP 508."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bundler.model import Bundle, BytesData, Entry
from bundler.sizes import size_table
from bundler.targets import Target
from bundler.wheels import layout_wheel
from tests.support.wheels import make_wheel

TARGET = Target.for_runtime("python_3_13")


def laid_out(wheel: Path) -> list[Entry]:
    return layout_wheel(wheel, hashlib.sha256(wheel.read_bytes()).hexdigest()).entries


def test_chains_start_from_requirements_txt_as_pip_reads_it(tmp_path: Path) -> None:
    """An ``-r`` include, a local wheel named by its file name, a hashed pin with a ``\\``
    continuation: each is a root, as pip (and build, and validate) read them. The old reading
    (each line that parses as PEP 508) found only ``top`` and gave the others no chain."""
    wheels = [make_wheel(tmp_path, "top", "1.0", requires=["middle"]),
              make_wheel(tmp_path, "middle", "1.0"),
              make_wheel(tmp_path, "incl", "1.0"),
              make_wheel(tmp_path, "localw", "1.0", requires=["leaf; python_version >= '3.8'"]),
              make_wheel(tmp_path, "leaf", "2.0"),
              make_wheel(tmp_path, "hashed", "1.0")]
    files = {
        "main.py": b"print('hi')\n",
        "requirements.txt": (b"-r reqs/base.txt\n./wheels/localw-1.0-py3-none-any.whl\n"
                             b"top\nhashed==1.0 \\\n    --hash=sha256:" + b"0" * 64 + b"\n"),
        "reqs/base.txt": b"incl\n",
    }
    entries = [Entry(n, len(b), BytesData(b)) for n, b in files.items()]
    entries += [e for wheel in wheels for e in laid_out(wheel)]
    table = size_table(Bundle(entries).sorted(), TARGET)
    chains = {d.name: d.chain for d in table.dists}
    assert chains == {
        "top": ("requirements.txt", "top"),
        "middle": ("requirements.txt", "top", "middle"),
        "incl": ("requirements.txt", "incl"),
        "localw": ("requirements.txt", "localw"),
        "leaf": ("requirements.txt", "localw", "leaf"),
        "hashed": ("requirements.txt", "hashed"),
    }


def test_a_requirements_txt_pip_refuses_gives_no_chains_not_a_traceback(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "top", "1.0")
    text = b"top\n--no-such-option\n"
    entries = [Entry("requirements.txt", len(text), BytesData(text)), *laid_out(wheel)]
    [dist] = size_table(Bundle(entries).sorted(), TARGET).dists
    assert (dist.name, dist.chain) == ("top", ())
