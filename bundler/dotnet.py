"""The ``dotnet_10`` runtime: a .NET project folder -> bundle entries.

Two shapes, as the service's article describes them:

* ``bundled``: the output of ``dotnet publish -c Release -r linux-x64 --self-contained false``,
  rooted at the zip root (``MyAgent.dll``, ``MyAgent.runtimeconfig.json``, ``MyAgent.deps.json``
  side by side). The service runs it as-is, so what a linux-x64 host can never load is dropped
  (``runtimes/<rid>/`` for other platforms) or refused (native Windows PE files).
* ``remote_build``: the project's sources without build output (``bin/``, ``obj/``,
  ``publish/``, ``.vs/``, ``*.user``); the service restores and publishes them itself.

Publishing goes into a fresh temporary folder that is deleted before :func:`plan_dotnet`
returns, so the publish output is read into memory (:class:`~bundler.model.BytesData`): a
framework-dependent publish is tens of MB, and entries that own their bytes need no cleanup by
the caller. The ``dotnet`` process is started through an injectable :class:`Runner`, so tests
observe a real stand-in executable instead of patching this module.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bundler.binaries import inspect_binary
from bundler.checks.dotnet import PROJECT_SUFFIXES
from bundler.collect import Collection, collect_sources, scan_sources
from bundler.errors import BuildError, UsageError
from bundler.model import EXEC_MODE, FILE_MODE, BytesData, Entry
from bundler.project import DEFAULT_ENTRY_POINT, ProjectSpec
from bundler.runner import Runner
from bundler.targets import DOTNET_RUNTIMES

log = logging.getLogger(__name__)
publish_log = logging.getLogger(f"{__name__}.publish")

RID = "linux-x64"
# Build output and IDE state that never belongs in a remote_build upload (gitignore syntax).
REMOTE_BUILD_EXCLUDES = ("bin/", "obj/", "publish/", ".vs/", "*.user")
# runtimes/<rid>/ folders a framework-dependent linux-x64 app can load; every other one is
# dropped (win-*, osx-*, and other architectures or libcs the host never probes).
KEPT_RIDS = frozenset({"linux-x64", "linux", "unix", "any"})
TAIL_LINES = 20
INSTALL_HINT = ("install the .NET 10 SDK (https://dot.net/download, or the dotnet-install "
                "script: https://dot.net/v1/dotnet-install.sh --channel 10.0) and put `dotnet` "
                "on PATH")
# Quiet, reproducible, and the same whatever the user's shell has set up.
_ENV = {
    "DOTNET_CLI_TELEMETRY_OPTOUT": "1",
    "DOTNET_NOLOGO": "1",
    "DOTNET_SKIP_FIRST_TIME_EXPERIENCE": "1",
    "DOTNET_CLI_UI_LANGUAGE": "en",
    "MSBUILDTERMINALLOGGER": "off",
}


@dataclass
class SubprocessRunner:
    """The real runner. With ``echo`` set, each output line is also logged (at INFO, on the
    ``bundler.dotnet.publish`` logger) as it arrives, so a long restore shows progress under
    ``fbundle -v``; the library itself never writes to the terminal."""

    echo: bool = False

    def __call__(self, argv: Sequence[str], *, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None,
                 timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run to completion; stdout holds stdout and stderr interleaved, as a terminal shows
        them (``timeout`` is not applied: a publish takes as long as it takes)."""
        lines: list[str] = []
        try:
            process = subprocess.Popen(
                list(argv), cwd=cwd, env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                encoding="utf-8", errors="replace",
            )
        except OSError as error:
            raise UsageError(f"cannot run {argv[0]} ({error.strerror or error})",
                             INSTALL_HINT) from None
        assert process.stdout is not None  # set by stdout=PIPE
        with process:
            for line in process.stdout:
                lines.append(line)
                if self.echo:
                    publish_log.info("%s", line.rstrip("\n"))
        return subprocess.CompletedProcess(list(argv), process.wait(), "".join(lines), "")


@dataclass(frozen=True)
class DotnetProject:
    """What fbundle reads from a project file (it does not evaluate MSBuild; see ``_read``)."""

    path: Path
    assembly: str
    frameworks: tuple[str, ...]  # empty when the project file does not say
    multi_targeted: bool  # declared with <TargetFrameworks> (plural)

    @property
    def dll(self) -> str:
        return f"{self.assembly}.dll"


def find_project(root: Path, project_file: str | None = None) -> Path:
    """The one ``.csproj``/``.fsproj`` at ``root``, or ``project_file`` (relative to ``root``)."""
    if project_file is not None:
        path = Path(project_file)
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise UsageError(f"{project_file}: no such project file",
                             f"pass the path of a .csproj or .fsproj (relative to {root})")
        if path.suffix not in PROJECT_SUFFIXES:
            raise UsageError(f"{project_file}: not a .csproj or .fsproj file",
                             "pass the project file itself with --project")
        return path.resolve()
    found = sorted(p for p in root.iterdir() if p.suffix in PROJECT_SUFFIXES and p.is_file())
    if not found:
        raise UsageError(f"{root}: no .csproj or .fsproj in the project folder",
                         "run fbundle in the folder that holds the project file, "
                         "or pass --project")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise UsageError(f"{root}: several project files ({names})",
                         f"pick one with --project, e.g. --project {found[0].name}")
    return found[0].resolve()


def read_project(path: Path) -> DotnetProject:
    """Target frameworks and assembly name from the project file (and ``Directory.Build.props``
    above it, where many repositories set ``TargetFramework``).

    Only literal property values are read; a value that uses ``$(...)`` is left to MSBuild, and
    ``bundled`` builds check the framework again in the publish output's runtimeconfig.json.
    """
    props = _properties(path)
    for folder in _upwards(path.parent):
        build_props = folder / "Directory.Build.props"
        if build_props.is_file():
            for key, value in _properties(build_props).items():
                props.setdefault(key, value)
            break  # MSBuild imports only the nearest one (it may import further itself)
    assembly = props.get("assemblyname") or path.stem
    if "$(" in assembly:
        assembly = path.stem
    plural = props.get("targetframeworks")
    single = props.get("targetframework")
    raw = plural if plural is not None else single or ""
    frameworks = tuple(f.strip() for f in raw.split(";") if f.strip())
    return DotnetProject(path, assembly, frameworks, plural is not None and single is None)


def _upwards(folder: Path) -> list[Path]:
    folder = folder.resolve()
    return [folder, *folder.parents]


def _properties(path: Path) -> dict[str, str]:
    """The first value of each property in the file's ``<PropertyGroup>``s (keys lowercased:
    MSBuild property names are case-insensitive)."""
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError) as error:
        raise UsageError(f"{path}: not a readable project file ({error})",
                         "fix the XML (dotnet build shows where)") from None
    values: dict[str, str] = {}
    for group in tree.getroot():
        if _local(group.tag) != "PropertyGroup":
            continue
        for prop in group:
            key = _local(prop.tag).lower()
            if isinstance(prop.tag, str) and key not in values and prop.text:
                values[key] = prop.text.strip()
    return values


def _local(tag: object) -> str:
    """An element name without its namespace (old-style projects use the MSBuild 2003 one)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def check_framework(project: DotnetProject, runtime: str) -> str:
    """The TFM to publish for ``runtime``; a clear error when the project does not target it."""
    tfm = DOTNET_RUNTIMES[runtime]
    if not project.frameworks:
        log.warning("%s: no literal TargetFramework found; assuming %s (the service needs it)",
                    project.path.name, tfm)
        return tfm
    if any("$(" in f for f in project.frameworks):
        log.warning("%s: TargetFramework uses MSBuild properties (%s); cannot check it is %s",
                    project.path.name, ";".join(project.frameworks), tfm)
        return tfm
    if tfm not in project.frameworks:
        element = "TargetFrameworks" if project.multi_targeted else "TargetFramework"
        raise UsageError(
            f"{project.path.name} targets {';'.join(project.frameworks)}, but runtime "
            f"{runtime} runs {tfm}",
            f"set <{element}>{tfm}</{element}> in {project.path.name} "
            "(or pick the runtime that matches the project)",
        )
    return tfm


def entry_point(spec: ProjectSpec, project: DotnetProject) -> list[str]:
    """The entry point the agent runs: metadata.json's, or ``["dotnet", "<Assembly>.dll"]`` when
    the metadata left the (Python) default in place."""
    if not spec.entry_point or spec.entry_point == DEFAULT_ENTRY_POINT:
        return ["dotnet", project.dll]
    return list(spec.entry_point)


def publish_argv(dotnet: str, project: DotnetProject, output: Path, tfm: str, *,
                 verbose: bool = False) -> list[str]:
    """The article's publish command, plus what makes it reproducible and quiet.

    ``-f`` is added only for a multi-targeted project, where ``dotnet publish -o`` needs one
    framework to be chosen.
    """
    argv = [dotnet, "publish", str(project.path), "-c", "Release", "-r", RID,
            "--self-contained", "false", "-o", str(output),
            "-p:Deterministic=true", "-p:ContinuousIntegrationBuild=true", "--nologo",
            "-v", "minimal" if verbose else "quiet"]
    if project.multi_targeted:
        argv[3:3] = ["-f", tfm]
    return argv


@dataclass(frozen=True)
class DotnetInputs:
    """What decides a .NET bundle, known before anything is published: the project file, its
    framework, the effective entry point and the project's sources (what remote_build ships and
    what the input key hashes, so an unchanged project is noticed without publishing)."""

    project: DotnetProject
    tfm: str
    entry: list[str]
    sources: list[Entry]
    #: remote_build: the collection that shipped ``sources``, with what it found (FB112 for a
    #: secret a ``!`` pattern ships, FB114 for files git ignores); bundled: None (the zip is
    #: the publish output, so source files git ignores do not ship from here).
    collection: Collection | None = None


def read_dotnet_inputs(spec: ProjectSpec, *, project_file: str | None = None,
                       output: Path | None = None) -> DotnetInputs:
    """Find and read the project (``output``: the zip being written, never a source).

    Raises :class:`UsageError` (exit 2) for a missing or ambiguous project file, a project that
    does not target the runtime's framework, or (remote_build) a project file the zip cannot
    have at its root.
    """
    if spec.runtime not in DOTNET_RUNTIMES:
        raise UsageError(f"runtime {spec.runtime} is not a .NET runtime",
                         f"use one of: {', '.join(DOTNET_RUNTIMES)}")
    path = find_project(spec.root, project_file)
    project = read_project(path)
    tfm = check_framework(project, spec.runtime)
    entry = entry_point(spec, project)
    if spec.mode == "remote_build":
        collection = collect_remote_sources(spec.root, project, entry, output=output)
        return DotnetInputs(project, tfm, entry, collection.entries, collection)
    sources = collect_sources(spec.root.resolve(), REMOTE_BUILD_EXCLUDES, output=output)
    return DotnetInputs(project, tfm, entry, sources)


def effective_definition(spec: ProjectSpec, entry: list[str]) -> ProjectSpec:
    """``spec`` with the entry point the bundle really runs written into its definition, so
    the ``<agent>.metadata.json`` beside the zip (what deploy sends) says what was built."""
    definition = dict(spec.metadata.get("definition") or {})
    code = {**dict(definition.get("code_configuration") or {}), "entry_point": list(entry)}
    metadata = {**spec.metadata, "definition": {**definition, "code_configuration": code}}
    return replace(spec, entry_point=list(entry), metadata=metadata)


def dotnet_entries(spec: ProjectSpec, inputs: DotnetInputs, *, verbose: bool = False,
                   runner: Runner | None = None) -> list[Entry]:
    """The bundle's entries: the sources (remote_build) or the publish output (bundled)."""
    if spec.mode == "remote_build":
        return inputs.sources
    return publish(spec.root, inputs.project, inputs.tfm, verbose=verbose, runner=runner)


def plan_dotnet(
    spec: ProjectSpec,
    *,
    project_file: str | None = None,
    verbose: bool = False,
    runner: Runner | None = None,
    output: Path | None = None,
) -> list[Entry]:
    """The bundle entries for a ``dotnet_10`` project, in either dependency-resolution mode.

    Whether they can run (entry assembly, runtimeconfig, native Windows files) is judged by the
    FB7xx/FB301 rules, as for any bundle: ``build`` refuses a plan those rules fail.
    Raises :class:`BuildError` (exit 1) when the publish fails.
    """
    inputs = read_dotnet_inputs(spec, project_file=project_file, output=output)
    return dotnet_entries(spec, inputs, verbose=verbose, runner=runner)


def plan_sources(root: Path, project: DotnetProject, entry: list[str], *,
                 output: Path | None = None) -> list[Entry]:
    """remote_build: the sources the service restores and publishes itself."""
    return collect_remote_sources(root, project, entry, output=output).entries


def collect_remote_sources(root: Path, project: DotnetProject, entry: list[str], *,
                           output: Path | None = None) -> Collection:
    """remote_build: the sources, collected as a Python project's are (the same excludes,
    secret judgement and git check): they ship as they are, so a file git ignores ships too."""
    root = root.resolve()
    if project.path.parent != root:
        raise UsageError(
            f"{project.path} is not at the project root; remote_build needs the project file "
            "at the zip root",
            f"run fbundle in {project.path.parent}, or use dependency_resolution bundled",
        )
    collection = scan_sources(root, REMOTE_BUILD_EXCLUDES, output=output, entry_point=entry)
    entries = collection.entries
    if project.path.name not in {e.name for e in entries}:
        raise UsageError(f"{project.path.name} is excluded by an ignore file",
                         "remove the pattern that matches it from .fbundleignore/.agentignore")
    dll = _entry_dll(entry)
    if dll is not None and dll != project.dll:
        log.warning("entry point %s, but %s builds %s; the service runs the entry point after "
                    "its own publish", " ".join(entry), project.path.name, project.dll)
    return collection


def publish(root: Path, project: DotnetProject, tfm: str, *, verbose: bool = False,
            runner: Runner | None = None) -> list[Entry]:
    """bundled: publish into a fresh folder and take its files, rooted, into memory."""
    env = {**os.environ, **_ENV}
    dotnet = shutil.which("dotnet", path=env.get("PATH"))
    if dotnet is None:
        raise UsageError("dotnet is not on PATH; bundled dotnet_10 builds run dotnet publish",
                         INSTALL_HINT)
    run = runner or SubprocessRunner(echo=verbose)
    with tempfile.TemporaryDirectory(prefix="fbundle-publish-") as tmp:
        output = Path(tmp) / "publish"
        argv = publish_argv(dotnet, project, output, tfm, verbose=verbose)
        log.info("running %s", " ".join(argv))
        done = run(argv, cwd=root, env=env)
        code, text = done.returncode, done.stdout
        if code != 0:
            raise BuildError(
                f"dotnet publish {project.path.name} failed (exit {code}); its last lines:\n"
                + _tail(text) + "\n",
                "fix what it reports (rerun with `fbundle -v build` to see all of it)",
            )
        if not output.is_dir():
            raise BuildError(f"dotnet publish {project.path.name} wrote nothing to {output}",
                             "run the publish command by hand with -v normal to see why")
        return read_publish_output(output)


def _tail(text: str, count: int = TAIL_LINES) -> str:
    lines: deque[str] = deque(maxlen=count)
    for line in text.splitlines():
        if line.strip():
            lines.append("  " + line.rstrip())
    return "\n".join(lines) or "  (no output)"


def read_publish_output(folder: Path) -> list[Entry]:
    """Every file under ``folder`` as an in-memory entry named from the folder (so rooted),
    minus ``runtimes/<rid>/`` folders a linux-x64 host never loads (logged as a warning)."""
    entries: list[Entry] = []
    dropped: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            parts = rel.split("/")
            if len(parts) > 2 and parts[0] == "runtimes" and parts[1] not in KEPT_RIDS:
                key = f"runtimes/{parts[1]}/"
                dropped[key] = dropped.get(key, 0) + 1
                continue
            if path.is_symlink() or not path.is_file():
                raise BuildError(f"publish output {rel} is not a regular file",
                                 "publish should only write plain files; check the project")
            data = path.read_bytes()
            mode = EXEC_MODE if path.stat().st_mode & 0o111 else FILE_MODE
            entries.append(Entry(rel, len(data), BytesData(data), mode, origin="dotnet-publish"))
    for key, count in sorted(dropped.items()):
        log.warning("dropped %s (%d file%s): not loadable by a framework-dependent %s app",
                    key, count, "" if count == 1 else "s", RID)
    return entries


def _entry_dll(entry: Sequence[str]) -> str | None:
    """The assembly of a ``["dotnet", "X.dll", ...]`` entry point, else None."""
    if len(entry) >= 2 and Path(entry[0]).name in ("dotnet", "dotnet.exe"):
        return entry[1].removeprefix("./")
    return None


def pe_kind(data: bytes) -> str | None:
    """``"managed"`` for a PE image with a CLI header (a .NET assembly), ``"native"`` for any
    other file that starts like a PE/DOS image (including malformed ones: they cannot be an
    assembly either), None when ``data`` is not one at all — judged by bytes, never by name."""
    info = inspect_binary(data)
    if info is None or info.format != "pe":
        return None
    return "managed" if info.managed and not info.malformed else "native"
