"""fbundle build against the plain recipes a user would otherwise pick (issue 8).

Builds one agent three ways, several rounds each, and prints medians and ratios:
- uv + zip:  ``uv pip install --target packages --python-platform x86_64-manylinux2014
  --python-version 3.13 -r requirements.txt && zip -r agent.zip .``
- pip + zip: ``pip install -r requirements.txt --target packages/ --platform
  manylinux2014_x86_64 --python-version 3.13 --implementation cp --only-binary=:all:`` + zip
- fbundle:   ``fbundle build`` fresh (dist/ removed) and no-op (nothing changed), each without
  and with a ``pylock.toml``; and cold (empty fbundle and uv caches) against uv alone, cold.
Also ``fbundle validate`` on the built zip and on a generated 100 MB bundle
(``bench_validate.make_bundle``), and the peak RSS of every build and validate (``os.wait4``'s
rusage of that one child, so one process's peak, not the whole tree's).

Every command runs as a subprocess, interpreter start-up included, as a user would run it.
``zip`` is used when installed; otherwise Python's zipfile with ZIP_DEFLATED level 6 stands in
(the output says which).

The agent: ``benchmarks/agent`` (pinned requirements; needs PyPI). ``--offline-synthetic``
builds instead ~40 generated wheels (~100 MB installed, half incompressible) served by the
test kit's loopback index, so it runs without the internet.

``--uv-lock`` times the uv project path only (issue 13): the agent as a uv project
(``pyproject.toml`` + ``uv.lock`` made by ``uv lock``) built by ``fbundle build``, fresh and
no-op, against uv's own recipe for it: ``uv export --frozen --no-dev --no-emit-project
--no-hashes -o requirements.txt`` + ``uv pip install --target`` + ``zip -r``.

Run: ``python benchmarks/bench_build.py [--rounds 3] [--offline-synthetic] [--skip-pip]
[--uv-lock]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # the test kit (tests.support) and bench_validate

UV_TARGET = ["--python-platform", "x86_64-manylinux2014", "--python-version", "3.13"]
PIP_TARGET = ["--platform", "manylinux2014_x86_64", "--python-version", "3.13",
              "--implementation", "cp", "--only-binary=:all:"]


@dataclass
class Run:
    seconds: float
    peak_kb: int


@dataclass
class Series:
    runs: list[Run] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def peak_mb(self) -> float:
        return max(r.peak_kb for r in self.runs) / 1024


# Commands are started by a small launcher process, itself started before this script grows:
# Linux carries a process's peak RSS across fork and exec, so a child forked from this (large)
# interpreter would report at least our own peak. The launcher reports each child's wait4 rusage.
LAUNCHER = """
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    start = time.perf_counter()
    p = subprocess.Popen(job["argv"], cwd=job["cwd"], env=job["env"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    print(json.dumps({"seconds": time.perf_counter() - start, "peak_kb": usage.ru_maxrss,
                      "rc": os.waitstatus_to_exitcode(status),
                      "output": out.decode(errors="replace")[-3000:]}), flush=True)
"""
_launcher: subprocess.Popen[str] | None = None


def start_launcher() -> None:
    global _launcher
    _launcher = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)


def run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> Run:
    """Run one command to completion; its wall time and its own peak RSS."""
    assert _launcher is not None and _launcher.stdin and _launcher.stdout
    _launcher.stdin.write(json.dumps({"argv": argv, "cwd": str(cwd), "env": env}) + "\n")
    _launcher.stdin.flush()
    answer = json.loads(_launcher.stdout.readline())
    if answer["rc"] != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({answer['rc']}):\n{answer['output']}")
    return Run(answer["seconds"], answer["peak_kb"])


def zip_command(folder: Path, out: Path) -> tuple[list[str], str]:
    """``zip -qr`` if installed, else the zipfile stand-in (deflate level 6)."""
    if zip_bin := shutil.which("zip"):
        return [zip_bin, "-qr", str(out), "."], "zip -r"
    code = ("import os, sys, zipfile\n"
            "with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED, compresslevel=6) as z:\n"
            "    for d, _, fs in os.walk('.'):\n"
            "        for f in fs:\n"
            "            p = os.path.join(d, f)\n"
            "            if os.path.abspath(p) != os.path.abspath(sys.argv[1]): z.write(p)\n")
    return [sys.executable, "-c", code, str(out)], "python zipfile (deflate 6; no zip on PATH)"


def fresh_copy(project: Path, where: Path) -> Path:
    shutil.rmtree(where, ignore_errors=True)
    shutil.copytree(project, where, ignore=shutil.ignore_patterns("dist", "packages",
                                                                  "pylock.toml", "*.zip"))
    return where


class Bench:
    def __init__(self, project: Path, work: Path, rounds: int, env: dict[str, str],
                 index_args: list[str]) -> None:
        self.project = project
        self.work = work
        self.rounds = rounds
        self.env = env
        self.index_args = index_args  # for uv/pip: the synthetic index, else nothing
        self.fbundle = [sys.executable, "-m", "bundler"]
        self.caches = work / "caches"
        self.zip_label = ""

    def env_with(self, **extra: str) -> dict[str, str]:
        env = dict(self.env)
        env.setdefault("FBUNDLE_CACHE_DIR", str(self.caches / "fbundle"))
        env.setdefault("UV_CACHE_DIR", str(self.caches / "uv"))
        env.setdefault("PIP_CACHE_DIR", str(self.caches / "pip"))
        env.update(extra)
        return env

    def repeat(self, prepare: Callable[[], None], step: Callable[[], Run | None]) -> Series:
        series = Series()
        for _ in range(self.rounds):
            prepare()
            result = step()
            if result is not None:
                series.runs.append(result)
        return series

    # -- the plain recipes -------------------------------------------------------------------
    def recipe(self, installer: list[str], env: dict[str, str] | None = None) -> tuple[Run, Run]:
        folder = fresh_copy(self.project, self.work / "recipe")
        install = run([*installer, *self.index_args], cwd=folder, env=env or self.env_with())
        argv, self.zip_label = zip_command(folder, self.work / "recipe.zip")
        (self.work / "recipe.zip").unlink(missing_ok=True)
        zipped = run(argv, cwd=folder, env=self.env)
        return install, zipped

    def uv_install(self) -> list[str]:
        return ["uv", "pip", "install", "-q", "--target", "packages", *UV_TARGET,
                "-r", "requirements.txt"]

    def pip_install(self) -> list[str]:
        return [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                "-r", "requirements.txt", "--target", "packages/", *PIP_TARGET]

    def recipe_series(self, installer: list[str]) -> tuple[Series, Series, Series]:
        installs, zips, total = Series(), Series(), Series()
        self.recipe(installer)  # warm
        for _ in range(self.rounds):
            install, zipped = self.recipe(installer)
            installs.runs.append(install)
            zips.runs.append(zipped)
            total.runs.append(Run(install.seconds + zipped.seconds,
                                  max(install.peak_kb, zipped.peak_kb)))
        return installs, zips, total

    # -- fbundle -----------------------------------------------------------------------------
    def fbundle_series(self, *, locked: bool, refresh: bool = False) -> tuple[Series, Series,
                                                                               Path]:
        name = "locked" if locked else "refresh" if refresh else "unlocked"
        folder = fresh_copy(self.project, self.work / name)
        env = self.env_with()
        if locked:
            run([*self.fbundle, "lock", "."], cwd=folder, env=env)
        build = [*self.fbundle, "build", ".", *(["--refresh"] if refresh else [])]
        run(build, cwd=folder, env=env)  # warm

        def remove_dist() -> None:
            shutil.rmtree(folder / "dist", ignore_errors=True)

        fresh = self.repeat(remove_dist, lambda: run(build, cwd=folder, env=env))
        noop = self.repeat(lambda: None, lambda: run(build, cwd=folder, env=env))
        zips = list((folder / "dist").glob("*.zip"))
        return fresh, noop, zips[0]

    def cold(self, *, locked: bool) -> tuple[Series, Series]:
        """fbundle with empty caches vs ``uv pip install --target`` with an empty cache."""
        ours, theirs = Series(), Series()
        folder = fresh_copy(self.project, self.work / "cold")
        if locked:
            run([*self.fbundle, "lock", "."], cwd=folder, env=self.env_with())
        for i in range(self.rounds):
            cold = self.work / f"cold-caches-{i}"
            env = self.env_with(FBUNDLE_CACHE_DIR=str(cold / "fbundle"),
                                UV_CACHE_DIR=str(cold / "uv"))
            shutil.rmtree(folder / "dist", ignore_errors=True)
            ours.runs.append(run([*self.fbundle, "build", "."], cwd=folder, env=env))
            shutil.rmtree(cold, ignore_errors=True)
            env = self.env_with(UV_CACHE_DIR=str(cold / "uv"))
            theirs.runs.append(self.recipe(self.uv_install(), env)[0])
            shutil.rmtree(cold, ignore_errors=True)
        return ours, theirs

    # -- a uv project (pyproject.toml + uv.lock) ----------------------------------------------
    def uv_project(self, where: Path) -> Path:
        """The agent as a uv project: its pins as [project].dependencies, locked by uv."""
        folder = fresh_copy(self.project, where)
        lines = [line.strip() for line in (folder / "requirements.txt").read_text().splitlines()
                 if line.strip() and not line.startswith("#")]
        (folder / "requirements.txt").unlink()
        deps = "".join(f'    "{line}",\n' for line in lines)
        (folder / "pyproject.toml").write_text(
            '[project]\nname = "agent"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
            f"dependencies = [\n{deps}]\n")
        run(["uv", "lock", "-q", *self.index_args], cwd=folder, env=self.env_with())
        return folder

    def uv_lock_recipe(self) -> tuple[Series, Series]:
        """uv's recipe for a uv project: export the lock, install it for the target, zip."""
        folder = self.uv_project(self.work / "uv-recipe")
        export = ["uv", "export", "-q", "--frozen", "--no-dev", "--no-emit-project",
                  "--no-hashes", "-o", "requirements.txt"]
        argv, self.zip_label = zip_command(folder, self.work / "uv-recipe.zip")
        steps, total = Series(), Series()

        def once() -> Run:
            shutil.rmtree(folder / "packages", ignore_errors=True)
            (folder / "requirements.txt").unlink(missing_ok=True)
            (self.work / "uv-recipe.zip").unlink(missing_ok=True)
            runs = [run(export, cwd=folder, env=self.env_with()),
                    run([*self.uv_install(), *self.index_args], cwd=folder, env=self.env_with()),
                    run(argv, cwd=folder, env=self.env)]
            return Run(sum(r.seconds for r in runs), max(r.peak_kb for r in runs))

        once()  # warm
        for _ in range(self.rounds):
            total.runs.append(once())
        steps.runs = total.runs
        return steps, total

    def uv_lock_fbundle(self) -> tuple[Series, Series]:
        folder = self.uv_project(self.work / "uv-fbundle")
        env = self.env_with()
        build = [*self.fbundle, "build", "."]
        run(build, cwd=folder, env=env)  # warm

        def remove_dist() -> None:
            shutil.rmtree(folder / "dist", ignore_errors=True)

        fresh = self.repeat(remove_dist, lambda: run(build, cwd=folder, env=env))
        noop = self.repeat(lambda: None, lambda: run(build, cwd=folder, env=env))
        return fresh, noop

    def validate(self, zip_path: Path) -> Series:
        argv = [*self.fbundle, "validate", str(zip_path)]
        run(argv, cwd=self.work, env=self.env)
        return self.repeat(lambda: None, lambda: run(argv, cwd=self.work, env=self.env))


def line(label: str, series: Series, against: Series | None = None, what: str = "") -> None:
    ratio = f"  {series.median / against.median:5.2f}x {what}" if against else ""
    print(f"  {label:<40} {series.median:7.3f} s  peak {series.peak_mb:6.0f} MB{ratio}",
          flush=True)


def report_uv_lock(bench: Bench) -> None:
    """The uv project path: fbundle from uv.lock against uv export + uv pip install + zip."""
    print(f"rounds: {bench.rounds} (medians); cpus: {os.cpu_count()}; python "
          f"{sys.version.split()[0]}", flush=True)
    _, recipe = bench.uv_lock_recipe()
    print(f"a uv project (pyproject.toml + uv.lock), warm caches; archiver: {bench.zip_label}")
    line("uv export + uv pip install --target + zip", recipe)
    fresh, noop = bench.uv_lock_fbundle()
    line("fbundle build fresh, from uv.lock", fresh, recipe, "of uv+zip")
    line("fbundle build no-op, from uv.lock", noop, recipe, "of uv+zip (target <= 0.15)")


def report(bench: Bench, skip_pip: bool, skip_cold: bool) -> None:
    print(f"rounds: {bench.rounds} (medians); cpus: {os.cpu_count()}; python "
          f"{sys.version.split()[0]}", flush=True)
    uv_install, uv_zip, uv_total = bench.recipe_series(bench.uv_install())
    print(f"archiver for the recipes: {bench.zip_label}")
    print("plain recipes (warm caches):")
    line("uv pip install --target", uv_install)
    line(bench.zip_label.split(" (")[0], uv_zip)
    line("uv + zip", uv_total)
    if not skip_pip:
        _, _, pip_total = bench.recipe_series(bench.pip_install())
        line("pip + zip (the article's recipe)", pip_total, uv_total, "of uv+zip")
    print("fbundle build (warm caches):")
    zip_path = None
    kinds = {(False, False): "no lock (last resolution < 10 min)",
             (False, True): "no lock, --refresh (resolver runs)",
             (True, False): "with pylock.toml"}
    for (locked, refresh), kind in kinds.items():
        fresh, noop, zip_path = bench.fbundle_series(locked=locked, refresh=refresh)
        line(f"fresh, {kind}", fresh, uv_total, "of uv+zip (target <= 0.5)")
        line(f"no-op, {kind}", noop, uv_total, "of uv+zip (target <= 0.1)")
    if not skip_cold:
        print("cold (empty fbundle and uv caches):")
        for locked in (False, True):
            ours, theirs = bench.cold(locked=locked)
            kind = "with pylock.toml" if locked else "no lock"
            line("uv pip install --target, cold", theirs)
            line(f"fbundle build, cold, {kind}", ours, theirs, "of uv alone (target <= 1.2)")
    assert zip_path is not None
    print("fbundle validate:")
    size = zip_path.stat().st_size / 1e6
    line(f"the built bundle ({size:.0f} MB zip)", bench.validate(zip_path))
    from benchmarks.bench_validate import make_bundle

    big = bench.work / "validate-100mb.zip"
    total = make_bundle(big, 100)
    line(f"generated bundle ({total / 1e6:.0f} MB unzipped, {big.stat().st_size / 1e6:.0f} MB "
         "zip; target < 1 s)", bench.validate(big))


# -- the offline synthetic set ----------------------------------------------------------------
WORDS = [b"def", b"return", b"self", b"import", b"class", b"value", b"if", b"else", b"None",
         b"for", b"in", b"yield", b"data", b"name", b"(", b")", b":", b"\n    "]


def synthetic_wheels(folder: Path, count: int = 40, megabytes: int = 100,
                     seed: int = 8) -> list[str]:
    """``count`` wheels of ~``megabytes`` MB installed in all: Python-like modules and
    incompressible "native" blobs, half and half; returns the requirement lines."""
    from tests.support.wheels import make_wheel

    rng = random.Random(seed)
    per_wheel = megabytes * 1_000_000 // count
    names = []
    for d in range(count):
        name = f"synth-dist{d:02d}"
        module = name.replace("-", "_")
        files: dict[str, bytes] = {f"{module}/__init__.py": b"VALUE = 1\n"}
        used, i = 0, 0
        while used < per_wheel:
            if i % 4 == 3:
                data = rng.randbytes(min(400_000, per_wheel - used))
                files[f"{module}/_native{i}.so.data"] = data
            else:
                data = b" ".join(rng.choice(WORDS) for _ in range(6_000))
                files[f"{module}/mod{i}.py"] = data
            used += len(data)
            i += 1
        make_wheel(folder, name, "1.0", files=files)
        names.append(f"{name}==1.0")
    return names


def loopback_env(url: str) -> dict[str, str]:
    """This environment, with pip and uv pointed at the loopback index only."""
    env = dict(os.environ)
    env["PIP_CONFIG_FILE"] = os.devnull  # only the loopback index
    env["PIP_INDEX_URL"] = env["UV_INDEX_URL"] = env["UV_DEFAULT_INDEX"] = url
    return env


@contextmanager
def synthetic_project(work: Path) -> Iterator[tuple[Path, dict[str, str], list[str]]]:
    from tests.support.index import SimpleIndex

    wheels = work / "wheels"
    requirements = synthetic_wheels(wheels)
    project = fresh_copy(HERE / "agent", work / "synthetic-agent")
    (project / "main.py").write_text("print('synthetic agent')\n")
    (project / "requirements.txt").write_text("\n".join(requirements) + "\n")
    with SimpleIndex(wheels) as index:
        yield project, loopback_env(index.url), ["--index-url", index.url]


@contextmanager
def sdist_project(work: Path) -> Iterator[tuple[Path, dict[str, str], list[str]]]:
    """The sdist path: 12 generated wheels (~30 MB), 6 pure sdists and a local package
    (``./libs/mylib``), all built by the test kit's PEP 517 backend from a loopback index."""
    from tests.support.index import SimpleIndex
    from tests.support.sdists import backend_wheel, make_sdist, write_project

    wheels = work / "sdist-index"
    requirements = synthetic_wheels(wheels, count=12, megabytes=30)
    backend_wheel(wheels)
    for d in range(6):
        make_sdist(wheels, f"synth-src{d}", "1.0")
        requirements.append(f"synth-src{d}==1.0")
    project = fresh_copy(HERE / "agent", work / "sdist-agent")
    write_project(project / "libs" / "mylib", "mylib", "0.1")
    requirements.append("./libs/mylib")
    (project / "main.py").write_text("print('sdist agent')\n")
    (project / "requirements.txt").write_text("\n".join(requirements) + "\n")
    with SimpleIndex(wheels) as index:
        yield project, loopback_env(index.url), ["--index-url", index.url]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--offline-synthetic", action="store_true",
                        help="~40 generated wheels (~100 MB) on a loopback index; no internet")
    parser.add_argument("--sdists", action="store_true",
                        help="the sdist path: 12 wheels, 6 pure sdists and a local package, "
                        "built from a loopback index; no internet")
    parser.add_argument("--skip-pip", action="store_true", help="leave out the pip recipe")
    parser.add_argument("--skip-cold", action="store_true", help="leave out the cold runs")
    parser.add_argument("--work", type=Path, help="keep the work folder here (default: temp)")
    parser.add_argument("--uv-lock", action="store_true",
                        help="only the uv project path: fbundle from uv.lock vs uv's recipe")
    args = parser.parse_args()
    start_launcher()
    with tempfile.TemporaryDirectory(prefix="fbundle-bench-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.sdists:
            print("agent: 12 generated wheels (~30 MB), 6 pure sdists, ./libs/mylib "
                  "(loopback index)")
            with sdist_project(work) as (project, env, index_args):
                report(Bench(project, work, args.rounds, env, index_args), True, args.skip_cold)
        elif args.offline_synthetic:
            print("agent: synthetic (40 generated wheels, ~100 MB installed, loopback index)")
            with synthetic_project(work) as (project, env, index_args):
                bench = Bench(project, work, args.rounds, env, index_args)
                if args.uv_lock:
                    report_uv_lock(bench)
                else:
                    report(bench, args.skip_pip, args.skip_cold)
        else:
            print(f"agent: {HERE / 'agent'} (requirements pinned; PyPI)")
            bench = Bench(HERE / "agent", work, args.rounds, dict(os.environ), [])
            if args.uv_lock:
                report_uv_lock(bench)
            else:
                report(bench, args.skip_pip, args.skip_cold)


if __name__ == "__main__":
    main()
