"""``fbundle validate`` through click's CliRunner: golden output, exit codes, hostile input."""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundler.cli import cli
from bundler.model import BytesData, Entry
from bundler.project import example_metadata
from bundler.write import write_zip
from tests.support.binaries import elf, pe_dll

MAIN = {"main.py": b"print('hi')\n", "requirements.txt": b""}


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, ["validate", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def write(path: Path, files: dict[str, bytes]) -> Path:
    write_zip([Entry(n, len(b), BytesData(b)) for n, b in files.items()], path)
    return path


@pytest.fixture()
def bad(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "bad.zip", {**MAIN, "packages/x/_n.so": pe_dll(), ".env": b"K=1",
                                 "packages/y/lib.so": elf(machine=183)})
    return "bad.zip"


GOLDEN_TEXT = """\
FB110 .env: an environment file (often holding secrets) is shipped — remove it; set \
environment_variables in metadata.json
FB301 packages/x/_n.so: Windows PE binary (x86_64); the runtime is Linux x86_64 — install the \
manylinux x86_64 wheel instead: pip install --platform manylinux2014_x86_64 \
--only-binary=:all: (fbundle build does)
FB303 packages/y/lib.so: ELF for aarch64; the runtime is x86-64 — install the manylinux x86_64 \
wheel instead: pip install --platform manylinux2014_x86_64 --only-binary=:all: (fbundle build \
does)
2 errors, 1 warning in bad.zip (5 files, 0.0 MB, python_3_13 bundled, dependencies in packages/)
"""


def test_text_output_is_one_line_per_finding_then_a_summary(bad: str) -> None:
    result = run(bad)
    assert result.exit_code == 1
    assert result.stdout == GOLDEN_TEXT


def test_json_output_holds_findings_and_summary(bad: str) -> None:
    result = run(bad, "--format", "json")
    document = json.loads(result.stdout)
    assert result.exit_code == 1
    assert [f["code"] for f in document["findings"]] == ["FB110", "FB301", "FB303"]
    assert document["findings"][1] == {
        "code": "FB301", "path": "packages/x/_n.so", "severity": "error",
        "message": "Windows PE binary (x86_64); the runtime is Linux x86_64",
        "hint": "install the manylinux x86_64 wheel instead: pip install --platform "
                "manylinux2014_x86_64 --only-binary=:all: (fbundle build does)"}
    assert document["summary"] == {"errors": 2, "warnings": 1, "location": "bad.zip",
                                   "files": 5, "bytes": document["summary"]["bytes"],
                                   "runtime": "python_3_13", "mode": "bundled",
                                   "layout": "dependencies in packages/"}


def test_github_output_is_workflow_commands(bad: str) -> None:
    lines = run(bad, "--format", "github").stdout.splitlines()
    assert lines[0].startswith("::warning file=.env,title=FB110::.env: an environment file")
    assert lines[1].startswith("::error file=packages/x/_n.so,title=FB301::packages/x/_n.so: "
                               "Windows PE binary")
    assert lines[-1].startswith("2 errors, 1 warning in bad.zip")


def test_select_and_ignore_pick_codes(bad: str) -> None:
    assert [ln.split()[0] for ln in run(bad, "--select", "FB3").stdout.splitlines()[:-1]] == [
        "FB301", "FB303"]
    only_warning = run(bad, "--ignore", "FB3")
    assert only_warning.exit_code == 0
    assert "warnings do not fail validation" in only_warning.stdout


def test_unknown_code_is_a_usage_error(bad: str) -> None:
    result = run(bad, "--select", "FB999")
    assert result.exit_code == 2 and "unknown rule code FB999" in result.output


def test_clean_bundle_exits_zero(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.zip", MAIN)
    result = run(str(path))
    assert result.exit_code == 0
    assert result.stdout.startswith("no findings in ")
    assert "python_3_13 remote_build" in result.stdout


def test_a_folder_about_to_be_zipped_is_validated(tmp_path: Path) -> None:
    (tmp_path / "my-agent").mkdir()
    (tmp_path / "my-agent" / "main.py").write_text("")
    result = run(str(tmp_path))
    assert result.exit_code == 1
    assert "FB101 my-agent/: every file sits under the folder my-agent/" in result.stdout


def test_metadata_beside_the_zip_sets_runtime_mode_and_entry_point(tmp_path: Path) -> None:
    write(tmp_path / "agent.zip", {**MAIN, "app.py": b""})
    (tmp_path / "metadata.json").write_text(json.dumps(example_metadata(
        "python_3_14", "remote_build", ["python", "app.py"])))
    result = run(str(tmp_path / "agent.zip"))
    assert result.exit_code == 0, result.output
    assert "python_3_14 remote_build" in result.stdout


def test_entry_point_flag_and_metadata_problems(tmp_path: Path) -> None:
    write(tmp_path / "agent.zip", MAIN)
    meta = example_metadata()
    meta["definition"]["memory"] = "3Gi"
    (tmp_path / "m.json").write_text(json.dumps(meta))
    result = run(str(tmp_path / "agent.zip"), "--metadata", str(tmp_path / "m.json"),
                 "--mode", "remote_build", "--entry-point", "python serve.py")
    lines = result.stdout.splitlines()
    assert result.exit_code == 1
    # well-formed but not a known allocation: a warning (the service is the judge)
    assert lines[0].startswith("FB604 metadata.json: definition.cpu '1' / memory '3Gi' is not "
                               "one of the known allocations")
    assert lines[1].startswith("FB102 serve.py:")


@pytest.mark.parametrize(("content", "message"), [
    (b"not a zip at all", "not a readable zip"),
    (b"", "not a readable zip"),
])
def test_unusable_input_exits_two_with_one_line(tmp_path: Path, content: bytes,
                                                message: str) -> None:
    (tmp_path / "x.zip").write_bytes(content)
    result = run(str(tmp_path / "x.zip"))
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_missing_input_and_bad_flags_exit_two(tmp_path: Path) -> None:
    assert run(str(tmp_path / "nope.zip")).exit_code == 2
    write(tmp_path / "ok.zip", MAIN)
    assert run(str(tmp_path / "ok.zip"), "--glibc", "two").exit_code == 2
    assert run(str(tmp_path / "ok.zip"), "--runtime", "python_2_7").exit_code == 2


def test_bad_crc_is_a_finding_not_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path / "crc.zip", {**MAIN, "data.txt": b"hello world" * 100})
    raw = bytearray(path.read_bytes())
    at = raw.index(b"data.txt") + len(b"data.txt") + 5  # inside the deflate stream
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    result = run(str(path))
    assert result.exit_code == 1
    assert "FB001 data.txt: cannot be read" in result.stdout


def test_300_mb_of_zeros_in_a_small_zip_is_a_size_warning(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in MAIN.items():
            archive.writestr(name, data)
        with archive.open("zeros.bin", "w", force_zip64=True) as member:
            for _ in range(300):
                member.write(bytes(1_000_000))  # 300 MB of zeros deflate to ~300 kB
    result = run(str(path), "--mode", "remote_build")
    # The zip is ~300 kB, so the upload limit is not the question; the unpacked total is a
    # warning (FB503), and each member stays within what deflate can produce.
    assert result.exit_code == 0, result.stdout
    assert "FB503" in result.stdout and "FB501" not in result.stdout


def test_lying_declared_size_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "lie.zip", {**MAIN, "a.txt": b"a" * 1000})
    raw = bytearray(path.read_bytes())
    central = raw.index(b"PK\x01\x02")
    # Find a.txt's central record and declare 4 GB - 1 uncompressed.
    at = raw.index(b"a.txt", central) - 46
    struct.pack_into("<I", raw, at + 24, 0xFFFFFFF0)
    path.write_bytes(bytes(raw))
    result = run(str(path), "--mode", "remote_build")
    assert result.exit_code == 1
    assert "FB002 a.txt: not inflated" in result.stdout


def test_a_huge_declared_entry_count_is_judged_by_the_records_parsed(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 60000, 60000, 0, 0, 0)
    locator = struct.pack("<IIQI", 0x07064B50, 0, 0, 1)
    end64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, 10**7, 10**7, 0, 0)
    path.write_bytes(end64 + locator + end.replace(struct.pack("<H", 60000),
                                                   struct.pack("<H", 0xFFFF)))
    result = run(str(path))
    assert result.exit_code == 1
    assert "FB010" in result.stdout
    assert "declares 10000000 entries, the central directory holds 0" in result.stdout


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_zips_exit_one_or_two_never_a_traceback(tmp_path: Path,
                                                        data: st.DataObject) -> None:
    base = tmp_path / "base.zip"
    if not base.exists():
        # No requirements.txt: the intact bundle already has an error finding (FB104).
        write(base, {"main.py": b"print('hi')\n" * 50, "packages/lib.so": elf(),
                     "packages/x/mod.py": b"VALUE = 1\n" * 100})
    raw = bytearray(base.read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.just(len(raw)), st.integers(0, len(raw))))
    mutated = tmp_path / "mutated.zip"
    mutated.write_bytes(bytes(raw[:cut]))
    result = run(str(mutated), "--runtime", "python_3_13")
    assert result.exit_code in (1, 2), result.output
    assert result.output.strip()
    if result.exit_code == 2:
        assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("stored", [False, True])
def test_member_holding_more_than_it_declares_is_a_finding(tmp_path: Path, stored: bool) -> None:
    data = os.urandom(3000) if stored else b"hello world" * 300  # random bytes are stored
    path = write(tmp_path / "short.zip", {**MAIN, "data.bin": data})
    raw = bytearray(path.read_bytes())
    local = raw.index(b"data.bin")  # the first copy of the name is in the local header
    central = raw.index(b"data.bin", raw.index(b"PK\x01\x02"))
    struct.pack_into("<I", raw, local - 30 + 22, 1000)  # declare 1000 uncompressed bytes
    struct.pack_into("<I", raw, central - 46 + 24, 1000)
    path.write_bytes(bytes(raw))
    result = run(str(path), "--mode", "remote_build")
    assert result.exit_code == 1
    assert "data.bin" in result.stdout
    assert "FB001" in result.stdout or "FB002" in result.stdout
