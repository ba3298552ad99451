"""bundler/zipformat.py, the one zip reader: it agrees with zipfile on honest zips, inflates in
bounded chunks, and the limits and guards it owns reach every command."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundler import zipformat
from bundler.checks import CheckContext, run_checks
from bundler.model import Bundle, BytesData, Entry, read_zip
from bundler.targets import Target
from bundler.zipformat import CHUNK, MAX_ENTRIES, inflate, read_archive
from tests.support import RunCli, make_wheel, pe_dll
from tests.support.users import as_user
from tests.support.zipbytes import DEFLATED, Member, build_zip

NAMES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FFF,
                              blacklist_characters="/\\\x7f"), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.dictionaries(NAMES, st.binary(max_size=3000), min_size=1, max_size=8),
       method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
       prefix=st.sampled_from([b"", b"stub before the zip\n"]),
       zip64=st.booleans())
def test_honest_zips_read_as_zipfile_reads_them_and_have_no_problems(
        tmp_path: Path, files: dict[str, bytes], method: int, prefix: bytes,
        zip64: bool) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in files.items():
            with archive.open(zipfile.ZipInfo(name), "w", force_zip64=zip64) as member:
                member.write(data)
    path = tmp_path / "honest.zip"
    path.write_bytes(prefix + buffer.getvalue())
    read = read_archive(path)
    assert read.problems == []
    with zipfile.ZipFile(path) as archive:
        theirs = archive.infolist()
        assert [m.filename for m in read.members] == [i.filename for i in theirs]
        assert [(m.file_size, m.compress_size, m.CRC, m.header_offset) for m in read.members] \
            == [(i.file_size, i.compress_size, i.CRC, i.header_offset) for i in theirs]
    entries = read_zip(path).by_name()
    assert {name: entries[name].read() for name in files} == files


def test_inflate_hands_out_at_most_one_chunk_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "zeros.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("zeros.bin", "w") as member:
            for _ in range(40):
                member.write(bytes(1_000_000))
    member_info = read_archive(path).members[0]
    sizes = []
    with open(path, "rb") as stream:
        for chunk in inflate(stream, member_info):
            sizes.append(len(chunk))
    # 40 MB deflate to 40 kB: one compressed read, yet never more than CHUNK bytes at once.
    assert sum(sizes) == 40_000_000 and max(sizes) <= CHUNK


def test_a_member_longer_than_declared_stops_at_the_declared_size(tmp_path: Path) -> None:
    data = b"a" * 100_000
    path = tmp_path / "liar.zip"
    path.write_bytes(build_zip([Member(b"a.txt", data, method=DEFLATED, size=10)]))
    member_info = read_archive(path).members[0]
    produced = 0
    with open(path, "rb") as stream, pytest.raises(zipfile.BadZipFile, match="more than"):
        for chunk in inflate(stream, member_info):
            produced += len(chunk)
    assert produced <= 11


def test_the_entry_limit_is_the_one_build_validate_and_the_readers_share(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: RunCli) -> None:
    assert MAX_ENTRIES == 200_000
    # A plan over the limit is refused by the rules build runs, before a byte is read.
    entries = [Entry(f"d/{i}.txt", 1, BytesData(b"x")) for i in range(MAX_ENTRIES + 1)]
    found = run_checks(Bundle([Entry("main.py", 1, BytesData(b"1")),
                               Entry("requirements.txt", 0, BytesData(b"")), *entries]),
                       CheckContext(Target.for_runtime("python_3_13"), mode="remote_build"))
    assert [f.code for f in found if f.severity == "error"] == ["FB011"]
    # A zip: the reader stops at record limit + 1, whichever command reads it (limit lowered
    # here so the zip stays small; the real one is exercised in test_hostile_zips).
    path = tmp_path / "four.zip"
    path.write_bytes(build_zip([Member(f"{i}.txt".encode(), b"x") for i in range(4)]))
    monkeypatch.setattr(zipformat, "MAX_ENTRIES", 3)
    for args in (("validate", path), ("inspect", path), ("diff", path, path)):
        result = run_cli(*args)
        assert result.exit_code == 2 and "holds more than 3 entries" in result.stderr
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.txt").write_text("x")
    for args in (("inspect", folder), ("diff", folder, path)):
        result = run_cli(*args)
        assert result.exit_code == 2 and "holds more than 3 entries" in result.stderr
    checked = run_cli("validate", folder, "--mode", "remote_build")
    assert "FB011" not in checked.stdout  # the rule reads the real limit; 4 files are fine


def test_inspect_with_provenance_parses_the_zip_once(tmp_path: Path, run_cli: RunCli,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = make_wheel(tmp_path, "alpha", "1.0", files={"alpha/__init__.py": b"A = 1\n"})
    with zipfile.ZipFile(wheel) as source:
        files = {f"packages/{n}": source.read(n) for n in source.namelist()}
    path = tmp_path / "agent.zip"
    path.write_bytes(build_zip([Member(n.encode(), d) for n, d in
                                {"main.py": b"print(1)\n", **files}.items()]))
    calls = []
    real = zipformat.read_archive

    def counting(*args: object, **kwargs: object) -> zipformat.Archive:
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("bundler.model.read_archive", counting)
    result = run_cli("inspect", path, "--provenance")
    assert result.exit_code == 0, result.output
    assert "packages/alpha/__init__.py  alpha 1.0" in result.stdout
    assert len(calls) == 1


def test_the_distribution_named_by_validate_and_by_provenance_is_one(
        tmp_path: Path, run_cli: RunCli) -> None:
    """A dist-info folder whose name says one thing and METADATA another: FB301's "(from X)"
    and inspect --provenance both name METADATA's distribution."""
    record = ("winonly/_n.pyd,,\nWin_Only-1.0.dist-info/METADATA,,\n"
              "Win_Only-1.0.dist-info/RECORD,,\n")
    files = {
        "main.py": b"print(1)\n", "requirements.txt": b"",
        "packages/winonly/_n.pyd": pe_dll(),
        "packages/Win_Only-1.0.dist-info/METADATA":
            b"Metadata-Version: 2.1\nName: Win-Only\nVersion: 1.0\n",
        "packages/Win_Only-1.0.dist-info/RECORD": record.encode(),
    }
    path = tmp_path / "agent.zip"
    path.write_bytes(build_zip([Member(n.encode(), d) for n, d in files.items()]))
    checked = run_cli("validate", path, "--mode", "bundled")
    assert "FB301 packages/winonly/_n.pyd" in checked.stdout
    assert "(from Win-Only 1.0)" in checked.stdout, checked.stdout
    traced = run_cli("inspect", path, "--provenance")
    assert "packages/winonly/_n.pyd  Win-Only 1.0" in traced.stdout, traced.output


@pytest.mark.parametrize("name", ["packages/x/_n.pyd", "packages/x/helper.dll", "lib/_n.so"])
def test_a_library_starting_with_mz_but_no_pe_header_is_fb308(tmp_path: Path, run_cli: RunCli,
                                                              name: str) -> None:
    path = tmp_path / "mz.zip"
    files = {"main.py": b"print(1)\n", "requirements.txt": b"", name: b"MZ" + bytes(200),
             "data/notes.bin": b"MZ" + bytes(200)}  # data that starts with MZ stays data
    path.write_bytes(build_zip([Member(n.encode(), d) for n, d in files.items()]))
    result = run_cli("validate", path, "--mode", "remote_build")
    assert f"FB308 {name}: pe header is malformed: MZ header without a PE signature" \
        in result.stdout
    assert "data/notes.bin" not in result.stdout


@pytest.mark.parametrize("case", ["inspect-file", "diff-file", "inspect-folder"])
def test_a_folder_holding_an_unreadable_file_is_unusable_input(case: str) -> None:
    import subprocess
    import tempfile

    with as_user(65534) as (as_nobody, env), tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)  # pytest's own tmp_path is private to root
        root.chmod(0o755)
        folder = root / "bundle"
        folder.mkdir()
        (folder / "main.py").write_text("print(1)\n")
        (folder / "secret.txt").write_text("no\n")
        (folder / "secret.txt").chmod(0)
        zip_path = root / "other.zip"
        zip_path.write_bytes(build_zip([Member(b"main.py", b"print(1)\n")]))
        zip_path.chmod(0o644)
        if case == "inspect-folder":
            (folder / "secret.txt").unlink()
            (folder / "private").mkdir(mode=0o700)  # a folder inside it cannot be listed
        command = case.split("-")[0]
        args = [str(folder)] if command == "inspect" else [str(folder), str(zip_path)]
        result = subprocess.run([*as_nobody, "-m", "bundler", command, *args],
                                capture_output=True, text=True, cwd=root, env=env)
    assert result.returncode == 2, result.stderr
    # inspect/diff read a folder as build collects it, which words a folder it cannot open so
    assert ("cannot be read" if case != "inspect-folder" else "cannot be listed") \
        in result.stderr and "Traceback" not in result.stderr
    assert ("secret.txt" if case != "inspect-folder" else "private") in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
