"""Source distributions made inside the test session, and the PEP 517 backend that builds them.

Hermetic tests cannot fetch setuptools, so the kit brings its own build backend,
``fbtest_backend`` (one module, served as a wheel on the loopback index like any other build
requirement): it builds a wheel from ``[project]`` in pyproject.toml, with the files of the
package folder; C sources listed in ``[tool.fbtest-backend].native`` are compiled with gcc
against the building interpreter's headers into real extension modules, and the wheel is then
tagged for that interpreter and platform (``cp311-cp311-linux_x86_64``), as setuptools would.
Archive timestamps follow ``SOURCE_DATE_EPOCH`` (1980 otherwise), entries are sorted: the same
sources build the same bytes.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from .wheels import make_wheel

BACKEND = "fbtest-backend"

BACKEND_SOURCE = r'''
"""fbtest_backend: a small, real PEP 517 backend for the fbundle test suite."""
import base64
import hashlib
import os
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile


def _project():
    with open("pyproject.toml", "rb") as stream:
        document = tomllib.load(stream)
    return document["project"], document.get("tool", {}).get("fbtest-backend", {})


def _epoch():
    return max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")), 315532800)


def _tag(native):
    if not native:
        return "py3-none-any"
    version = "cp%d%d" % sys.version_info[:2]
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return "%s-%s-%s" % (version, version, platform)


def _package_files(package):
    found = []
    for root, dirs, files in os.walk(package):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                found.append((path.replace(os.sep, "/"), open(path, "rb").read()))
    return found


def _metadata(project):
    lines = ["Metadata-Version: 2.1", "Name: " + project["name"],
             "Version: " + project["version"]]
    lines += ["Requires-Dist: " + r for r in project.get("dependencies", [])]
    return ("\n".join(lines) + "\n\n").encode()


def _record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project, tool = _project()
    dist = project["name"].replace("-", "_")
    package = tool.get("package", dist)
    native = tool.get("native", [])
    files = _package_files(package)
    for source in native:
        stem = os.path.splitext(os.path.basename(source))[0]
        output = os.path.join(wheel_directory, stem + sysconfig.get_config_var("EXT_SUFFIX"))
        subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-g0", "-Wl,--build-id=none",
                        "-I", sysconfig.get_paths()["include"], "-o", output, source],
                       check=True)
        files.append((package + "/" + os.path.basename(output), open(output, "rb").read()))
        os.unlink(output)
    tag = _tag(native)
    info = "%s-%s.dist-info" % (dist, project["version"])
    wheel = "Wheel-Version: 1.0\nGenerator: fbtest_backend\nRoot-Is-Purelib: %s\nTag: %s\n" % (
        "false" if native else "true", tag)
    files += [(info + "/METADATA", _metadata(project)), (info + "/WHEEL", wheel.encode())]
    record = "".join("%s,%s,%d\n" % (n, _record_hash(d), len(d)) for n, d in files)
    files.append((info + "/RECORD", (record + info + "/RECORD,,\n").encode()))
    filename = "%s-%s-%s.whl" % (dist, project["version"], tag)
    import time
    stamp = time.gmtime(_epoch())[:6]
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as archive:
        for name, data in sorted(files):
            member = zipfile.ZipInfo(name, date_time=stamp)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            archive.writestr(member, data)
    return filename


build_editable = build_wheel


def build_sdist(sdist_directory, config_settings=None):
    project, _ = _project()
    base = "%s-%s" % (project["name"].replace("-", "_"), project["version"])
    filename = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as archive:
        for root, dirs, files in os.walk("."):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                member = archive.gettarinfo(path, base + "/" + os.path.relpath(path))
                member.mtime, member.uid, member.gid, member.uname, member.gname = \
                    _epoch(), 0, 0, "", ""
                with open(path, "rb") as stream:
                    archive.addfile(member, stream)
    return filename


def get_requires_for_build_wheel(config_settings=None):
    return []


get_requires_for_build_editable = get_requires_for_build_sdist = get_requires_for_build_wheel
'''

NATIVE_C = r'''
#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speed", NULL, -1, methods};
PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&module); }
'''


def backend_wheel(directory: Path) -> Path:
    """``fbtest_backend-1.0-py3-none-any.whl`` in ``directory``: serve it beside the sdists."""
    return make_wheel(directory, BACKEND, "1.0",
                      files={"fbtest_backend.py": BACKEND_SOURCE.encode()})


def project_files(name: str, version: str, *, native: bool = False,
                  requires: tuple[str, ...] = (), greeting: str | None = None,
                  ) -> dict[str, bytes]:
    """The source tree of a project built by ``fbtest_backend``: pyproject.toml and a package
    whose ``hello()`` returns ``greeting`` (and, when ``native``, a C extension ``_speed``)."""
    package = name.replace("-", "_").replace(".", "_").lower()
    deps = ", ".join(f'"{r}"' for r in requires)
    tool = '\n[tool.fbtest-backend]\nnative = ["_speed.c"]\n' if native else ""
    pyproject = (
        f'[build-system]\nrequires = ["{BACKEND}"]\nbuild-backend = "fbtest_backend"\n\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{deps}]\n{tool}'
    )
    init = f"def hello():\n    return {greeting or f'{name} {version}'!r}\n"
    if native:
        init += "\nfrom ._speed import answer\n"
    files = {"pyproject.toml": pyproject.encode(), f"{package}/__init__.py": init.encode()}
    if native:
        files["_speed.c"] = NATIVE_C.encode()
    return files


def write_project(root: Path, name: str, version: str, **options: object) -> Path:
    """A local project folder (``./libs/mylib``) that ``fbtest_backend`` builds."""
    for relative, data in project_files(name, version, **options).items():  # type: ignore[arg-type]
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def make_sdist(directory: Path, name: str, version: str, *, native: bool = False,
               requires: tuple[str, ...] = ()) -> Path:
    """``<name>-<version>.tar.gz`` (PEP 625 name) holding a ``fbtest_backend`` project and its
    PKG-INFO; fixed timestamps, so the same arguments write the same bytes."""
    base = f"{name.replace('-', '_').lower()}-{version}"
    files = project_files(name, version, native=native, requires=requires)
    info = [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"]
    info += [f"Requires-Dist: {r}\n" for r in requires]
    files["PKG-INFO"] = ("".join(info) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{base}.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as archive:
        archive.mtime = 315532800  # type: ignore[attr-defined]
        for relative, data in sorted(files.items()):
            member = tarfile.TarInfo(f"{base}/{relative}")
            member.size, member.mtime, member.mode = len(data), 315532800, 0o644
            archive.addfile(member, io.BytesIO(data))
    path.write_bytes(_fixed_gzip_header(buffer.getvalue()))
    return path


def _fixed_gzip_header(data: bytes) -> bytes:
    """gzip writes the current time into its header: pin it (bytes 4-7) to zero."""
    return data[:4] + b"\0\0\0\0" + data[8:]
