"""Fixtures every test can use: the standard wheel corpus, a loopback index, CPython 3.13 and
3.14, an environment that cannot reach a real index or read a user's config, and the CLI runner.

The generators live in ``tests/support`` (wheels, binaries, index); nothing here is checked in
as bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.support import RunCli
from tests.support import python314 as py314
from tests.support.index import SimpleIndex
from tests.support.wheels import standard_corpus

PYTHON313_FALLBACK = Path("/root/.pyenv/versions/3.13.0/bin/python3.13")
#: A port nothing listens on: with the proxies pointed here, a request that would leave the
#: machine fails at once instead of reaching pypi.org.
BLACKHOLE_PROXY = "http://127.0.0.1:9"
LOOPBACK = "127.0.0.1,localhost,::1"


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the standard corpus (``tests.support.wheels.CORPUS_DESCRIPTION``).

    Session-scoped and shared: treat it as read-only (copy wheels out to change them).
    """
    directory = tmp_path_factory.mktemp("wheelhouse")
    standard_corpus(directory)
    return directory


@pytest.fixture(scope="session")
def simple_index(wheelhouse: Path) -> Iterator[SimpleIndex]:
    """A loopback PEP 503/691 index over ``wheelhouse``; its hit counters start at zero.

    Shared by the session: every test that asks for it starts with ``hits`` empty and
    ``fail_with`` unset (reset before and after each test). Don't ``close()`` it; make your
    own ``SimpleIndex(wheelhouse)`` for that.
    """
    with SimpleIndex(wheelhouse) as index:
        yield index


@pytest.fixture(autouse=True)
def _reset_simple_index(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test using the shared index starts with zero hits and leaves it healthy."""
    index: SimpleIndex | None = None
    if "simple_index" in request.fixturenames:
        index = request.getfixturevalue("simple_index")
        index.reset()
    yield
    if index is not None:
        index.reset()


def _find_python313() -> Path | None:
    pyenv = shutil.which("pyenv")
    if pyenv is not None:
        found = subprocess.run(
            [pyenv, "which", "python3.13"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYENV_VERSION": "3.13.0"},
            check=False,
        )
        if found.returncode == 0 and found.stdout.strip():
            return Path(found.stdout.strip())
    return PYTHON313_FALLBACK if PYTHON313_FALLBACK.exists() else None


@pytest.fixture
def index(simple_index: SimpleIndex, monkeypatch: pytest.MonkeyPatch) -> SimpleIndex:
    """The loopback index, configured the way users configure pip (``PIP_INDEX_URL``)."""
    monkeypatch.setenv("PIP_INDEX_URL", simple_index.url)
    return simple_index


@pytest.fixture(scope="session")
def python313() -> Path:
    """The real CPython 3.13 (the service's runtime); skipped when absent, failed on CI."""
    found = _find_python313()
    if found is None:
        message = "CPython 3.13 not found (PYENV_VERSION=3.13.0 pyenv which python3.13)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def python314() -> Path:
    """The real CPython 3.14 (Debian sid's, see ``tests/support/python314.py``): a wrapper
    script usable as an interpreter path. Made on first use when missing (as root); skipped
    with the reason when it cannot be had, failed on CI."""
    found = py314.ensure()
    if found.wrapper is None:
        message = f"CPython 3.14 not available: {found.reason}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found.wrapper


@pytest.fixture(autouse=True)
def isolated_env(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """Every test gets its own caches and no user/site config; only loopback is reachable.

    - ``UV_CACHE_DIR``, ``PIP_CACHE_DIR``, ``FBUNDLE_CACHE_DIR``, ``XDG_CACHE_HOME`` point at
      fresh folders under the returned path.
    - Every ``PIP_*``/``UV_*``/``FBUNDLE_*`` variable is removed (``FBUNDLE_DEBUG`` kept), and
      so is ``SOURCE_DATE_EPOCH``: a test that wants one sets it.
    - ``PIP_CONFIG_FILE=/dev/null`` (pip then reads no config file at all), ``UV_NO_CONFIG=1``,
      ``UV_PYTHON_DOWNLOADS=never``, ``PIP_DISABLE_PIP_VERSION_CHECK=1``, ``PIP_NO_INPUT=1``;
      ``PYTHONPATH`` is removed so subprocess interpreters see only what the test gives them.
    - ``PIP_RETRIES=0`` and ``UV_HTTP_RETRIES=0``: a refused or failing request (``fail_with``)
      fails at once instead of after seconds of backoff; a test about retries sets them back.
    - HTTP(S) proxies point at a closed loopback port with ``NO_PROXY`` for loopback, so pip,
      uv and httpx reach the test's own servers and fail fast on anything else.

    A test marked ``network`` keeps the machine's index configuration (pip/uv variables and
    config files, proxies) and only gets the fresh caches.
    """
    root = tmp_path_factory.mktemp("env")
    network = request.node.get_closest_marker("network") is not None
    if not network:
        for name in list(os.environ):
            if name.startswith(("PIP_", "UV_")) or (
                name.startswith("FBUNDLE_") and name != "FBUNDLE_DEBUG"
            ):
                monkeypatch.delenv(name)
        monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
        monkeypatch.delenv("PYTHONPATH", raising=False)
        monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
        monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        monkeypatch.setenv("PIP_NO_INPUT", "1")
        monkeypatch.setenv("UV_NO_CONFIG", "1")
        monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
        monkeypatch.setenv("PIP_RETRIES", "0")
        monkeypatch.setenv("UV_HTTP_RETRIES", "0")
        for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(proxy, BLACKHOLE_PROXY)
            monkeypatch.setenv(proxy.lower(), BLACKHOLE_PROXY)
        monkeypatch.setenv("NO_PROXY", LOOPBACK)
        monkeypatch.setenv("no_proxy", LOOPBACK)
    for variable, folder in (
        ("UV_CACHE_DIR", "uv"),
        ("PIP_CACHE_DIR", "pip"),
        ("FBUNDLE_CACHE_DIR", "fbundle"),
        ("XDG_CACHE_HOME", "xdg"),
    ):
        (root / folder).mkdir()
        monkeypatch.setenv(variable, str(root / folder))
    return root


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that is the whole PATH: only what a test installs there is found
    (stand-in ``dotnet`` and ``az`` executables)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    return folder


@pytest.fixture
def run_cli() -> RunCli:
    """``run_cli("build", path, input=None, env=None)`` -> click ``Result``.

    Invokes ``bundler.cli.cli`` in-process with click's ``CliRunner``; arguments may be paths.
    ``result.stdout`` and ``result.stderr`` are kept apart (``result.output`` has both).
    Exceptions that escape the CLI's error boundary are re-raised, so the test shows the
    traceback instead of a bare exit code 1.
    """
    from bundler.cli import cli

    runner = CliRunner()

    def invoke(
        *args: str | os.PathLike[str],
        input: str | bytes | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> Result:
        return runner.invoke(
            cli, [os.fspath(arg) for arg in args], input=input, env=env, catch_exceptions=False
        )

    return invoke
