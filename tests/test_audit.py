"""``fbundle diff``, ``audit`` and ``inspect --provenance``: real builds against the loopback
index, zips tampered with or recompressed by ``zipfile``, compared through the CLI."""

from __future__ import annotations

import json
import random
import shutil
import zipfile
from pathlib import Path

import pytest

from bundler.diff import diff_paths
from bundler.lock import Lock
from bundler.model import file_sha256
from bundler.write import compressor_fingerprint
from tests.support import RunCli
from tests.support.index import SimpleIndex
from tests.support.projects import make_project

BETA = "packages/beta/__init__.py"



def words(count: int, seed: int = 7) -> str:
    """Compressible but irregular text: deflate levels give different streams for it."""
    rng = random.Random(seed)
    vocabulary = ["agent", "bundle", "wheel", "zip", "lock", "audit", "deflate", "foundry",
                  "packages", "runtime", "python", "record", "digest", "sha256"]
    return " ".join(rng.choice(vocabulary) for _ in range(count)) + "\n"


@pytest.fixture
def built(tmp_path: Path, index: SimpleIndex, run_cli: RunCli) -> tuple[Path, Path]:
    """A locked project and the zip `fbundle build` made of it."""
    project = make_project(tmp_path / "agent", "alpha\n", files={"notes.txt": words(4000)})
    assert run_cli("lock", project).exit_code == 0
    result = run_cli("build", project)
    assert result.exit_code == 0, result.output
    return project, project / "dist" / "agent.zip"


def rewrite(source: Path, target: Path, *, change: str | None = None,
            add: dict[str, bytes] | None = None, chmod: dict[str, int] | None = None,
            drop: tuple[str, ...] = (), compress_type: int | None = None,
            level: int | None = None) -> Path:
    """Copy a zip entry by entry with ``zipfile``, the way someone would tamper with one:
    flip one byte of ``change``, add, drop or chmod entries, or recompress everything."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename in drop:
                continue
            data = old.read(info)
            if info.filename == change:
                data = data[:-2] + bytes([data[-2] ^ 0x01]) + data[-1:]
            if chmod and info.filename in chmod:
                info.external_attr = (0o100000 | chmod[info.filename]) << 16
            if compress_type is not None:
                info.compress_type = compress_type
            new.writestr(info, data, compresslevel=level)
        for name, data in (add or {}).items():
            extra = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            extra.external_attr = 0o100644 << 16
            new.writestr(extra, data, zipfile.ZIP_DEFLATED)
    return target


def test_lock_build_audit_round_trip_reproduces_the_content_digest(
    built: tuple[Path, Path], run_cli: RunCli
) -> None:
    project, zip_path = built
    identities = json.loads(zip_path.with_name("agent.zip.json").read_text())
    dist_before = {p.name: p.stat().st_mtime_ns for p in (project / "dist").iterdir()}
    result = run_cli("audit", zip_path, project)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-2:] == [
        f"byte-identical zip, sha256 {identities['sha256']}",
        f"reproduced {identities['content_digest']}",
    ]
    # the rebuild happened elsewhere: dist/ is exactly as it was
    assert {p.name: p.stat().st_mtime_ns for p in (project / "dist").iterdir()} == dist_before


def test_tampered_zip_is_caught_and_named_by_diff_and_audit(
    built: tuple[Path, Path], tmp_path: Path, run_cli: RunCli
) -> None:
    project, zip_path = built
    tampered = rewrite(zip_path, tmp_path / "tampered.zip", change="main.py",
                       add={"extra.py": b"import os\n"}, chmod={BETA: 0o755})
    result = run_cli("diff", zip_path, tampered)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert "+ extra.py  (added)" in lines
    assert any(line.startswith("~ main.py  (content: sha256 ") for line in lines), lines
    assert f"~ {BETA}  (permissions: mode 644 -> 755)" in lines
    assert lines[-1].startswith("different: 1 added, 0 removed, 1 content, 1 permissions")

    data = json.loads(run_cli("diff", zip_path, tampered, "--json").stdout)
    assert data["added"] == ["extra.py"] and data["removed"] == []
    serious = {c["name"]: c["kind"] for c in data["changed"]
               if c["kind"] in ("content", "permissions")}
    assert serious == {"main.py": "content", BETA: "permissions"}
    assert not data["identical"] and not data["sha256_equal"]
    assert not data["content_digest_equal"]

    audited = run_cli("audit", tampered, project)
    assert audited.exit_code == 1, audited.output
    # the audit compares the zip (A) with the rebuild (B): what the zip has extra is "removed"
    assert "- extra.py  (removed)" in audited.stdout
    assert "~ main.py  (content: " in audited.stdout
    assert f"~ {BETA}  (permissions: mode 755 -> 644)" in audited.stdout
    assert audited.stdout.splitlines()[-1].startswith("not reproduced: ")


@pytest.mark.parametrize(("method", "level"), [
    (zipfile.ZIP_DEFLATED, 1), (zipfile.ZIP_DEFLATED, 9), (zipfile.ZIP_STORED, None)],
    ids=["deflate-1", "deflate-9", "stored"])
def test_recompressed_zip_differs_in_sha_but_not_in_content_digest(
    built: tuple[Path, Path], tmp_path: Path, run_cli: RunCli, method: int, level: int | None
) -> None:
    _, zip_path = built
    other = rewrite(zip_path, tmp_path / "other.zip", compress_type=method, level=level)
    result = run_cli("diff", zip_path, other)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    changed = [line for line in lines if line.startswith("~ ")]
    assert any(line.startswith("~ notes.txt  (compressed bytes only: ") for line in changed)
    assert all("(compressed bytes only: " in line for line in changed), changed
    assert not any(line.startswith(("+ ", "- ")) for line in lines)
    assert lines[-3].startswith("sha256: differs ")
    digest = json.loads(zip_path.with_name("agent.zip.json").read_text())["content_digest"]
    assert lines[-2] == f"content digest: equal {digest}"


def test_audit_explains_a_sha_mismatch_with_the_recorded_compressor(
    built: tuple[Path, Path], tmp_path: Path, run_cli: RunCli
) -> None:
    project, zip_path = built
    other = rewrite(zip_path, tmp_path / "agent.zip", compress_type=zipfile.ZIP_DEFLATED, level=1)
    sidecar = json.loads(zip_path.with_name("agent.zip.json").read_text())
    sidecar["compressor"] = "zlib-1.2.11-level1"  # as if another machine had written it
    other.with_name("agent.zip.json").write_text(json.dumps(sidecar))
    result = run_cli("audit", other, project)
    assert result.exit_code == 0, result.output
    note = next(line for line in result.stdout.splitlines() if line.startswith("note: "))
    assert "but the content digest matches" in note
    assert f"written with zlib-1.2.11-level1, this machine writes {compressor_fingerprint()}" \
        in note
    assert result.stdout.splitlines()[-1] == f"reproduced {sidecar['content_digest']}"
    strict = run_cli("audit", other, project, "--strict")
    assert strict.exit_code == 1
    # the same compressor recorded: then the zip was rewritten after the build
    sidecar["compressor"] = compressor_fingerprint()
    other.with_name("agent.zip.json").write_text(json.dumps(sidecar))
    again = run_cli("audit", other, project, "--json")
    data = json.loads(again.stdout)
    assert data["reproduced"] and not data["byte_identical"]
    assert "rewritten after it was built" in data["notes"][0]


def test_timestamps_only_is_its_own_class(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    _, zip_path = built
    other = tmp_path / "later.zip"
    with zipfile.ZipFile(zip_path) as old, zipfile.ZipFile(other, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == "main.py":
                info.date_time = (2024, 5, 6, 7, 8, 10)
            new.writestr(info, data)
    result = diff_paths(zip_path, other)
    main = next(c for c in result.changed if c.name == "main.py")
    assert main.kind == "metadata"
    assert "time 1980-01-01 00:00:00 -> 2024-05-06 07:08:10" in main.details
    assert result.same_files and not result.identical


def test_zip_and_its_extracted_folder_compare_equal_until_a_file_changes(
    built: tuple[Path, Path], tmp_path: Path, run_cli: RunCli
) -> None:
    _, zip_path = built
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    result = run_cli("diff", zip_path, folder)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "identical"
    (folder / "main.py").write_text("print('patched')\n")
    (folder / "notes.txt").unlink()
    result = run_cli("diff", zip_path, folder)
    assert result.exit_code == 1
    assert "- notes.txt  (removed)" in result.stdout
    assert "~ main.py  (content: " in result.stdout


def _small_zip(path: Path, files: dict[str, tuple[bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, (data, mode) in files.items():
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, data, zipfile.ZIP_DEFLATED)
    return path


def test_diff_golden_output(tmp_path: Path, run_cli: RunCli) -> None:
    a = _small_zip(tmp_path / "a.zip", {"app.py": (b"x = 1\n", 0o644),
                                        "gone.txt": (b"bye\n", 0o644),
                                        "run.sh": (b"#!/bin/sh\n", 0o644)})
    b = _small_zip(tmp_path / "b.zip", {"app.py": (b"x = 2\n", 0o644),
                                        "new.txt": (b"hi\n", 0o644),
                                        "run.sh": (b"#!/bin/sh\n", 0o755)})
    result = run_cli("diff", a, b)
    assert result.exit_code == 1
    sha_a, sha_b = file_sha256(a), file_sha256(b)
    digest_a = diff_paths(a, b).a.content_digest
    digest_b = diff_paths(a, b).b.content_digest
    assert result.stdout == (
        "+ new.txt  (added)\n"
        "- gone.txt  (removed)\n"
        "~ app.py  (content: sha256 9e26bf369911 -> 4205c4809ab1, 6 -> 6 bytes)\n"
        "~ run.sh  (permissions: mode 644 -> 755)\n"
        f"sha256: differs {sha_a} != {sha_b}\n"
        f"content digest: differs {digest_a} != {digest_b}\n"
        "different: 1 added, 1 removed, 1 content, 1 permissions\n"
    )
    same = run_cli("diff", a, tmp_path / "a.zip")
    assert same.exit_code == 0
    assert same.stdout.splitlines()[-1] == "identical"


@pytest.mark.parametrize("which", ["missing", "not-a-zip"])
def test_diff_of_an_unusable_input_is_one_line_and_exit_2(
    tmp_path: Path, run_cli: RunCli, which: str
) -> None:
    good = _small_zip(tmp_path / "a.zip", {"app.py": (b"x\n", 0o644)})
    bad = tmp_path / "bad.zip"
    if which == "not-a-zip":
        bad.write_bytes(b"PK\x03\x04 this is not a zip")
    result = run_cli("diff", good, bad)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "bad.zip" in result.stderr


def test_provenance_names_the_wheel_of_every_packages_file(
    built: tuple[Path, Path], run_cli: RunCli
) -> None:
    project, zip_path = built
    lock = Lock.read(project / "pylock.toml").by_name()
    result = run_cli("inspect", zip_path, "--provenance", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["provenance"]
    assert data["lock"] == str((project / "pylock.toml").resolve())
    with zipfile.ZipFile(zip_path) as archive:
        packaged = sorted(n for n in archive.namelist() if n.startswith("packages/"))
    assert [f["name"] for f in data["files"]] == packaged
    for item in data["files"]:
        pin = lock[item["distribution"]]
        assert item["status"] == "ok"
        assert (item["version"], item["wheel"], item["sha256"], item["url"]) == \
            (pin.version, pin.wheel.filename, pin.wheel.sha256, pin.wheel.url)
        top = item["name"].split("/")[1]
        assert top.split("-")[0].split(".")[0] == item["distribution"]
    assert data["unowned"] == [] and data["missing"] == []
    text = run_cli("inspect", zip_path, "--provenance").stdout
    beta = lock["beta"]
    assert f"{BETA}  beta {beta.version}  {beta.wheel.filename}  sha256:{beta.wheel.sha256}  " \
        f"{beta.wheel.url}" in text.splitlines()


def test_provenance_reports_unowned_and_modified_files_and_falls_back_to_the_sidecar(
    built: tuple[Path, Path], tmp_path: Path, run_cli: RunCli
) -> None:
    _, zip_path = built
    elsewhere = tmp_path / "shipped"
    elsewhere.mkdir()
    shipped = rewrite(zip_path, elsewhere / "agent.zip")
    # away from its project, the lock that travelled inside the zip names the wheels
    inside = run_cli("inspect", shipped, "--provenance").stdout.splitlines()
    assert "wheels named from: agent.zip!pylock.toml; 0 unowned, 0 modified" in inside
    tampered = rewrite(zip_path, elsewhere / "agent.zip", change=BETA, drop=("pylock.toml",),
                       add={"packages/stray.py": b"x = 1\n"})
    shutil.copy(zip_path.with_name("agent.zip.json"), elsewhere / "agent.zip.json")
    result = run_cli("inspect", tampered, "--provenance")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "packages/stray.py  unowned (no RECORD lists it)" in lines
    beta_line = next(line for line in lines if line.startswith(f"{BETA}  "))
    assert beta_line.endswith("MODIFIED (bytes differ from RECORD)")
    assert "beta-2.0-py3-none-any.whl" in beta_line  # named from the sidecar, no url there
    assert "wheels named from: agent.zip.json; 1 unowned, 1 modified" in lines


def test_inspect_lists_entries_with_modes_and_both_identities(
    built: tuple[Path, Path], run_cli: RunCli
) -> None:
    _, zip_path = built
    result = run_cli("inspect", zip_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("-rw-r--r--") and line.endswith("  main.py") for line in lines)
    identities = json.loads(zip_path.with_name("agent.zip.json").read_text())
    assert lines[-2] == f"sha256 {identities['sha256']}"
    assert lines[-1].startswith(f"content digest {identities['content_digest']}  (")


def test_inspect_golden_output(tmp_path: Path, run_cli: RunCli) -> None:
    zip_path = _small_zip(tmp_path / "a.zip", {"main.py": (b"print(1)\n", 0o644),
                                               "run.sh": (b"#!/bin/sh\n", 0o755)})
    side = diff_paths(zip_path, zip_path).a
    result = run_cli("inspect", zip_path)
    assert result.exit_code == 0
    assert result.stdout == (
        "-rw-r--r--           9  main.py\n"
        "-rwxr-xr-x          10  run.sh\n"
        f"sha256 {file_sha256(zip_path)}\n"
        f"content digest {side.content_digest}  (2 entries)\n"
    )


def test_audit_of_a_missing_zip_is_a_usage_error(tmp_path: Path, run_cli: RunCli) -> None:
    project = make_project(tmp_path / "agent", "", mode="remote_build")
    result = run_cli("audit", tmp_path / "nope.zip", project)
    assert result.exit_code == 2
    missing = tmp_path / "nope.zip"
    assert result.stderr == f"error: {missing}: no such file — pass the zip to audit\n"


def test_inspect_and_diff_read_a_folder_as_build_would_ship_it(tmp_path: Path,
                                                               run_cli: RunCli) -> None:
    """What never ships (the default excludes, .fbundleignore, dist/, metadata.json, a
    secret-looking file) is not listed or compared: the folder equals the zip built from it."""
    project = make_project(tmp_path / "agent", "", mode="remote_build", files={
        ".git/HEAD": "ref", "__pycache__/main.cpython-313.pyc": "x", ".env": "TOKEN=1",
        "id_rsa": "key", "scratch/big.txt": "x", ".fbundleignore": "scratch/\n",
        "run.sh": "#!/bin/sh\n", "lib/util.py": "X = 1\n"})
    assert run_cli("build", project).exit_code == 0
    zip_path = project / "dist" / "agent.zip"
    with zipfile.ZipFile(zip_path) as archive:
        shipped = sorted(archive.namelist())
    listed = run_cli("inspect", project, "--json")
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.stdout)
    assert [e["name"] for e in data["entries"]] == shipped
    assert "lib/util.py" in shipped and "run.sh" in shipped
    assert data["content_digest"] == json.loads(run_cli("inspect", zip_path, "--json").stdout)[
        "content_digest"]
    assert next(e["mode"] for e in data["entries"] if e["name"] == "run.sh") == "755"
    compared = run_cli("diff", project, zip_path)
    assert compared.exit_code == 0, compared.output
    # a file that would ship is still seen
    (project / "new.py").write_text("print(2)\n")
    compared = run_cli("diff", project, zip_path, "--json")
    assert compared.exit_code == 1
    assert json.loads(compared.stdout)["removed"] == ["new.py"]  # in the folder (A) only
