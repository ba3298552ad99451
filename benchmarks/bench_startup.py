"""Zip size and first-import time of the benchmark agent with and without --slim / --compile.

Builds ``benchmarks/agent`` four ways (plain, ``--slim``, ``--compile``, both) for python_3_13,
then for each zip, several rounds of what a new container does: unpack the zip into a fresh
folder and, in a fresh CPython 3.13 process (``-I``: no user site, no environment), put the
root and ``packages/`` on ``sys.path`` and import what ``main.py`` imports. The time reported
is the import alone (``time.perf_counter`` around it, inside the process), the whole process
(start-up included) and its CPU time (user + system, from ``getrusage``: the number to compare
on a shared machine, where wall time also measures the neighbours); medians. The unpacked
folder is thrown away after each round, so a plain
bundle pays for compiling every module on every round, as a fresh container would.

Needs the real CPython 3.13 (``--python``, default ``PYENV_VERSION=3.13.0 pyenv which
python3.13``) and the package index (the agent's wheels).

Run: ``python benchmarks/bench_startup.py [--rounds 5] [--python PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
AGENT = HERE / "agent"
IMPORTS = "import yaml\nfrom agent_framework.foundry import FoundryChatClient\n" \
          "from azure.identity.aio import DefaultAzureCredential\n"
PROBE = ("import sys, time\n"
         "sys.path[:0] = [sys.argv[1], sys.argv[1] + '/packages']\n"
         "t = time.perf_counter()\n" + IMPORTS +
         "print(time.perf_counter() - t)\n")
VARIANTS = {"plain": [], "--slim": ["--slim"], "--compile": ["--compile"],
            "--slim --compile": ["--slim", "--compile"]}


def find_python() -> str:
    found = subprocess.run(["pyenv", "which", "python3.13"], capture_output=True, text=True,
                           env={**os.environ, "PYENV_VERSION": "3.13.0"}, check=False)
    if found.returncode != 0:
        raise SystemExit("CPython 3.13 not found; pass --python PATH")
    return found.stdout.strip()


def build(project: Path, flags: list[str], python: str, out: Path) -> dict[str, object]:
    command = [sys.executable, "-m", "bundler", "build", str(project), "-o", str(out),
               "--json", *flags]
    if "--compile" in flags:
        command += ["--python", python]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"build {' '.join(flags)} failed: {done.stderr.strip()}")
    result: dict[str, object] = json.loads(done.stdout)
    return result


def first_import(zip_path: Path, python: str, probe: str = PROBE) -> tuple[float, float, float]:
    """(import seconds inside the process, process wall seconds, the process's CPU seconds).
    CPU time is what to compare on a busy machine: wall time there measures the neighbours.
    ``probe`` runs with the unpacked folder as ``sys.argv[1]`` and prints the import seconds
    last."""
    with tempfile.TemporaryDirectory(prefix="fbundle-startup-") as folder:
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(folder)
        start = time.perf_counter()
        child = subprocess.Popen([python, "-I", "-c", probe, folder], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, cwd=folder)
        out, err = child.communicate()
        wall = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if child.returncode != 0:
            raise SystemExit(f"import failed: {err.strip()[-400:]}")
        return float(out.strip().splitlines()[-1]), wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--python", help="the real CPython 3.13")
    args = parser.parse_args()
    python = args.python or find_python()
    with tempfile.TemporaryDirectory(prefix="fbundle-bench-") as work:
        project = Path(work) / "agent"
        shutil.copytree(AGENT, project)
        rows = []
        for label, flags in VARIANTS.items():
            out = Path(work) / f"{label.replace(' ', '').replace('-', '') or 'plain'}.zip"
            result = build(project, flags, python, out)
            with zipfile.ZipFile(out) as archive:
                infos = archive.infolist()
            runs = []
            for _ in range(args.rounds):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                imp, wall, cpu_after = first_import(out, python)
                runs.append((imp, wall, cpu_after - before.ru_utime - before.ru_stime))
            rows.append((label, out.stat().st_size, len(infos), sum(i.file_size for i in infos),
                         statistics.median(r[0] for r in runs),
                         statistics.median(r[1] for r in runs),
                         statistics.median(r[2] for r in runs), result.get("shaped", {})))
        print(f"CPython: {python}; {args.rounds} rounds, medians; fresh unpack every round")
        print("| build | zip | files | unpacked | import (wall) | process (wall) | process CPU |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for label, size, files, unpacked, imp, wall, cpu, _ in rows:
            print(f"| {label} | {size / 1e6:.1f} MB | {files:,} | {unpacked / 1e6:.1f} MB | "
                  f"{imp:.2f} s | {wall:.2f} s | {cpu:.2f} s |")
        for label, *_, shaped in rows:
            saved = shaped.get("slim_saved") if isinstance(shaped, dict) else None
            if saved and saved.get("files"):
                print(f"{label}: slim left out {saved['files']} files, "
                      f"{saved['unpacked_bytes'] / 1e6:.1f} MB unpacked, "
                      f"{saved['zip_bytes'] / 1e6:.1f} MB of zip")


if __name__ == "__main__":
    main()
