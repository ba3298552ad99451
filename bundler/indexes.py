"""Where wheels come from: pip's own configuration, read the way pip reads it.

Users' corporate mirrors live in ``pip.conf`` and ``PIP_*`` variables, so fbundle takes its index
settings from there and hands them to whichever resolver runs (uv does not read pip's files).
Order (later wins), as pip documents: global files, user files, the virtualenv's file,
``PIP_CONFIG_FILE``, then environment variables. ``PIP_CONFIG_FILE=/dev/null`` turns every file off.
"""

from __future__ import annotations

import configparser
import os
import re
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from bundler.redact import redact_url
from bundler.requirements import IndexOptions
from bundler.targets import PythonTarget

DEFAULT_INDEX = "https://pypi.org/simple"
_SECTIONS = ("global", "install", "download")


@dataclass(frozen=True)
class IndexConfig:
    index_url: str = DEFAULT_INDEX
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    cert: str | None = None
    sources: tuple[str, ...] = field(default=(), compare=False)

    def uv_args(self) -> list[str]:
        args = ["--no-index"] if self.no_index else ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        return args

    def pip_args(self) -> list[str]:
        args = self.uv_args()
        if self.cert:
            args += ["--cert", self.cert]
        return args

    def verify(self) -> ssl.SSLContext | bool:
        """What httpx should trust: pip's ``cert`` when set, else the default store."""
        return ssl.create_default_context(cafile=self.cert) if self.cert else True

    def with_file_options(self, options: IndexOptions) -> IndexConfig:
        """These settings with a requirements file's own index options applied as pip applies
        them: ``--index-url`` replaces the configured one, ``--extra-index-url`` and
        ``--find-links`` add to it, ``--no-index`` turns every index off."""
        if not options.any:
            return self
        return replace(
            self,
            index_url=options.index_url or self.index_url,
            extra_index_urls=tuple(dict.fromkeys([*self.extra_index_urls,
                                                  *options.extra_index_urls])),
            find_links=tuple(dict.fromkeys([*self.find_links, *options.find_links])),
            no_index=self.no_index or options.no_index,
            sources=(*self.sources, "requirements file"),
        )

    def described(self) -> list[str]:
        """What a lock records: each index and find-links location, credentials redacted."""
        found = [] if self.no_index else [f"index-url {redact_url(self.index_url)}"]
        if not self.no_index:
            found += [f"extra-index-url {redact_url(url)}" for url in self.extra_index_urls]
        found += [f"find-links {redact_url(link)}" for link in self.find_links]
        return found

    def fingerprint(self) -> str:
        """What changes the resolution: part of a build's input key."""
        return "|".join([self.index_url, *self.extra_index_urls, *self.find_links,
                         str(self.no_index)])


def _config_files(environ: dict[str, str]) -> list[Path]:
    config_file = environ.get("PIP_CONFIG_FILE")
    if config_file == os.devnull:
        return []
    home = Path(environ.get("HOME", str(Path.home())))
    xdg_dirs = environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep)
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs if d] + [Path("/etc/pip.conf")]
    files += [home / ".pip" / "pip.conf",
              Path(environ.get("XDG_CONFIG_HOME", str(home / ".config"))) / "pip" / "pip.conf"]
    if venv := environ.get("VIRTUAL_ENV"):
        files.append(Path(venv) / "pip.conf")
    if config_file:
        files.append(Path(config_file))
    return files


def read_pip_config(environ: dict[str, str] | None = None) -> IndexConfig:
    """The index settings pip would use in this environment."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, str] = {}
    sources: list[str] = []
    for path in _config_files(environ):
        parser = configparser.RawConfigParser()
        try:
            if not parser.read(path, encoding="utf-8"):
                continue
        except (configparser.Error, UnicodeDecodeError, OSError):
            continue  # pip would refuse it too; the resolver will say so
        sources.append(str(path))
        for section in _SECTIONS:
            if parser.has_section(section):
                values.update({k.replace("_", "-"): v for k, v in parser.items(section)})
    for key in ("index-url", "extra-index-url", "find-links", "no-index", "cert"):
        env_key = "PIP_" + key.upper().replace("-", "_")
        if env_key in environ:
            values[key] = environ[env_key]
            sources.append(env_key)
    return IndexConfig(
        index_url=values.get("index-url", "").strip() or DEFAULT_INDEX,
        extra_index_urls=tuple(values.get("extra-index-url", "").split()),
        find_links=tuple(values.get("find-links", "").split()),
        no_index=values.get("no-index", "").strip().lower() in ("1", "true", "yes", "on"),
        cert=values.get("cert", "").strip() or None,
        sources=tuple(sources),
    )


def newest_fitting_version(name: str, indexes: IndexConfig,
                           target: PythonTarget) -> Version | None:
    """The newest release of ``name`` on the indexes with a wheel the target accepts."""
    fitting: Version | None = None
    for filename in index_files(name, indexes):
        try:
            _, version, _, tags = parse_wheel_filename(filename)
        except (InvalidWheelFilename, InvalidVersion):
            continue
        if not version.is_prerelease and tags & set(target.tag_rank) and (
                fitting is None or version > fitting):
            fitting = version
    return fitting


def release_wheels(name: str, version: str, indexes: IndexConfig) -> list[str]:
    """The wheel file names the indexes list for release ``version`` of ``name`` (every
    platform's): what tells a native project (platform wheels) from a pure one before its
    sdist is built."""
    try:
        wanted = Version(version)
    except InvalidVersion:
        return []
    found = set()
    for filename in index_files(name, indexes):
        try:
            if parse_wheel_filename(filename)[1] == wanted:
                found.add(filename)
        except (InvalidWheelFilename, InvalidVersion):
            continue
    return sorted(found)


def index_files(name: str, indexes: IndexConfig) -> list[str]:
    """Wheel file names for ``name`` on the configured indexes (PEP 691 JSON, else PEP 503)."""
    import httpx  # only on a refusal or before an sdist build: keeps start-up light

    files: list[str] = []
    project = canonicalize_name(name)
    if indexes.no_index:
        urls: list[str] = []
    else:
        urls = [indexes.index_url, *indexes.extra_index_urls]
    for base in urls:
        if not base.startswith(("http://", "https://")):
            continue
        try:
            response = httpx.get(
                f"{base.rstrip('/')}/{project}/",
                headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"},
                timeout=15.0, follow_redirects=True, verify=indexes.verify(),
            )
        except httpx.HTTPError:
            continue
        if response.status_code != 200:
            continue
        if "json" in response.headers.get("content-type", ""):
            data: dict[str, Any] = response.json()
            files += [f["filename"] for f in data.get("files", [])]
        else:
            files += re.findall(r">\s*([^<>\s]+\.whl)\s*<", response.text)
    for link in indexes.find_links:
        folder = Path(link.removeprefix("file://"))
        if folder.is_dir():
            files += [p.name for p in folder.glob("*.whl")
                      if canonicalize_name(p.name.split("-")[0]) == project]
    return [f for f in files if f.endswith(".whl")]
