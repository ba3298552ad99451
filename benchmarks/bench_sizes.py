"""What ``--slim`` and ``--compile`` do to the heavy packages real agents carry (issue 17).

Builds the data agent (``benchmarks/data_agent``: numpy, pandas, pyarrow from PyPI) for
python_3_13 as two stacks — numpy + pandas, and numpy + pandas + pyarrow — four ways each
(plain, ``--slim``, ``--compile``, both), and reports per build: the zip's size, what it
unpacks to, its files, what ``--slim`` left out, and the first import of the stack in a fresh
CPython 3.13 process (``-I``), on a fresh unpack of the zip every round, as a new container
does (so a bundle without ``--compile`` compiles every module it imports, every round). The
probe imports the stack, then computes with it (a DataFrame sum; with pyarrow a Parquet round
trip), so a slimmed bundle that lost something it needs fails the benchmark. Times are medians;
the child's CPU time (user + system) is the column to compare on a shared machine. Ratios are
against the plain build of the same stack.

Wheels come from the package index (the first build of a stack fetches them); ``--compile``
caches its bytecode per source sha256, so the build times after the first compiling build of a
stack are warm.

Run: ``python benchmarks/bench_sizes.py [--rounds 5] [--python PATH] [--stack NAME]...``.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_startup import VARIANTS, build, find_python, first_import  # noqa: E402

AGENT = HERE / "data_agent"
STACKS: dict[str, tuple[list[str], str, str]] = {
    # name: (distributions from data_agent/requirements.txt, imports, what to compute)
    "numpy+pandas": (["numpy", "pandas"], "import numpy as np\nimport pandas as pd\n",
                     "f = pd.DataFrame({'x': np.arange(1000)})\n"
                     "assert int(f['x'].sum()) == 499500\n"),
    "numpy+pandas+pyarrow": (
        ["numpy", "pandas", "pyarrow"],
        "import io\nimport numpy as np\nimport pandas as pd\nimport pyarrow as pa\n"
        "import pyarrow.parquet as pq\n",
        "f = pd.DataFrame({'x': np.arange(1000)})\nb = io.BytesIO()\n"
        "pq.write_table(pa.Table.from_pandas(f), b)\n"
        "assert int(pq.read_table(io.BytesIO(b.getvalue())).to_pandas()['x'].sum()) == 499500\n"),
}


@dataclass
class Row:
    label: str
    zip_bytes: int
    files: int
    unpacked: int
    build_seconds: float
    import_wall: float
    process_cpu: float
    slim_saved: dict[str, Any]


def probe(imports: str, compute: str) -> str:
    return ("import sys, time\n"
            "sys.path[:0] = [sys.argv[1], sys.argv[1] + '/packages']\n"
            "t = time.perf_counter()\n" + imports +
            "took = time.perf_counter() - t\n" + compute + "print(took)\n")


def make_project(work: Path, dists: list[str]) -> Path:
    project = work / "agent"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(AGENT, project)
    lines = (AGENT / "requirements.txt").read_text().splitlines()
    kept = [line for line in lines if line.startswith("#") or line.split("==")[0] in dists]
    (project / "requirements.txt").write_text("\n".join(kept) + "\n")
    if "pyarrow" not in dists:  # the entry point imports only what the stack has
        main = (project / "main.py").read_text()
        (project / "main.py").write_text(
            "\n".join(line for line in main.splitlines() if "pyarrow" not in line
                      and "pq." not in line and "back" not in line) + "\n")
    return project


def measure(stack: str, python: str, rounds: int, work: Path) -> list[Row]:
    dists, imports, compute = STACKS[stack]
    project = make_project(work, dists)
    code = probe(imports, compute)
    rows = []
    for label, flags in VARIANTS.items():
        out = work / f"{stack}-{label.replace(' ', '').replace('-', '') or 'plain'}.zip"
        start = time.perf_counter()
        result = build(project, flags, python, out)
        seconds = time.perf_counter() - start
        with zipfile.ZipFile(out) as archive:
            infos = archive.infolist()
        runs = []
        for _ in range(rounds):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            imp, wall, cpu_after = first_import(out, python, code)
            runs.append((imp, wall, cpu_after - before.ru_utime - before.ru_stime))
        shaped = result.get("shaped")
        saved = shaped.get("slim_saved", {}) if isinstance(shaped, dict) else {}
        rows.append(Row(label, out.stat().st_size, len(infos),
                        sum(i.file_size for i in infos), seconds,
                        statistics.median(r[0] for r in runs),
                        statistics.median(r[2] for r in runs), saved))
    return rows


def report(stack: str, rows: list[Row]) -> None:
    base = rows[0]
    print(f"\n{stack}")
    print("| build | zip | unpacked | files | build (wall) | first import (wall) | "
          "import process CPU | zip ratio | unpacked ratio | CPU ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r.label} | {r.zip_bytes / 1e6:.1f} MB | {r.unpacked / 1e6:.1f} MB | "
              f"{r.files:,} | {r.build_seconds:.1f} s | {r.import_wall:.2f} s | "
              f"{r.process_cpu:.2f} s | {r.zip_bytes / base.zip_bytes:.3f} | "
              f"{r.unpacked / base.unpacked:.3f} | {r.process_cpu / base.process_cpu:.2f} |")
    for r in rows:
        if r.slim_saved.get("files"):
            print(f"{r.label}: slim left out {r.slim_saved['files']} files, "
                  f"{r.slim_saved['unpacked_bytes'] / 1e6:.1f} MB unpacked, "
                  f"{r.slim_saved['zip_bytes'] / 1e6:.1f} MB of zip")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--python", help="the real CPython 3.13")
    parser.add_argument("--stack", action="append", choices=sorted(STACKS),
                        help="measure only these stacks (repeatable; default all)")
    args = parser.parse_args()
    python = args.python or find_python()
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    print(f"CPython {version} ({python}); {args.rounds} rounds, medians; fresh unpack every "
          "round; ratios against the plain build of the same stack")
    with tempfile.TemporaryDirectory(prefix="fbundle-bench-sizes-") as work:
        for stack in args.stack or list(STACKS):
            report(stack, measure(stack, python, args.rounds, Path(work)))


if __name__ == "__main__":
    main()
