"""Uploading a 200 MB zip streams it from disk: peak memory stays small.

The zip is written sparse (a stored member of zeros: local header, a hole, central directory),
so making it costs no disk time; the upload runs ``fbundle deploy`` in a child process that
reports its own tracemalloc peak and peak RSS (VmHWM), against the loopback fake in this process
(which hashes the code part as it streams by and keeps nothing).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

from tests.fakeservice import TOKEN, Config, FakeService

SIZE = 200 * 1024 * 1024
CHILD = """
import json, sys, tracemalloc
from bundler.cli import cli
tracemalloc.start()
try:
    cli(sys.argv[1:], prog_name="fbundle")
except SystemExit as done:
    code = done.code
peak = tracemalloc.get_traced_memory()[1]
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child of a large
# pytest process would report its parent's peak; VmHWM belongs to this process's own memory.
with open("/proc/self/status") as status:
    usage = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"exit": code, "peak": peak, "maxrss_kib": usage}), file=sys.stderr)
"""


def sparse_stored_zip(path: Path, size: int) -> None:
    """A valid zip with one stored member of ``size`` zero bytes, written as a sparse file."""
    zero = bytes(1 << 20)
    crc = 0
    for _ in range(size // len(zero)):
        crc = zlib.crc32(zero, crc)
    crc = zlib.crc32(bytes(size % len(zero)), crc)
    name = b"data.bin"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, crc, size, size,
                        len(name), 0) + name
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x314, 20, 0, 0, 0, 0x21, crc, size,
                          size, len(name), 0, 0, 0, 0, 0o100644 << 16, 0) + name
    with open(path, "wb") as out:
        out.write(local)
        out.seek(size, os.SEEK_CUR)
        out.write(central)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central),
                              len(local) + size, 0))


def deploy_in_child(tmp_path: Path, size: int) -> dict[str, int]:
    """Upload a sparse zip of ``size`` bytes from a child ``fbundle deploy``; its memory stats."""
    folder = tmp_path / str(size)
    folder.mkdir()
    zip_path = folder / "big.zip"
    sparse_stored_zip(zip_path, size)
    (folder / "metadata.json").write_text(json.dumps({
        "definition": {"kind": "hosted", "code_configuration": {
            "runtime": "python_3_13", "entry_point": ["python", "main.py"],
            "dependency_resolution": "bundled"}}}))
    with FakeService(Config(store_code=False)) as fake:
        env = {**os.environ, "FBUNDLE_TOKEN": TOKEN, "FBUNDLE_ENDPOINT": fake.endpoint}
        done = subprocess.run(
            [sys.executable, "-c", CHILD, "deploy", str(zip_path), "--agent", "big",
             "--no-wait"], capture_output=True, text=True, env=env, timeout=120, check=False)
        stats: dict[str, int] = json.loads(done.stderr.strip().splitlines()[-1])
        assert stats["exit"] in (0, None), done.stderr
        code = fake.calls("POST")[0].parts[1]
        assert code.size == zip_path.stat().st_size > size
        assert code.sha256 == fake.agents["big"].latest.sha256  # type: ignore[union-attr]
    return stats


def test_a_200_mb_upload_is_streamed_with_small_peak_memory(tmp_path: Path) -> None:
    """The peak of a 200 MiB upload is that of a 1 MiB one: what the modules deploy imports
    lazily costs the same in both (and differs between installs), the zip costs nothing."""
    small = deploy_in_child(tmp_path, 1024 * 1024)
    stats = deploy_in_child(tmp_path, SIZE)
    grown = stats["peak"] - small["peak"]
    assert grown < 4 * 1024 * 1024, (small, stats)  # a few chunks at most, never the zip
    assert stats["maxrss_kib"] < 150 * 1024, stats  # the whole process; the zip is 200 MiB
    print(f"200 MiB upload: tracemalloc peak {stats['peak'] / 2**20:.1f} MiB "
          f"({grown / 2**20:+.1f} MiB over a 1 MiB upload), "
          f"peak RSS (VmHWM) {stats['maxrss_kib'] / 1024:.1f} MiB")
