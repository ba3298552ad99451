"""FB1xx: the shape of the zip root — flat, entry point present, the files each mode needs."""

from __future__ import annotations

import re
from collections.abc import Iterator

from bundler.checks.base import Facts, Finding, finding, rules
from bundler.checks.deps import requirement_lines
from bundler.model import Bundle

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
)

_PYTHON = re.compile(r"^python(3(\.\d+)?)?$")
ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".tgz", ".egg", ".tar.bz2", ".tar.xz")


def wrapper_folder(bundle: Bundle) -> str | None:
    """The one top-level folder every entry sits in (``my-agent`` of ``my-agent/main.py``)."""
    tops = {name.split("/", 1)[0] for name in bundle.names() if name}
    names = bundle.names()
    if len(tops) != 1 or not names or all("/" not in n.rstrip("/") for n in names):
        return None
    top = tops.pop()
    if top in ("packages",):
        return None
    return top


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
    files = [e.name for e in facts.files]
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
    for name in files:
        lower = name.lower()
        parts = name.split("/")
        base = parts[-1]
        if lower.endswith(ARCHIVE_SUFFIXES):
            yield finding("FB103", name, "a raw package archive is shipped; the service does "
                          "not install it", "install it extracted into packages/ "
                          "(fbundle build does), or list it in requirements.txt")
        if base.endswith((".pyc", ".pyo")) or "__pycache__" in parts[:-1]:
            yield finding("FB107", name, "compiled bytecode is shipped",
                          "exclude __pycache__/ and *.pyc; Python recompiles them")
        venv = _folder_of(parts, ".venv") or (
            "/".join(parts[:-1]) + "/" if base == "pyvenv.cfg" and len(parts) >= 2 else None)
        if venv:
            yield finding("FB108", venv, "a virtual environment is shipped",
                          f"exclude {venv}; bundled dependencies belong in packages/")
        if git := _folder_of(parts, ".git"):
            yield finding("FB109", git, "a git repository is shipped", f"exclude {git}")
        if base == ".env" or (base.startswith(".env.") and base != ".env.example"):
            yield finding("FB110", name, "an environment file (often holding secrets) is "
                          "shipped", "remove it; set environment_variables in metadata.json")


def _root_files(facts: Facts, names: set[str]) -> Iterator[Finding]:
    ctx = facts.context
    if not facts.target.is_python:
        return
    needed = entry_script(ctx.entry_point)
    if needed is not None:
        kind, target = needed
        if kind == "script" and target not in names:
            yield finding("FB102", target, f"the entry point {' '.join(ctx.entry_point)!r} "
                          f"runs {target}, which is not in the bundle",
                          f"put {target} at the zip root, or fix entry_point in metadata.json")
        if kind == "module" and not _module_present(target, names, ctx.mode):
            yield finding("FB102", target, f"the entry point runs module {target}, which is "
                          "neither in the bundle nor in packages/",
                          "add the module, or fix entry_point in metadata.json")
    if "requirements.txt" not in names:
        yield finding("FB104", "requirements.txt", "requirements.txt is missing at the root",
                      "add one (it may be empty); the service reads it in both modes")
    has_packages = any(n.startswith("packages/") for n in names)
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
