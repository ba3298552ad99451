"""Zips that unpack to something else than what their central directory says (issue 14, part 3).

Each zip is written byte by byte (tests/support/zipbytes.py), cross-checked against what
CPython's ``zipfile`` extracts from it, then judged by ``fbundle validate`` (a finding with its
code and path, exit 1) and by ``inspect`` / ``diff`` (one line, exit 2: a zip that unpacks to
something else cannot be listed or compared).
"""

from __future__ import annotations

import errno
import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.support import RunCli
from tests.support.zipbytes import (
    CENTRAL,
    DEFLATED,
    END,
    LZMA,
    Layout,
    Member,
    build_zip,
    deflate,
    local_header,
    lzma_member,
)

MAIN = b"print('hi')\n"


def base() -> list[Member]:
    return [Member(b"main.py", MAIN), Member(b"requirements.txt", b"")]


def write(tmp_path: Path, data: bytes, name: str = "hostile.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def judged(run_cli: RunCli, path: Path, code: str, shown: str) -> str:
    """validate finds ``code`` at ``shown`` (exit 1); inspect and diff refuse in one line."""
    result = run_cli("validate", path, "--mode", "remote_build")
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith(f"{code} ")]
    assert any(line.startswith(f"{code} {shown}: ") for line in lines), result.stdout
    for args in (("inspect", path), ("diff", path, path)):
        refused = run_cli(*args)
        assert refused.exit_code == 2, refused.output
        assert len(refused.output.strip().splitlines()) == 1
        assert "error: " in refused.stderr and "Traceback" not in refused.output
    return lines[0]


def test_a_nul_in_a_name_is_found_though_zipfile_extracts_it_over_the_real_file(
        tmp_path: Path, run_cli: RunCli) -> None:
    path = write(tmp_path, build_zip([*base(), Member(b"main.py\0x", b"print('pwned')\n")]))
    with zipfile.ZipFile(path) as archive:
        assert [i.filename for i in archive.infolist()].count("main.py") == 2
        assert archive.read("main.py") == b"print('pwned')\n"  # the hidden one wins
    judged(run_cli, path, "FB004", "main.py\\x00x")


def test_a_local_header_naming_another_file_is_found(tmp_path: Path, run_cli: RunCli) -> None:
    path = write(tmp_path, build_zip([*base()[1:], Member(b"main.py", MAIN,
                                                          local_name=b"../../../../tmp/pwn.py")]))
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["requirements.txt", "main.py"]
        with pytest.raises(zipfile.BadZipFile, match="differ"):
            archive.read("main.py")
    line = judged(run_cli, path, "FB005", "main.py")
    assert "'../../../../tmp/pwn.py'" in line


def test_central_stored_but_local_deflated_is_found(tmp_path: Path, run_cli: RunCli) -> None:
    program = b"print('what unzip runs')\n" * 20
    packed = deflate(program)
    path = write(tmp_path, build_zip([base()[1], Member(b"main.py", packed,
                                                        local_method=DEFLATED)]))
    with zipfile.ZipFile(path) as archive:
        assert archive.read("main.py") == packed  # zipfile hands out the deflate stream
    assert zlib.decompress(packed, -15) == program  # what the local header says it holds
    line = judged(run_cli, path, "FB006", "main.py")
    assert "method stored in the central directory, deflated in the local header" in line


def test_flag_bit_3_without_its_data_descriptor_is_found(tmp_path: Path,
                                                         run_cli: RunCli) -> None:
    data = b"x = 1\n" * 50
    honest = struct.pack("<4sIII", b"PK\x07\x08", zlib.crc32(data), len(data), len(data))
    good = write(tmp_path, build_zip([*base(), Member(b"data.py", data, flags=0x8,
                                                      descriptor=honest)]), "good.zip")
    bad = write(tmp_path, build_zip([*base(), Member(b"data.py", data, flags=0x8)]))
    for path in (good, bad):
        with zipfile.ZipFile(path) as archive:
            assert archive.read("data.py") == data  # zipfile never looks for the descriptor
    clean = run_cli("validate", good, "--mode", "remote_build")
    assert clean.exit_code == 0, clean.output
    judged(run_cli, bad, "FB007", "data.py")


def test_two_names_for_one_local_header_overlap(tmp_path: Path, run_cli: RunCli) -> None:
    path = write(tmp_path, build_zip([*base(), Member(b"a.py", b"A = 1\n"),
                                      Member(b"b.py", b"A = 1\n", share=2)]))
    with zipfile.ZipFile(path) as archive:
        assert archive.read("a.py") == b"A = 1\n"
        with pytest.raises(zipfile.BadZipFile):
            archive.read("b.py")
    judged(run_cli, path, "FB008", "b.py")


def test_a_member_hidden_inside_another_is_a_quoted_overlap(tmp_path: Path,
                                                            run_cli: RunCli) -> None:
    hidden = local_header(b"b.py", b"B = 2\n")
    layout = Layout()
    members = [*base(), Member(b"a.bin", b"head" + hidden)]
    build_zip(members, layout=layout)
    inside = layout.offsets[2] + 30 + len(b"a.bin") + len(b"head")
    path = write(tmp_path, build_zip([*members, Member(b"b.py", b"B = 2\n",
                                                       header_offset=inside)]))
    with zipfile.ZipFile(path) as archive:
        assert archive.read("b.py") == b"B = 2\n"
        try:
            outer = archive.read("a.bin")
        except zipfile.BadZipFile as error:  # CPython 3.12+ refuses overlapped entries
            assert "Overlapped" in str(error)
        else:
            assert hidden in outer  # older zipfile extracts b.py's bytes twice
    judged(run_cli, path, "FB008", "b.py")


def test_many_names_sharing_one_member_are_not_inflated(tmp_path: Path,
                                                        run_cli: RunCli) -> None:
    bomb = bytes(240_000)
    members = [*base(), Member(b"w0.bin", bomb, method=DEFLATED)]
    members += [Member(f"w{i}.bin".encode(), bomb, method=DEFLATED, share=2)
                for i in range(1, 50)]
    path = write(tmp_path, build_zip(members))
    with zipfile.ZipFile(path) as archive:
        assert len(archive.infolist()) == 52
        assert sum(i.file_size for i in archive.infolist()) >= 50 * 240_000
    result = run_cli("validate", path, "--mode", "remote_build")
    assert result.exit_code == 1
    assert sum(line.startswith("FB008 w") for line in result.stdout.splitlines()) == 50
    judged(run_cli, path, "FB008", "w1.bin")


def test_a_file_and_a_folder_with_one_name_are_found(tmp_path: Path, run_cli: RunCli) -> None:
    path = write(tmp_path, build_zip([*base(), Member(b"lib", b"not a folder"),
                                      Member(b"lib/x.py", b"X = 1\n")]))
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist()[-2:] == ["lib", "lib/x.py"]
        with pytest.raises(OSError):
            archive.extractall(tmp_path / "out")
    result = run_cli("validate", path, "--mode", "remote_build")
    assert result.exit_code == 1
    assert "FB009 lib: is a file, and other entries sit in a folder lib/" in result.stdout


def test_a_patched_entry_count_is_found(tmp_path: Path, run_cli: RunCli) -> None:
    path = write(tmp_path, build_zip([*base(), Member(b"extra.py", b"E = 1\n")], entries=2))
    with zipfile.ZipFile(path) as archive:
        assert len(archive.infolist()) == 3  # zipfile ignores the count
    line = judged(run_cli, path, "FB010", str(path))
    assert "declares 2 entries, the central directory holds 3" in line


def test_the_entry_limit_counts_records_parsed_not_the_count_declared(
        tmp_path: Path, run_cli: RunCli) -> None:
    records = b"".join(CENTRAL.pack(0x02014B50, 0x314, 20, 0, 0, 0, 0x21, 0, 0, 0, 7, 0, 0, 0,
                                    0, 0o100644 << 16, 0) + b"%07d" % i for i in range(200_001))
    data = records + END.pack(0x06054B50, 0, 0, 1, 1, len(records), 0, 0)
    path = write(tmp_path, data)
    with zipfile.ZipFile(path) as archive:
        assert len(archive.infolist()) == 200_001  # what a reader that trusts no count sees
    for command in ("validate", "inspect"):
        result = run_cli(command, path)
        assert result.exit_code == 2, result.output
        assert "holds more than 200000 entries" in result.stderr


def test_an_lzma_member_is_found_though_zipfile_reads_it(tmp_path: Path,
                                                        run_cli: RunCli) -> None:
    data = b"lzma text\n" * 100
    path = write(tmp_path, build_zip([*base(), Member(b"data.txt", data, method=LZMA,
                                                      compressed=lzma_member(data))]))
    with zipfile.ZipFile(path) as archive:
        assert archive.read("data.txt") == data
    line = judged(run_cli, path, "FB012", "data.txt")
    assert "LZMA (14)" in line


def test_names_linux_cannot_create_are_found(tmp_path: Path, run_cli: RunCli) -> None:
    long_name = (b"d" * 199 + b"/") * 320 + b"x.py"  # 64 KB: short segments, too long a path
    long_segment = b"pkg/" + b"s" * 300 + b".py"
    path = write(tmp_path, build_zip([*base(), Member(long_name, b"1"),
                                      Member(long_segment, b"2")]))
    with zipfile.ZipFile(path) as archive:
        assert long_name.decode() in archive.namelist()
        for name in (long_name, long_segment):
            with pytest.raises(OSError) as raised:
                archive.extract(name.decode(), tmp_path / "out")
            assert raised.value.errno == errno.ENAMETOOLONG
    result = run_cli("validate", path, "--mode", "remote_build")
    assert result.exit_code == 1
    assert f"FB013 {long_name.decode()}: the name is 64004 bytes" in result.stdout
    assert f"FB014 {long_segment.decode()}: a path segment is 303 bytes" in result.stdout
    assert "FB014 ddd" not in result.stdout


def test_an_end_record_on_disk_1_is_found(tmp_path: Path, run_cli: RunCli) -> None:
    path = write(tmp_path, build_zip(base(), disk=1))
    with zipfile.ZipFile(path) as archive:
        assert archive.read("main.py") == MAIN  # zipfile ignores the disk fields
    judged(run_cli, path, "FB015", str(path))


def test_flag_bit_6_strong_encryption_is_found(tmp_path: Path, run_cli: RunCli) -> None:
    path = write(tmp_path, build_zip([*base(), Member(b"data.txt", b"secret", flags=0x40)]))
    with zipfile.ZipFile(path) as archive, pytest.raises(NotImplementedError, match="bit 6"):
        archive.read("data.txt")
    judged(run_cli, path, "FB016", "data.txt")


def test_an_empty_name_is_found(tmp_path: Path, run_cli: RunCli) -> None:
    path = write(tmp_path, build_zip([*base(), Member(b"", b"x")]))
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist()[-1] == ""  # a member zipfile lists but cannot place
    result = run_cli("validate", path, "--mode", "remote_build")
    assert result.exit_code == 1
    assert "FB017: an entry has an empty name" in result.stdout
    assert run_cli("inspect", path).exit_code == 2


@pytest.mark.parametrize("damage", ["encrypted", "corrupt-deflate", "short"])
def test_unreadable_members_end_inspect_diff_and_audit_in_one_line(
        tmp_path: Path, run_cli: RunCli, damage: str) -> None:
    data = b"hello world\n" * 200
    member = {"encrypted": Member(b"data.txt", data, flags=0x1),
              "corrupt-deflate": Member(b"data.txt", data, method=DEFLATED,
                                        compressed=b"\xff" * 40),
              "short": Member(b"data.txt", data[:100], size=len(data))}[damage]
    path = write(tmp_path, build_zip([*base(), member]))
    with zipfile.ZipFile(path) as archive:
        if damage == "short":  # zipfile hands out fewer bytes than declared, silently
            assert len(archive.read("data.txt")) == 100 < archive.getinfo("data.txt").file_size
        else:
            with pytest.raises((RuntimeError, zipfile.BadZipFile, zlib.error)):
                archive.read("data.txt")
    result = run_cli("validate", path, "--mode", "remote_build")
    assert result.exit_code == 1 and "data.txt" in result.stdout
    (tmp_path / "project").mkdir()
    for args in (("inspect", path), ("inspect", path, "--provenance"), ("diff", path, path),
                 ("audit", path, tmp_path / "project")):
        refused = run_cli(*args)
        assert refused.exit_code == 2, (args, refused.output)
        assert len(refused.output.strip().splitlines()) == 1
        assert "data.txt" in refused.stderr and "internal error" not in refused.output


def test_an_honest_zip_of_every_kind_reads_clean(tmp_path: Path, run_cli: RunCli) -> None:
    """The guards have no false alarms: zipfile's own zips (deflated, stored, a data descriptor
    from streaming, zip64 extra fields, a comment, bytes before the zip) validate clean."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("main.py", MAIN)
        archive.writestr("requirements.txt", b"")
        archive.writestr("stored.bin", b"s" * 100, zipfile.ZIP_STORED)
        with archive.open("streamed.txt", "w", force_zip64=True) as stream:
            stream.write(b"streamed\n" * 1000)
        archive.comment = b"a comment"
    for prefix in (b"", b"#!/bin/sh\nexit 0\n"):
        path = write(tmp_path, prefix + buffer.getvalue(), f"honest{len(prefix)}.zip")
        result = run_cli("validate", path, "--mode", "remote_build")
        assert result.exit_code == 0, result.output
        listed = run_cli("inspect", path)
        assert listed.exit_code == 0 and "streamed.txt" in listed.stdout


def test_deploy_refuses_a_hostile_zip_before_any_request(tmp_path: Path,
                                                         run_cli: RunCli) -> None:
    path = write(tmp_path, build_zip([*base()[1:], Member(b"main.py", MAIN,
                                                          local_name=b"../evil.py")]))
    # Port 9 (discard) on loopback: had the guard let the zip through, the request would fail
    # with a connection error (exit 1), not a usage error.
    result = run_cli("deploy", path, "--endpoint", "http://127.0.0.1:9", "--agent", "x",
                     env={"FBUNDLE_TOKEN": "t"})
    assert result.exit_code == 2, result.output
    assert "FB005 main.py" in result.stderr and len(result.stderr.strip().splitlines()) == 1
