"""A failed boot explained in a few lines: which module was missing and who would provide it,
what a binary that would not load really is, which port the agent listens on instead.

Everything is read from the unpacked bundle (``dist-info`` ``top_level.txt`` and ``RECORD``,
the binaries' own bytes) and from ``/proc`` (the agent's sockets), never guessed from names
alone; the one table of names is for import names that differ from their distribution's.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import canonicalize_name

from bundler.binaries import inspect_binary
from bundler.checks.binaries import extension_tag_problem
from bundler.requirements import requirement_lines
from bundler.targets import Target

_MISSING = re.compile(r"ModuleNotFoundError: No module named '(?P<module>[^']+)'")
_IMPORT_SO = re.compile(r"ImportError: (?P<path>/\S+?\.so(?:\.[\w.]+)?):\s*(?P<why>.*)")
# A variable the service injects, read with os.environ[...] (the agent-framework samples do).
_SERVICE_KEY = re.compile(r"KeyError: '(?P<name>FOUNDRY_PROJECT_ENDPOINT|FOUNDRY_PROJECT_ARM_ID|"
                          r"FOUNDRY_AGENT_NAME|FOUNDRY_AGENT_VERSION|"
                          r"APPLICATIONINSIGHTS_CONNECTION_STRING)'")
# Import names whose distribution is called otherwise (the usual surprises).
KNOWN_PROVIDERS = {
    "yaml": "PyYAML", "PIL": "pillow", "cv2": "opencv-python", "sklearn": "scikit-learn",
    "dotenv": "python-dotenv", "bs4": "beautifulsoup4", "dateutil": "python-dateutil",
    "jwt": "PyJWT", "google": "protobuf", "attr": "attrs", "magic": "python-magic",
    "docx": "python-docx", "fitz": "PyMuPDF", "Crypto": "pycryptodome", "OpenSSL": "pyOpenSSL",
}
_BINARY_SUFFIXES = (".so", ".pyd", ".dll", ".dylib")


def providers(root: Path) -> dict[str, list[str]]:
    """Top-level import name -> the distributions in ``packages/`` that install it, from
    ``top_level.txt`` and the paths ``RECORD`` lists."""
    found: dict[str, list[str]] = {}
    packages = root / "packages"
    if not packages.is_dir():
        return found
    for info in sorted(packages.glob("*.dist-info")):
        label = info.name.removesuffix(".dist-info").replace("-", " ", 1)
        names: set[str] = set()
        top_level = info / "top_level.txt"
        if top_level.is_file():
            names.update(line.strip() for line in top_level.read_text(errors="replace")
                         .splitlines() if line.strip())
        record = info / "RECORD"
        if record.is_file():
            for row in csv.reader(io.StringIO(record.read_text(errors="replace"))):
                if not row or row[0].startswith(("..", "/")):
                    continue
                first = row[0].split("/", 1)[0]
                if first.endswith((".dist-info", ".data")) or first == "__pycache__":
                    continue
                names.add(first.split(".", 1)[0])
        for name in names:
            found.setdefault(name, []).append(label)
    return found


def module_files(root: Path, module: str) -> list[Path]:
    """The files under the bundle root or ``packages/`` that are ``module`` by their path."""
    parts = module.split(".")
    hits: list[Path] = []
    for base in (root, root / "packages"):
        folder = base.joinpath(*parts[:-1])
        if not folder.is_dir():
            continue
        leaf = parts[-1]
        for child in sorted(folder.iterdir()):
            if child.name == leaf and child.is_dir():
                hits.append(child)
            elif child.name.split(".", 1)[0] == leaf and child.is_file() and \
                    child.name.endswith((".py", *_BINARY_SUFFIXES)):
                hits.append(child)
    return hits


def binary_facts(path: Path, root: Path, target: Target) -> str:
    """One line on what a binary is, read from its bytes: format, machine, ABI tag, glibc."""
    name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        return f"{name}: cannot be read ({error.strerror})"
    info = inspect_binary(data)
    if info is None:
        return f"{name}: not a binary at all (its bytes are no ELF, PE or Mach-O header)"
    if info.malformed:
        return f"{name}: a {info.format.upper()} file with a broken header ({info.malformed})"
    if info.format == "pe":
        return (f"{name}: a Windows PE binary for {info.machine}; CPython on Linux never "
                "imports it")
    if info.format.startswith("macho"):
        return f"{name}: a macOS Mach-O binary ({info.machine}); Linux cannot load it"
    facts = [f"ELF {info.bits}-bit {info.machine}"]
    if problem := extension_tag_problem(path.name, target):
        facts.append(problem)
    elif ".abi3." in path.name or ".cpython-" in path.name:
        facts.append(f"ABI tag {path.name.split('.')[-2]}")
    if info.max_glibc:
        need = ".".join(map(str, info.max_glibc))
        facts.append(f"needs glibc {need} (the bundle's floor is {target.glibc_text})")
    if info.machine != "x86_64" or info.bits != 64:
        facts.append("the service is x86-64")
    return f"{name}: " + ", ".join(facts)


def missing_module(module: str, root: Path, target: Target, mode: str) -> list[str]:
    """What the bundle says about a module Python could not find."""
    top = module.split(".", 1)[0]
    lines: list[str] = []
    by_name = providers(root)
    files = module_files(root, module)
    binaries = [f for f in files if f.is_file() and f.name.endswith(_BINARY_SUFFIXES)]
    loadable = [f for f in files if f not in binaries]
    guess = KNOWN_PROVIDERS.get(top, top)
    wanted = _requirement_names(root)
    listed = canonicalize_name(guess) in wanted or canonicalize_name(top) in wanted
    if top in by_name:
        lines.append(f"{top} is installed by {', '.join(by_name[top])} in packages/")
    elif mode != "bundled":
        lines.append(f"nothing requirements.txt installs provides {top} (it usually comes "
                     f"from {guess!r})" + ("" if listed else f": add {guess} to it"))
    else:
        lines.append(f"no distribution in packages/ provides {top} (it usually comes from "
                     f"{guess!r}); requirements.txt "
                     + ("lists it, so packages/ is stale: rebuild it" if listed
                        else f"does not list it: add {guess} and rebuild"))
    if binaries and not loadable:
        lines.append(f"the only copy of {module} is a binary Python cannot import here:")
        lines += [f"  {binary_facts(b, root, target)}" for b in binaries]
    return lines


def _requirement_names(root: Path) -> set[str]:
    path = root / "requirements.txt"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return set()
    names: set[str] = set()
    for _, line in requirement_lines(text):
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if match:
            names.add(canonicalize_name(match[0]))
    return names


def explain(output: Iterable[str], root: Path, target: Target, mode: str) -> list[str]:
    """Lines explaining the last import failure (or missing service variable) in the
    agent's output, if there is one."""
    text = list(output)
    for line in reversed(text):
        if match := _SERVICE_KEY.search(line):
            return [f"{match['name']} is set by the service in the agent's container, not "
                    f"here: put {match['name']}=... in a dotenv file and pass --env-file "
                    "(or set it in the azd environment, .azure/<env>/.env)"]
        if match := _MISSING.search(line):
            return missing_module(match["module"], root, target, mode)
        if match := _IMPORT_SO.search(line):
            path = Path(match["path"])
            if path.is_file():
                return [f"an extension module would not load ({match['why'].strip()}):",
                        f"  {binary_facts(path, root, target)}"]
            return [f"ImportError on {match['path']}: {match['why'].strip()}"]
    return []


def listening_ports(pid: int) -> list[int]:
    """TCP ports the process ``pid`` and its descendants listen on, read from ``/proc``."""
    pids = _family(pid)
    inodes: set[str] = set()
    for member in pids:
        try:
            for fd in os.listdir(f"/proc/{member}/fd"):
                link = os.readlink(f"/proc/{member}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def _family(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        parents[int(name)] = int(stat.rsplit(")", 1)[1].split()[1])
    family = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in family and child not in family:
                family.add(child)
                grew = True
    return family
