"""How long ``fbundle validate`` takes on a 100 MB bundle, against ``python -m zipfile -t``.

Generates a realistic bundled-Python zip in a temp dir (sources, requirements.txt, and
``packages/`` of 40 distributions with METADATA, WHEEL and a correct RECORD; half the bytes are
incompressible "binary" data, half Python-like text), then times, median of several rounds:
- ``fbundle validate`` in-process (click, all rules, RECORD hashes verified);
- ``zipfile.ZipFile.testzip()``, which is what ``python -m zipfile -t`` runs (CRC only).
Both are timed in-process so interpreter start-up does not hide the difference.

Run: ``python benchmarks/bench_validate.py [--mb 100] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import random
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

from click.testing import CliRunner

from bundler.cli import cli
from bundler.model import BytesData, Entry
from bundler.write import write_zip

WORDS = [b"def", b"return", b"self", b"import", b"class", b"value", b"if", b"else", b"None",
         b"for", b"in", b"yield", b"data", b"name", b"(", b")", b":", b"\n    "]


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
        b"=").decode()


def make_bundle(path: Path, megabytes: int, seed: int = 0) -> int:
    """Write the benchmark bundle; returns its uncompressed size in bytes."""
    rng = random.Random(seed)
    entries = [Entry("main.py", 0, BytesData(b""))]
    target = megabytes * 1_000_000
    requirements, total, dists = [], 0, 40
    per_dist = target // dists
    for d in range(dists):
        name, version = f"dist{d:02d}", "1.0"
        files: dict[str, bytes] = {}
        used = 0
        i = 0
        while used < per_dist:
            if i % 2:
                data = rng.randbytes(min(256_000, per_dist - used))  # native-library-like
                files[f"{name}/_lib{i}.bin"] = data
            else:
                data = b" ".join(rng.choice(WORDS) for _ in range(8_000))
                files[f"{name}/mod{i}.py"] = data
            used += len(data)
            i += 1
        info = f"{name}-{version}.dist-info"
        files[f"{info}/METADATA"] = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}"
                                     "\n").encode()
        files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: " \
                                 b"true\nTag: py3-none-any\n"
        rows = [f"{p},{_record_hash(b)},{len(b)}" for p, b in files.items()]
        files[f"{info}/RECORD"] = ("\n".join([*rows, f"{info}/RECORD,,"]) + "\n").encode()
        for p, b in files.items():
            entries.append(Entry(f"packages/{p}", len(b), BytesData(b)))
        total += used
        requirements.append(name)
    entries.append(Entry("main.py", 14, BytesData(b"print('hello')\n")))
    entries = [e for e in entries if e.size or e.name != "main.py"]
    entries.append(Entry("requirements.txt", 0, BytesData("\n".join(requirements).encode())))
    entries = [Entry(e.name, len(e.read()), e.data) for e in entries]
    write_zip(entries, path)
    return total


def _median(fn: object, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.zip"
        total = make_bundle(path, args.mb)
        runner = CliRunner()

        def validate() -> None:
            result = runner.invoke(cli, ["validate", str(path)])
            if result.exit_code != 0:
                raise SystemExit(f"benchmark bundle did not validate clean:\n{result.output}")

        def testzip() -> None:
            with zipfile.ZipFile(path) as archive:
                if archive.testzip() is not None:
                    raise SystemExit("zipfile -t found a bad member")

        validate()  # warm the page cache
        ours = _median(validate, args.rounds)
        plain = _median(testzip, args.rounds)
        print(f"bundle: {total / 1e6:.0f} MB uncompressed, {os.path.getsize(path) / 1e6:.0f} MB "
              f"zip, {len(zipfile.ZipFile(path).infolist())} entries, {os.cpu_count()} cpus")
        print(f"fbundle validate   median {ours:.3f} s over {args.rounds} rounds")
        print(f"python -m zipfile -t median {plain:.3f} s (CRC check only)")
        print(f"ratio validate / zipfile -t: {ours / plain:.2f}")


if __name__ == "__main__":
    main()
