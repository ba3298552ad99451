"""requirements.txt as pip reads it: the one reading used by build, lock and every check.

The resolver (uv or pip) reads the file itself; fbundle reads it too, with this module only,
where it must know the lines: which files a build depends on (``-r``/``-c``), which hashes a
wheel must match (``--hash``), which indexes the file names, which local packages to build,
whether a lock is stale, and what ``fbundle validate`` checks in ``packages/``.

pip has no public API for its requirements-file parser (``pip._internal`` may change in any
release, and pip is not a runtime dependency), so this module follows pip's own algorithm, step
for step, and the tests hold it to pip's parser as an oracle: decode (BOMs, as pip's
``auto_decode``) -> join ``\\`` continuations -> strip comments (``(^|\\s+)#.*$``) -> expand
``${VAR}`` -> split each line into a requirement and its options exactly where pip does, and
parse the options with ``optparse`` and ``shlex`` as pip does.
"""

from __future__ import annotations

import codecs
import hashlib
import optparse
import os
import posixpath
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote, urlsplit

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from bundler.errors import UsageError
from bundler.redact import redact_urls

REQUIREMENTS_FILE = "requirements.txt"

# pip's own patterns (pip/_internal/req/req_file.py).
COMMENT_RE = re.compile(r"(^|\s+)#.*$")
ENV_VAR_RE = re.compile(r"(?P<var>\$\{(?P<name>[A-Z0-9_]+)\})")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_VCS = ("git+", "hg+", "svn+", "bzr+")
_ARCHIVES = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar", ".zip")

#: BOMs pip's ``auto_decode`` recognises, longest first (UTF-32 LE starts like UTF-16 LE).
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)


class RequirementsFileError(UsageError):
    """A requirements file pip would refuse too: which file, which line, what is wrong."""


def decode(data: bytes) -> str:
    """The text of a requirements file: a BOM (UTF-8, UTF-16 as PowerShell 5's ``>`` writes,
    UTF-32) decides the encoding and is dropped, as in pip; without one, UTF-8.

    Raises ``UnicodeDecodeError`` for bytes that are neither (pip would fall back to the
    locale's encoding, which differs between machines: a bundle must not depend on it).
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(encoding)
    return data.decode("utf-8")


# --- the option grammar: pip's SUPPORTED_OPTIONS and SUPPORTED_OPTIONS_REQ -------------------


class _OptionParser(optparse.OptionParser):
    def error(self, msg: str) -> NoReturn:  # optparse would print and exit
        raise _OptionError(msg)


def _parser() -> optparse.OptionParser:
    parser = _OptionParser(add_help_option=False)
    add = parser.add_option
    add("-i", "--index-url", "--pypi-url", dest="index_url")
    add("--extra-index-url", dest="extra_index_urls", action="append")
    add("--no-index", dest="no_index", action="store_true", default=False)
    add("-c", "--constraint", dest="constraints", action="append")
    add("-r", "--requirement", dest="requirements", action="append")
    add("-e", "--editable", dest="editables", action="append")
    add("-f", "--find-links", dest="find_links", action="append")
    add("--no-binary", dest="no_binary", action="append")
    add("--only-binary", dest="only_binary", action="append")
    add("--prefer-binary", dest="prefer_binary", action="store_true", default=False)
    add("--require-hashes", dest="require_hashes", action="store_true", default=False)
    add("--pre", dest="pre", action="store_true", default=False)
    add("--trusted-host", dest="trusted_hosts", action="append")
    add("--use-feature", dest="features", action="append")
    # per-requirement options
    add("--global-option", dest="global_options", action="append")
    add("--config-settings", dest="config_settings", action="append")
    add("--hash", dest="hashes", action="append")
    return parser


class _OptionError(Exception):
    pass


_PARSER = _parser()
_REQUIREMENT_OPTIONS = {"global_options", "config_settings", "hashes"}


# --- what a file says ---------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One logical requirement line (continuations joined, comments stripped).

    Exactly one of ``requirement`` (PEP 508, possibly ``name @ url``), ``path`` (a local
    directory or archive as written) or ``url`` (an unnamed URL) is set.
    """

    file: Path
    number: int  # where the logical line starts
    written: str  # as in the file, before ``${VAR}`` expansion: what may be shown and locked
    requirement: Requirement | None = None
    path: str | None = None
    url: str | None = None
    extras: frozenset[str] = frozenset()
    marker: Marker | None = None
    editable: bool = False
    constraint: bool = False
    hashes: tuple[str, ...] = ()  # "sha256:<hex>", as written (lower-cased)
    spec: str = ""  # the requirement part as pip reads it (``${VAR}`` expanded, no options)

    @property
    def where(self) -> str:
        return f"{self.file.name}:{self.number}"

    @property
    def name(self) -> NormalizedName | None:
        """The project this line is about, when the line itself says (name, wheel or sdist
        file name, ``#egg=``); None for an unnamed local directory."""
        if self.requirement is not None:
            return canonicalize_name(self.requirement.name)
        location = self.url or self.path or ""
        fragment = urlsplit(location).fragment if self.url else location.partition("#")[2]
        if egg := re.search(r"(?:^|&)egg=([^&\[]+)", fragment):
            return canonicalize_name(egg.group(1))
        filename = unquote(location.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1])
        try:
            if filename.endswith(".whl"):
                return parse_wheel_filename(filename)[0]
            if filename.endswith(_ARCHIVES):
                return parse_sdist_filename(filename)[0]
        except (InvalidWheelFilename, InvalidSdistFilename):
            return None
        return None

    @property
    def is_local(self) -> bool:
        """A local directory or archive (built or copied by fbundle, shipped in remote_build)."""
        return self.path is not None or (self.url or "").startswith("file:")

    @property
    def key(self) -> str:
        """What pairs this line with its old self in a stale lock: the project, else the text."""
        return str(self.name) if self.name is not None else self.written


@dataclass(frozen=True)
class IndexOptions:
    """The index options a requirements file sets (pip applies them on top of its config)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    pre: bool = False
    prefer_binary: bool = False
    require_hashes: bool = False
    trusted_hosts: tuple[str, ...] = ()
    only_binary: tuple[str, ...] = ()
    no_binary: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return self != IndexOptions()


@dataclass(frozen=True)
class Requirements:
    """What a project's requirements say: its lines (from every ``-r`` file), its constraints
    (``-c``), the index options, and every file read, so a change to any of them is seen.

    ``lines`` are the texts a lock keeps (credentials redacted) to name what changed. A
    project-lock reader (uv.lock, poetry.lock) produces one of these too, with ``source`` its
    lock file.
    """

    source: Path
    text: str
    entries: tuple[Line, ...] = ()
    options: IndexOptions = IndexOptions()
    files: tuple[tuple[Path, str], ...] = ()  # every file read (path, text), the root first
    option_lines: tuple[str, ...] = ()  # index/resolver option lines, as written
    base: Path | None = None  # where relative paths are taken from (the project folder)

    @classmethod
    def from_lines(cls, lines: list[str], source: Path, text: str | None = None) -> Requirements:
        """Requirements from PEP 508 lines another reader produced (pyproject dependencies, a
        project lock's pins); ``text`` is what the lines stand for (default: the lines)."""
        entries = []
        for number, line in enumerate(lines, start=1):
            try:
                requirement = Requirement(line)
            except InvalidRequirement as error:
                reason = str(error).splitlines()[0]
                raise UsageError(f"{source}: {line!r} is not a valid requirement ({reason})",
                                 "fix the line") from None
            entries.append(Line(source, number, line, requirement=requirement,
                                extras=frozenset(requirement.extras),
                                marker=requirement.marker, spec=line))
        text = "".join(f"{line}\n" for line in lines) if text is None else text
        return cls(source, text, tuple(entries), files=((source, text),), base=source.parent)

    @property
    def requirements(self) -> list[Line]:
        return [e for e in self.entries if not e.constraint]

    @property
    def constraints(self) -> list[Line]:
        return [e for e in self.entries if e.constraint]

    @property
    def lines(self) -> list[str]:
        """The logical lines that decide the resolution, as written (credentials redacted):
        requirements, then ``-c`` constraints as ``-c <line>``, then option lines."""
        return [redact_urls(e.written) for e in self.requirements] \
            + [f"-c {redact_urls(e.written)}" for e in self.constraints] \
            + [redact_urls(line) for line in self.option_lines]

    @property
    def sha256(self) -> str:
        """Of every file read (the root file's own hash when it is the only one, as before)."""
        if len(self.files) <= 1:
            return hashlib.sha256(self.text.encode("utf-8")).hexdigest()
        digest = hashlib.sha256()
        for path, text in self.files:
            digest.update(f"{path.name}\0{text}\0".encode())
        return digest.hexdigest()

    @property
    def hashes(self) -> dict[NormalizedName, set[str]]:
        """Project -> the sha256 values its lines allow (pip's hash-checking mode when any)."""
        allowed: dict[NormalizedName, set[str]] = {}
        for entry in self.entries:
            if entry.hashes and entry.name is not None:
                allowed.setdefault(entry.name, set()).update(
                    h.split(":", 1)[1] for h in entry.hashes if h.startswith("sha256:"))
        return allowed

    @property
    def hash_checking(self) -> bool:
        """pip turns on hash-checking mode when any line has a ``--hash`` (or
        ``--require-hashes`` is given): then every distribution must be listed with hashes."""
        return self.options.require_hashes or any(e.hashes for e in self.entries)

    def parsed(self) -> list[Requirement]:
        """The named PEP 508 requirements (local and URL lines without a name left out)."""
        return [e.requirement for e in self.requirements if e.requirement is not None]

    def roots(self) -> list[Requirement]:
        """What the project asks for by name: its PEP 508 lines, and the lines whose file
        name or ``#egg=`` names the project (a bare local folder is left out: only building
        it tells its name). Constraints are not roots."""
        found = []
        for entry in self.requirements:
            if entry.requirement is not None:
                found.append(entry.requirement)
            elif entry.name is not None:
                requirement = Requirement(str(entry.name))
                requirement.extras = set(entry.extras)
                requirement.marker = entry.marker
                found.append(requirement)
        return found

    def local_files(self) -> list[str]:
        """Project-relative files and folders the service's pip reads beside requirements.txt
        in remote_build: ``-r``/``-c`` files, local packages, ``--find-links`` folders."""
        found: list[str] = []
        base = self.base or self.source.parent
        for path, _ in self.files[1:]:
            found.append(_relative(path, base))
        for entry in self.entries:
            if entry.path is not None:
                found.append(entry.path.split("#", 1)[0])
            elif entry.url and entry.url.startswith("file:"):
                found.append(unquote(urlsplit(entry.url).path))
        for link in self.options.find_links:
            if not _SCHEME_RE.match(link) or link.startswith("file:"):
                found.append(unquote(urlsplit(link).path) if link.startswith("file:") else link)
        return list(dict.fromkeys(found))


def not_shipped(requirements: Requirements, names: set[str]) -> list[str]:
    """The files and folders requirements.txt names (``-r``/``-c`` files, local packages,
    ``--find-links`` folders) that a bundle holding ``names`` lacks: the service's pip reads
    requirements.txt from the zip root and would not find them."""
    missing = []
    for local in requirements.local_files():
        path = local.removeprefix("./").rstrip("/")
        if Path(local).is_absolute() or path.startswith("../") or path == "..":
            missing.append(f"{local} (outside the project)")
        elif path not in names and not any(n.startswith(path + "/") for n in names):
            missing.append(local)
    return missing


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


# --- the reading --------------------------------------------------------------------------


Reader = Callable[[Path], bytes]


def read_requirements(path: Path, *, environ: Mapping[str, str] | None = None,
                      base: Path | None = None) -> Requirements:
    """Read ``path`` (and every file it includes) the way ``pip install -r`` does.

    Raises ``UsageError`` (exit 2) naming the file and line for anything pip refuses too, and
    for a missing or undecodable file.
    """

    def reader(file: Path) -> bytes:
        try:
            return file.read_bytes()
        except FileNotFoundError:
            what = "not found" if file == path else f"not found (included from {path.name})"
            raise UsageError(f"{file}: {what}", "bundled mode needs a requirements.txt"
                             if file == path else "add the file, or fix the -r/-c line") from None
        except OSError as error:
            raise UsageError(f"{file}: cannot be read ({error.strerror})", "fix the file") \
                from None

    return parse(path, reader, environ=environ, base=base)


def parse_text(text: str, source: Path = Path(REQUIREMENTS_FILE), *,
               reader: Reader | None = None,
               environ: Mapping[str, str] | None = None) -> Requirements:
    """Parse ``text`` as the file ``source``; ``reader`` supplies ``-r``/``-c`` files (a zip's
    members for validate). Without one, an include is a usage error."""

    def no_reader(file: Path) -> bytes:
        raise UsageError(f"{file}: not found (included from {source.name})",
                         "add the file, or fix the -r/-c line")

    data = {source: text}
    return _parse(source, data, reader or no_reader, environ=environ, base=source.parent)


def parse_bundle_text(text: str, member: Callable[[str], bytes | None],
                      missing: list[str] | None = None) -> Requirements:
    """A bundle's ``requirements.txt`` and the ``-r``/``-c`` files it names, read from the
    bundle's own members, as build read them in the project: ``member(name)`` gives a
    member's bytes, or None when the bundle lacks it (then named in ``missing`` and read as
    empty). No environment: a zip is judged by what it holds. Validate and the size table
    both read a zip this way."""

    def reader(path: Path) -> bytes:
        name = posixpath.normpath(path.as_posix())
        data = member(name)
        if data is None:
            if missing is not None:
                missing.append(name)
            return b""
        return data

    return parse_text(text, Path(REQUIREMENTS_FILE), reader=reader, environ={})


def parse(path: Path, reader: Reader, *, environ: Mapping[str, str] | None = None,
          base: Path | None = None) -> Requirements:
    raw = reader(path)
    try:
        text = decode(raw)
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: not UTF-8 or UTF-16 text ({error.reason} at byte "
                         f"{error.start})", "save it as UTF-8") from None
    return _parse(path, {path: text}, reader, environ=environ, base=base or path.parent)


def _parse(root: Path, texts: dict[Path, str], reader: Reader, *,
           environ: Mapping[str, str] | None, base: Path) -> Requirements:
    env = os.environ if environ is None else environ
    state = _State(reader=reader, environ=env, texts=texts)
    state.read(root, constraint=False, parents=())
    options = IndexOptions(
        index_url=state.index_url, extra_index_urls=tuple(state.extra_index_urls),
        find_links=tuple(state.find_links), no_index=state.no_index, pre=state.pre,
        prefer_binary=state.prefer_binary, require_hashes=state.require_hashes,
        trusted_hosts=tuple(state.trusted_hosts), only_binary=tuple(state.only_binary),
        no_binary=tuple(state.no_binary))
    return Requirements(root, texts[root], tuple(state.entries), options,
                        tuple((p, state.texts[p]) for p in state.order),
                        tuple(state.option_lines), base)


@dataclass
class _State:
    reader: Reader
    environ: Mapping[str, str]
    texts: dict[Path, str]
    entries: list[Line] = field(default_factory=list)
    order: list[Path] = field(default_factory=list)
    option_lines: list[str] = field(default_factory=list)
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)
    no_index: bool = False
    pre: bool = False
    prefer_binary: bool = False
    require_hashes: bool = False
    trusted_hosts: list[str] = field(default_factory=list)
    only_binary: list[str] = field(default_factory=list)
    no_binary: list[str] = field(default_factory=list)

    def text_of(self, path: Path) -> str:
        if path not in self.texts:
            try:
                self.texts[path] = decode(self.reader(path))
            except UnicodeDecodeError as error:
                raise UsageError(f"{path}: not UTF-8 or UTF-16 text ({error.reason})",
                                 "save it as UTF-8") from None
        return self.texts[path]

    def read(self, path: Path, *, constraint: bool, parents: tuple[Path, ...]) -> None:
        if path in parents:
            raise RequirementsFileError(f"{path}: includes itself (through "
                                        f"{' -> '.join(p.name for p in parents)})",
                                        "remove the -r/-c loop")
        text = self.text_of(path)
        if path not in self.order:
            self.order.append(path)
        for number, written in logical_lines(text):
            line = expand_env(written, self.environ)
            self.line(path, number, written, line, constraint=constraint,
                      parents=(*parents, path))

    def fail(self, path: Path, number: int, written: str, why: str, hint: str) -> NoReturn:
        sep = " " if why.startswith("is ") else ": "
        raise RequirementsFileError(f"{path.name}:{number} {redact_urls(written)!r}{sep}{why}",
                                    hint)

    def line(self, path: Path, number: int, written: str, line: str, *, constraint: bool,
             parents: tuple[Path, ...]) -> None:
        args, options = break_args_options(line)
        try:
            values, rest = _PARSER.parse_args(shlex.split(options), None)
        except (_OptionError, ValueError) as error:
            self.fail(path, number, written, str(error), "pip refuses this line too; fix it")
        if rest:
            self.fail(path, number, written, f"unexpected {' '.join(rest)!r}",
                      "one requirement per line; options start with -")
        # optparse shares a list default between calls; lists start as None here instead.
        opts = optparse.Values({k: ([] if v is None else v) for k, v in vars(values).items()})
        set_options = {k for k, v in vars(opts).items() if v not in ([], False, None)}
        if args:
            extra = set_options - _REQUIREMENT_OPTIONS
            if extra:
                self.fail(path, number, written, "only --hash, --config-settings and "
                          "--global-option may follow a requirement",
                          "put other options on a line of their own")
            self.entries.append(self.requirement(path, number, written, args, opts.hashes,
                                                 constraint=constraint, editable=False))
            return
        if set_options & _REQUIREMENT_OPTIONS:
            self.fail(path, number, written, "--hash and --config-settings belong after a "
                      "requirement on its line", "join it to its requirement with `\\`")
        for editable in opts.editables:
            self.entries.append(self.requirement(path, number, written, editable, [],
                                                 constraint=constraint, editable=True))
        for include in opts.requirements:
            self.read(self.resolve(path, include), constraint=constraint, parents=parents)
        for include in opts.constraints:
            self.read(self.resolve(path, include), constraint=True, parents=parents)
        index_options = set_options - {"editables", "requirements", "constraints"}
        if index_options:
            self.option_lines.append(written)
        if opts.index_url:
            self.index_url = opts.index_url
        self.extra_index_urls += opts.extra_index_urls
        self.find_links += [self.link(path, link) for link in opts.find_links]
        self.no_index |= opts.no_index
        self.pre |= opts.pre
        self.prefer_binary |= opts.prefer_binary
        self.require_hashes |= opts.require_hashes
        self.trusted_hosts += opts.trusted_hosts
        self.only_binary += opts.only_binary
        self.no_binary += opts.no_binary

    def resolve(self, parent: Path, include: str) -> Path:
        """pip: an include is relative to the file that names it (URLs are not followed)."""
        if _SCHEME_RE.match(include) and not include.startswith("file:"):
            raise RequirementsFileError(
                f"{parent.name}: -r/-c {redact_urls(include)} is a URL",
                "download it into the project and include it by path (a build must not "
                "depend on a file that can change under it)")
        local = Path(unquote(urlsplit(include).path)) if include.startswith("file:") \
            else Path(include)
        return local if local.is_absolute() else parent.parent / local

    def link(self, parent: Path, link: str) -> str:
        """pip: a relative --find-links in a file is relative to that file, when it exists."""
        if _SCHEME_RE.match(link) or Path(link).is_absolute():
            return link
        return _relative(parent.parent / link, self.order[0].parent) \
            if parent != self.order[0] else link

    def requirement(self, path: Path, number: int, written: str, text: str,
                    hashes: list[str], *, constraint: bool, editable: bool) -> Line:
        hashes_ = tuple(h.lower() for h in hashes)
        for value in hashes_:
            if not re.fullmatch(r"(sha256|sha384|sha512|md5|sha1|sha224):[0-9a-f]+", value):
                self.fail(path, number, written, f"--hash {value!r} is not <algorithm>:<hex>",
                          "copy the hash as pip-compile --generate-hashes writes it")
        location, extras, marker = _split_location(text)
        if _looks_like_location(location, editable):
            try:
                parsed_marker = Marker(marker) if marker else None
            except InvalidMarker as error:
                self.fail(path, number, written, str(error).splitlines()[0],
                          "write the marker after '; '")
            is_url = bool(_SCHEME_RE.match(location)) or location.startswith(_VCS)
            return Line(path, number, written, path=None if is_url else location,
                        url=location if is_url else None, extras=extras, marker=parsed_marker,
                        editable=editable, constraint=constraint, hashes=hashes_, spec=text)
        if editable:
            self.fail(path, number, written, "-e needs a local folder or a VCS URL",
                      "write -e ./path/to/project")
        try:
            requirement = Requirement(text)
        except InvalidRequirement as error:
            self.fail(path, number, written, "is not a valid requirement "
                      f"({str(error).splitlines()[0]})",
                      "write it as a PEP 508 requirement (name[extras] specifier; marker)")
        return Line(path, number, written, requirement=requirement,
                    extras=frozenset(requirement.extras), marker=requirement.marker,
                    editable=editable, constraint=constraint, hashes=hashes_, spec=text)


def requirement_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, requirement) for each requirement line of ``text``, read with the one
    grammar (``bundler.requirements``): the requirement part only (its ``--hash`` options
    dropped, ``-e`` unwrapped); option lines and comments skipped, includes not followed."""
    for number, line in logical_lines(text):
        args, options = break_args_options(line)
        if args:
            yield number, args.strip()
        elif line.startswith(("-e ", "--editable ", "--editable=")):
            yield number, options.split(maxsplit=1)[-1].removeprefix("--editable=")


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, logical line) of a requirements file, as pip's ``preprocess``:
    ``\\`` continuations joined, then comments and blank lines dropped."""
    primary: int | None = None
    pending: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.endswith("\\") or COMMENT_RE.match(line):
            if COMMENT_RE.match(line):
                line = " " + line  # so the comment is removed below
            if pending:
                pending.append(line)
                assert primary is not None
                yield from _uncommented(primary, "".join(pending))
                pending = []
            else:
                yield from _uncommented(number, line)
        else:
            if not pending:
                primary = number
            pending.append(line.strip("\\"))
    if pending:
        assert primary is not None
        yield from _uncommented(primary, "".join(pending))


def _uncommented(number: int, line: str) -> Iterator[tuple[int, str]]:
    line = COMMENT_RE.sub("", line).strip()
    if line:
        yield number, line


def expand_env(line: str, environ: Mapping[str, str]) -> str:
    """pip's ``${NAME}`` expansion (upper-case, digits, ``_``); unset names stay as written."""
    return ENV_VAR_RE.sub(lambda m: environ.get(m["name"], m["var"]), line)


def break_args_options(line: str) -> tuple[str, str]:
    """pip's split of a line into its requirement and its options: tokens (split on spaces)
    up to the first that starts with ``-``."""
    tokens = line.split(" ")
    args: list[str] = []
    options = tokens[:]
    for token in tokens:
        if token.startswith("-"):
            break
        args.append(token)
        options.pop(0)
    return " ".join(args), " ".join(options)


def _split_location(text: str) -> tuple[str, frozenset[str], str | None]:
    """``location[extras] ; marker`` -> its parts, as pip's ``parse_req_from_line`` splits a
    URL or path (a URL's marker needs a space before the ``;``)."""
    marker: str | None = None
    if _SCHEME_RE.match(text) or text.startswith(_VCS):
        location, sep, rest = text.partition("; ")
        if sep:
            marker = rest.strip()
    else:
        location, sep, rest = text.partition(";")
        if sep:
            marker = rest.strip()
    location = location.strip()
    extras: frozenset[str] = frozenset()
    if match := re.fullmatch(r"(.*?)(\[[^\]]*\])", location):
        location = match.group(1)
        extras = frozenset(e.strip() for e in match.group(2)[1:-1].split(",") if e.strip())
    return location, extras, marker


def _looks_like_location(location: str, editable: bool) -> bool:
    """pip's test for a URL or path rather than a name: a scheme, a VCS prefix, a path
    separator, a leading ``.``, or an archive file name."""
    if _SCHEME_RE.match(location) or location.startswith(_VCS):
        return True
    if editable:
        return True
    before, at, _ = location.partition("@")
    if at and not _looks_like_path(before):
        return False  # ``name @ url``: PEP 508
    return _looks_like_path(location) or location.endswith(_ARCHIVES)


def _looks_like_path(text: str) -> bool:
    return "/" in text or text.startswith(".") or (os.sep != "/" and os.sep in text)


def pyproject_requirements(path: Path) -> Requirements:
    """``[project].dependencies`` of a pyproject.toml, for projects without requirements.txt."""
    import tomllib

    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"{path}: cannot be read ({error})", "fix the file") from None
    dependencies = document.get("project", {}).get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise UsageError(f"{path}: [project].dependencies must be a list of strings",
                         "fix the file")
    return Requirements.from_lines(dependencies, path, "\n".join(dependencies) + "\n")
