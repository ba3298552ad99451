"""The wheel cache and its downloads under faults: a trickling index, 429/503 with Retry-After,
a read-only cache (as CI restores it), a full disk, no home folder, credentials in URLs.

Every fault is real: the loopback index trickles and answers 429/503 itself, the read-only
cache is a read-only bind mount (or a chmod when not root), the full disk a tiny tmpfs. Only
the retry sleeps are injected, so nothing here waits on a backoff.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from bundler.build import build_project
from bundler.cache import WheelCache, cache_root
from bundler.errors import BuildError, UsageError
from bundler.lock import WheelRef
from bundler.settings import DownloadPolicy, retry_delay
from tests.support import RunCli
from tests.support.index import SimpleIndex
from tests.support.projects import make_project
from tests.support.users import as_user


def ref_for(index: SimpleIndex, wheelhouse: Path, prefix: str = "beta-1.0-") -> WheelRef:
    wheel = next(wheelhouse.glob(f"{prefix}*.whl"))
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return WheelRef(wheel.name, sha, url=index.file_url(wheel.name))


def cache_with(tmp_path: Path, sleeps: list[float], **policy: float) -> WheelCache:
    return WheelCache(tmp_path / "cache", policy=DownloadPolicy(**policy),  # type: ignore[arg-type]
                      sleep=sleeps.append)


@pytest.fixture
def index(simple_index: SimpleIndex, monkeypatch: pytest.MonkeyPatch) -> SimpleIndex:
    monkeypatch.setenv("PIP_INDEX_URL", simple_index.url)
    return simple_index


# -- downloads ------------------------------------------------------------------------------


def test_a_trickling_index_is_cut_off_at_the_download_deadline(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1 byte every 0.5 s never trips a read timeout; the deadline per download does."""
    project = make_project(tmp_path / "agent", "beta==1.0\n")
    assert run_cli("lock", project).exit_code == 0
    index.trickle = 0.5  # the ~900-byte wheel would take ~7 minutes
    monkeypatch.setenv("FBUNDLE_DOWNLOAD_DEADLINE", "1")
    result = run_cli("build", project)
    assert result.exit_code == 1, result.output
    assert "took longer than 1 s" in result.stderr and "FBUNDLE_DOWNLOAD_DEADLINE" in result.stderr
    assert not (project / "dist" / "agent.zip").exists()
    assert not list((Path(os.environ["FBUNDLE_CACHE_DIR"]) / "wheels").rglob("*.whl"))


def test_a_malformed_deadline_is_one_line_and_exit_2(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "agent", "beta==1.0\n")
    monkeypatch.setenv("FBUNDLE_DOWNLOAD_DEADLINE", "soon")
    result = run_cli("build", project)
    assert result.exit_code == 2
    assert "FBUNDLE_DOWNLOAD_DEADLINE='soon' is not a number of seconds" in result.stderr


def test_503_and_429_are_retried_after_what_retry_after_says(
    tmp_path: Path, simple_index: SimpleIndex, wheelhouse: Path
) -> None:
    sleeps: list[float] = []
    cache = cache_with(tmp_path, sleeps)
    simple_index.fail_with, simple_index.fail_times, simple_index.retry_after = 503, 2, "7"
    assert cache.fetch(ref_for(simple_index, wheelhouse)).is_file()
    assert sleeps == [7.0, 7.0]
    sleeps.clear()
    simple_index.fail_with, simple_index.fail_times, simple_index.retry_after = 429, 3, None
    assert cache.fetch(ref_for(simple_index, wheelhouse, "delta-1.0-")).is_file()
    assert sleeps == [1.0, 2.0, 4.0]  # no Retry-After: exponential backoff
    cache.close()


def test_a_429_that_never_ends_says_rate_limited_not_credentials(
    tmp_path: Path, simple_index: SimpleIndex, wheelhouse: Path
) -> None:
    sleeps: list[float] = []
    cache = cache_with(tmp_path, sleeps, retries=2)
    simple_index.fail_with = 429
    with pytest.raises(BuildError) as caught:
        cache.fetch(ref_for(simple_index, wheelhouse))
    cache.close()
    assert "failed after 3 attempts (HTTP 429 (rate limited))" in caught.value.message
    assert "retry later" in str(caught.value) and "credential" not in str(caught.value)
    assert sleeps == [1.0, 2.0]
    assert sum(n for path, n in simple_index.hits.items() if path.startswith("/files/")) == 3


def test_a_401_is_not_retried_and_points_at_credentials(
    tmp_path: Path, simple_index: SimpleIndex, wheelhouse: Path
) -> None:
    sleeps: list[float] = []
    cache = cache_with(tmp_path, sleeps)
    simple_index.fail_with = 401
    with pytest.raises(BuildError, match="HTTP 401") as caught:
        cache.fetch(ref_for(simple_index, wheelhouse))
    cache.close()
    assert "credentials" in str(caught.value) and sleeps == []


def test_retry_after_is_read_as_seconds_or_an_http_date_and_capped() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=100), usegmt=True)
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=100), usegmt=True)
    assert retry_delay("3", 0, 1.0, 30.0) == 3.0
    assert retry_delay("120", 0, 1.0, 30.0) == 30.0  # capped by FBUNDLE_BACKOFF_MAX
    assert retry_delay(soon, 0, 1.0, 30.0) == 30.0
    assert retry_delay(past, 0, 1.0, 30.0) == 0.0
    assert retry_delay("whenever", 2, 1.0, 30.0) == 4.0  # unreadable: backoff
    assert retry_delay(None, 5, 1.0, 30.0) == 30.0


def test_credentials_in_a_wheel_url_never_reach_a_message_or_log(
    tmp_path: Path, simple_index: SimpleIndex, wheelhouse: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ref = ref_for(simple_index, wheelhouse)
    secret = "s3cr3t-PASSWORD"
    ref = WheelRef(ref.filename, ref.sha256,
                   url=ref.url.replace("http://", f"http://user:{secret}@"))  # type: ignore[union-attr]
    caplog.set_level(logging.DEBUG)
    cache = cache_with(tmp_path, [], retries=1)
    simple_index.fail_with = 503
    with pytest.raises(BuildError) as caught:
        cache.fetch(ref)
    simple_index.fail_with = None
    assert cache.fetch(ref).is_file()  # and the credentials still authenticate
    cache.close()
    assert secret not in str(caught.value)
    assert caplog.records and not [r for r in caplog.records if secret in r.getMessage()]


# -- the cache folder -------------------------------------------------------------------------


def read_only_run(folder: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with ``folder`` read-only: a read-only bind mount in a user namespace when
    we are root (root ignores file modes), else the folder's write bits removed."""
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(folder)], check=True)
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False)
        finally:
            subprocess.run(["chmod", "-R", "u+w", str(folder)], check=True)
    if shutil.which("unshare") is None:
        pytest.skip("unshare is needed to make a read-only folder as root")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, str(folder), *argv],
                          capture_output=True, text=True, check=False)


def fbundle(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "bundler", *map(str, args)]


def test_a_read_only_cache_that_holds_every_wheel_builds_even_offline(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli
) -> None:
    project = make_project(tmp_path / "agent", "alpha\nnative\n")
    assert run_cli("lock", project).exit_code == 0
    first = build_project(project)
    shutil.rmtree(project / "dist")
    index.reset()
    cache = Path(os.environ["FBUNDLE_CACHE_DIR"])
    for flags in (["--offline"], []):
        result = read_only_run(cache, fbundle("build", project, *flags))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == first.sha256
        shutil.rmtree(project / "dist")
    assert index.total == 0


def test_a_read_only_cache_missing_a_wheel_names_the_folder_and_what_to_do(
    tmp_path: Path, index: SimpleIndex, run_cli: RunCli
) -> None:
    project = make_project(tmp_path / "agent", "beta==1.0\n")
    assert run_cli("lock", project).exit_code == 0
    cache = Path(os.environ["FBUNDLE_CACHE_DIR"])
    result = read_only_run(cache, fbundle("build", project))
    assert result.returncode == 1, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert f"cannot write to the wheel cache at {cache}" in line
    assert "set FBUNDLE_CACHE_DIR to a writable folder" in line
    assert "Errno" not in result.stderr and "Traceback" not in result.stderr


def test_a_full_disk_under_the_cache_names_the_folder_and_what_to_do(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a tiny tmpfs needs a user namespace (root here)")
    from tests.support.wheels import make_wheel

    folder = tmp_path / "wheels"
    folder.mkdir()
    blob = b"".join(hashlib.sha256(i.to_bytes(2, "big")).digest() for i in range(2048))
    make_wheel(folder, "bulky", "1.0", files={"bulky/__init__.py": b"", "bulky/blob": blob})
    with SimpleIndex(folder) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index.url)
        project = make_project(tmp_path / "agent", "bulky\n")
        assert run_cli("lock", project).exit_code == 0
        cache = tmp_path / "small-cache"
        cache.mkdir()
        script = 'mount -t tmpfs -o size=16k tmpfs "$0" && exec "$@"'
        result = subprocess.run(["unshare", "-rm", "sh", "-c", script, str(cache),
                                 *fbundle("build", project)], capture_output=True, text=True,
                                env={**os.environ, "FBUNDLE_CACHE_DIR": str(cache)},
                                check=False)
    assert result.returncode == 1, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert f"cannot write to the wheel cache at {cache}: the disk is full" in line
    assert "FBUNDLE_CACHE_DIR" in line and "Errno" not in result.stderr


def test_an_empty_home_uses_the_users_home_from_the_password_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As pip does (platformdirs): HOME='' is not the root of the file system."""
    for name in ("FBUNDLE_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "")
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    assert cache_root() == home / ".cache" / "fbundle"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # not absolute: ignored (XDG spec)
    assert cache_root() == home / ".cache" / "fbundle"


def test_no_home_at_all_is_refused_instead_of_a_cache_at_the_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HOME='' and a user the password database does not know (a container's random uid):
    the old fallback wrote /.cache/fbundle."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FBUNDLE_CACHE_DIR", "XDG_CACHE_HOME")}
    env["HOME"] = ""
    code = ("from bundler.cache import cache_root\nfrom bundler.errors import UsageError\n"
            "try:\n    cache_root()\nexcept UsageError as error:\n    print(error)\n"
            "    raise SystemExit(error.exit_code)\n")
    with as_user(54321, env) as (as_stranger, child_env):
        result = subprocess.run([*as_stranger, "-c", code], capture_output=True, text=True,
                                env=child_env, cwd="/", check=False)
    assert result.returncode == 2, result.stderr
    assert "no folder for the wheel cache" in result.stdout
    assert "set FBUNDLE_CACHE_DIR" in result.stdout
    assert not Path("/.cache/fbundle").exists()
    monkeypatch.setenv("FBUNDLE_CACHE_DIR", "")  # and in-process, a root-relative fallback
    monkeypatch.setenv("XDG_CACHE_HOME", "/")
    with pytest.raises(UsageError):
        cache_root()
