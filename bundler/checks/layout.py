"""FB1xx: the shape of the zip root — flat, entry point present, the files each mode needs."""

from __future__ import annotations

import re
from collections.abc import Iterator

from bundler.checks.base import Finding, finding, rules
from bundler.checks.facts import Facts, bundle_requirements, owners
from bundler.requirements import requirement_lines
from bundler.sensitive import judged, secret_by_name
from bundler.targets import PythonTarget

RULES = rules(
    ("FB101", "error", "everything sits under one wrapper folder"),
    ("FB102", "error", "the entry point is not in the bundle"),
    ("FB103", "error", "raw wheel or source archive shipped"),
    ("FB104", "error", "requirements.txt missing at the root (Python)"),
    ("FB105", "error", "packages/ missing in bundled mode (Python)"),
    ("FB106", "error", "packages/ present in remote_build mode (Python)"),
    ("FB107", "warning", "compiled bytecode (.pyc, __pycache__) shipped"),
    ("FB108", "warning", "a virtual environment shipped"),
    ("FB109", "warning", "version-control metadata (.git/) shipped"),
    ("FB110", "warning", "a .env secrets file shipped"),
    ("FB111", "error", "the bundle is empty"),
    ("FB130", "warning", "a .pth file where Python does not process it"),
    ("FB112", "warning", "a file that looks like a secret (key, credentials) shipped"),
    ("FB113", "warning", "azd's environment folder (.azure/) shipped"),
    ("FB114", "warning", "files that git ignores would ship"),
)

_PYTHON = re.compile(r"^python(3(\.\d+)?)?$")
ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".tgz", ".egg", ".tar.bz2", ".tar.xz")


def entry_script(entry_point: list[str]) -> tuple[str, str] | None:
    """What the entry point needs in the bundle: ("script", path) or ("module", dotted name)."""
    if not entry_point or not _PYTHON.match(entry_point[0].rsplit("/", 1)[-1]):
        return None
    args = iter(entry_point[1:])
    for arg in args:
        if arg == "-m":
            module = next(args, None)
            return ("module", module) if module else None
        if arg.startswith("-"):
            continue
        return ("script", arg.removeprefix("./"))
    return None


def check(facts: Facts) -> Iterator[Finding]:
    names = facts.bundle.names()
    names_set = set(names)
    files = [e.name for e in facts.files]
    owner_of = owners(facts)
    if not files:
        yield finding("FB111", facts.bundle.location, "the bundle holds no files",
                      "zip your agent's sources (fbundle build does)")
        return
    wrapper = facts.wrapper
    if wrapper:
        yield finding("FB101", f"{wrapper}/", f"every file sits under the folder {wrapper}/",
                      f"zip the contents of {wrapper}/, not the folder itself")
    else:
        yield from _root_files(facts, set(names))
    listed = _listed_locally(facts)
    for name in files:
        lower = name.lower()
        parts = name.split("/")
        base = parts[-1]
        # An archive an installed distribution's RECORD lists is its package data
        # (python-dateutil's dateutil-zoneinfo.tar.gz), not a package left uninstalled.
        if lower.endswith(ARCHIVE_SUFFIXES) and name not in owner_of and not any(
                name == path or name.startswith(path + "/") for path in listed):
            yield finding("FB103", name, "a raw package archive is shipped; the service does "
                          "not install it", "install it extracted into packages/ "
                          "(fbundle build does), or list it in requirements.txt")
        if (base.endswith((".pyc", ".pyo")) or "__pycache__" in parts[:-1]) \
                and not target_bytecode(name, facts, names_set):
            yield finding("FB107", name, "compiled bytecode is shipped",
                          "exclude __pycache__/ and *.pyc; Python recompiles them (or build "
                          "with --compile: bytecode made by the target's interpreter)")
        if base.endswith(".pth") and isinstance(facts.target, PythonTarget) and (
                len(parts) == 1 or (len(parts) == 2 and parts[0] == "packages")):
            yield _pth(facts, name, owner_of.get(name))
        venv = _folder_of(parts, ".venv") or (
            "/".join(parts[:-1]) + "/" if base == "pyvenv.cfg" and len(parts) >= 2 else None)
        if venv:
            yield finding("FB108", venv, "a virtual environment is shipped",
                          f"exclude {venv}; bundled dependencies belong in packages/")
        if git := _folder_of(parts, ".git"):
            yield finding("FB109", git, "a git repository is shipped", f"exclude {git}")
        if env_file(name):
            yield _env_finding(name)
        elif kind := _secret(facts, name, owner_of):
            yield secret_finding(name, kind)
        if azure := _folder_of(parts, ".azure"):
            yield finding("FB113", azure, "azd's environment folder is shipped (it holds "
                          "subscription, resource and sometimes secret values)",
                          f"exclude {azure} (fbundle build does by default)")


def env_file(name: str) -> bool:
    """``.env`` and ``.env.<stage>`` (not ``.env.example``): FB110's files."""
    base = name.rsplit("/", 1)[-1]
    return base == ".env" or (base.startswith(".env.") and base != ".env.example")


def _env_finding(name: str) -> Finding:
    return finding("FB110", name, "an environment file (often holding secrets) is shipped",
                   "remove it; set environment_variables in metadata.json")


def secret_finding(name: str, kind: str) -> Finding:
    """The finding for a file that looks like a secret and ships: FB110 for a ``.env`` file,
    else FB112. Build's collection and validate's check both make it here, so they say the
    same code, path and words."""
    if env_file(name):
        return _env_finding(name)
    return finding("FB112", name, f"looks like a secret ({kind}) and ships in the bundle",
                   "remove it and give the agent secrets through environment_variables or a "
                   "key vault; if it is not a secret, --ignore FB112")


def _secret(facts: Facts, name: str, owned: dict[str, str]) -> str | None:
    """What ``name`` is if it looks like a secret: the verdict of the byte scan
    (``sensitive.SecretScan``) when it judged the file; nothing for a source build's
    collection already judged with the same scan (its findings travel with the collection);
    else (bytes not read: a bomb, over the entry limit) its name alone. Nothing under
    packages/ is judged, nor a file a RECORD lists: a dependency's data (certifi's CA
    bundle) is not the project's secret."""
    if not judged(name):
        return None
    scanned = facts.scanned.get(name)
    if scanned is not None and scanned.judged:
        return scanned.secret
    if name in facts.collected or name in owned:
        return None
    return secret_by_name(name)


def _root_files(facts: Facts, names: set[str]) -> Iterator[Finding]:
    ctx = facts.context
    if not isinstance(facts.target, PythonTarget):
        return
    needed = entry_script(ctx.entry_point)
    if needed is not None:
        kind, target = needed
        if kind == "script" and target not in names:
            yield finding("FB102", target, f"the entry point {' '.join(ctx.entry_point)!r} "
                          f"runs {target}, which is not in the bundle",
                          f"put {target} at the zip root, or {ctx.entry_fix}")
        if kind == "module" and not _module_present(target, names, ctx.mode):
            yield finding("FB102", target, f"the entry point runs module {target}, which is "
                          "neither in the bundle nor in packages/",
                          f"add the module, or {ctx.entry_fix}")
    if "requirements.txt" not in names:
        yield finding("FB104", "requirements.txt", "requirements.txt is missing at the root",
                      "add one (it may be empty); the service reads it in both modes")
    has_packages = any(n.startswith("packages/") for n in names) or \
        dependency_layout(list(names)) == "root"
    # An agent with no dependencies has nothing to put in packages/: that is not a mistake.
    requirements = facts.texts.get("requirements.txt")
    no_dependencies = requirements is not None and not any(requirement_lines(requirements))
    if ctx.mode == "bundled" and not has_packages and not no_dependencies:
        yield finding("FB105", "packages/", "bundled mode but no packages/ folder",
                      "install dependencies into packages/ (fbundle build), or use "
                      "dependency_resolution remote_build")
    if ctx.mode == "remote_build" and has_packages:
        yield finding("FB106", "packages/", "remote_build mode but packages/ is shipped",
                      "remove packages/ (the service installs requirements.txt), or use "
                      "dependency_resolution bundled")


def _listed_locally(facts: Facts) -> list[str]:
    """What requirements.txt names in the bundle (local wheels, ``--find-links`` folders):
    pip installs those archives, so shipping them is no mistake."""
    parsed, _ = bundle_requirements(facts)
    if parsed is None:
        return []
    return [p.removeprefix("./").rstrip("/") for p in parsed.local_files()]


def _module_present(module: str, names: set[str], mode: str) -> bool:
    path = module.replace(".", "/")
    roots = ["", "packages/"] if mode == "bundled" else [""]
    return any(f"{root}{path}.py" in names or f"{root}{path}/__main__.py" in names
               or any(n.startswith(f"{root}{path}/") for n in names) for root in roots)


def _folder_of(parts: list[str], folder: str) -> str | None:
    """``a/.git/`` for ``a/.git/HEAD`` when ``folder`` is ``.git``."""
    if folder in parts[:-1]:
        return "/".join(parts[: parts.index(folder) + 1]) + "/"
    return None


def dependency_layout(names: list[str]) -> str:
    """Where a bundle's dependencies are installed: ``packages`` (the article's bundled
    layout), ``root`` (azd's: ``pip install -t .``, dist-infos at the zip root, which is on
    ``sys.path``), or ``none``."""
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    if any(n.startswith("packages/") and ".dist-info/" in n for n in names):
        return "packages"
    if any(t.endswith(".dist-info") for t in tops):
        return "root"
    return "packages" if "packages" in tops else "none"


LAYOUT_WORDS = {"packages": "dependencies in packages/",
                "root": "dependencies at the zip root (azd's pip install -t . layout)",
                "none": "no installed dependencies"}

_PYCACHE = re.compile(r"^(?P<stem>[^/.]+)\.(?P<tag>[a-z]+-\d+)(?:\.opt-[12])?\.pyc$")


def target_bytecode(name: str, facts: Facts, names: set[str]) -> bool:
    """Whether ``name`` is bytecode for the target that its interpreter will use as is: in
    ``__pycache__`` beside its source, tagged and magic-numbered for the target's CPython, and
    hash-based (PEP 552), so the zip's fixed timestamps cannot make it stale. ``build
    --compile`` writes exactly these; host bytecode (another version, timestamp-based) is
    still reported."""
    target = facts.target
    parts = name.split("/")
    if not isinstance(target, PythonTarget) or len(parts) < 2 or parts[-2] != "__pycache__":
        return False
    match = _PYCACHE.match(parts[-1])
    if not match or match["tag"] != f"cpython-{target.python[0]}{target.python[1]}":
        return False
    source = "/".join([*parts[:-2], match["stem"] + ".py"])
    head = facts.heads.get(name, b"")
    if source not in names or len(head) < 16 or head[2:4] != b"\r\n":
        return False
    magic = int.from_bytes(head[:2], "little")
    # CPython gives each minor version a block of 50 magic numbers (3.11: 3450-3499, 3.12:
    # 3500-3549, 3.13: 3550-3599, 3.14: 3600-3649; Lib/importlib/_bootstrap_external.py).
    first = 3450 + 50 * (target.python[1] - 11)
    flags = int.from_bytes(head[4:8], "little")
    return first <= magic < first + 50 and flags & 0b1 == 1


def _pth(facts: Facts, name: str, owner: str | None) -> Finding:
    """What a .pth file would have done had Python processed it (only site-packages folders
    get that; ``packages/`` is on ``PYTHONPATH`` and the root is the script's folder)."""
    text = facts.texts.get(name, "")
    imports, paths = [], []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith(("import ", "import\t")):
            imports.append(stripped)
        else:
            paths.append(stripped)
    did = []
    if imports:
        code = imports[0] if len(imports[0]) <= 80 else imports[0][:77] + "..."
        did.append(f"run `{code}` at start-up" + (f" (and {len(imports) - 1} more import "
                                                   "lines)" if len(imports) > 1 else ""))
    if paths:
        did.append(f"add {', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''} to sys.path")
    effect = f", so it will not {' and '.join(did)}" if did else " (this one is empty)"
    who = f"shipped by {owner}; " if owner else ""
    return finding("FB130", name, f"{who}Python does not process .pth files outside "
                   f"site-packages{effect}",
                   "if the agent needs that effect, do it in the entry point (import the "
                   "module, or extend sys.path); otherwise it is harmless")
