"""The deterministic zip writer, parsed back with zipfile and by the bytes."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundler.model import BytesData, Entry, FileData, ZipMemberData, content_digest
from bundler.write import ZipTooLarge, atomic_output, compressor_fingerprint, write_zip


def entry(name: str, data: bytes, mode: int = 0o644) -> Entry:
    return Entry(name, len(data), BytesData(data), mode)


def test_output_parses_back_with_every_fact_fixed(tmp_path: Path) -> None:
    entries = [entry("b.txt", b"b" * 1000), entry("a/é.py", b"print(1)\n", 0o700),
               entry("empty", b""), entry("random.bin", os.urandom(4096))]
    result = write_zip(entries, tmp_path / "out.zip")
    with zipfile.ZipFile(result.path) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["a/é.py", "b.txt", "empty", "random.bin"]
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.extra == b""
            assert info.flag_bits & 0x8 == 0  # no data descriptor
            assert info.create_system == 3
            assert info.comment == b""
        modes = {i.filename: i.external_attr >> 16 for i in infos}
        assert modes == {"a/é.py": 0o100755, "b.txt": 0o100644, "empty": 0o100644,
                         "random.bin": 0o100644}
        by_name = {i.filename: i for i in infos}
        assert by_name["b.txt"].compress_type == zipfile.ZIP_DEFLATED
        assert by_name["random.bin"].compress_type == zipfile.ZIP_STORED  # deflate won't shrink it
        assert by_name["a/é.py"].flag_bits & 0x800  # UTF-8 name flag
        assert archive.read("b.txt") == b"b" * 1000
        assert archive.comment == b""
    assert result.sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.dictionaries(
        st.text(st.characters(categories=("L", "N"), include_characters="_-./"), min_size=1,
                max_size=12).filter(lambda n: not n.startswith("/") and "//" not in n
                                    and not n.endswith("/") and ".." not in n),
        st.binary(max_size=300), min_size=1, max_size=12),
    seed=st.randoms(use_true_random=False),
)
def test_entry_order_never_changes_the_bytes(tmp_path: Path, files: dict[str, bytes],
                                             seed: object) -> None:
    entries = [entry(name, data) for name, data in files.items()]
    shuffled = list(entries)
    seed.shuffle(shuffled)  # type: ignore[attr-defined]
    one = write_zip(entries, tmp_path / "one.zip")
    two = write_zip(shuffled, tmp_path / "two.zip")
    assert one.path.read_bytes() == two.path.read_bytes()
    with zipfile.ZipFile(one.path) as archive:
        assert {i.filename: archive.read(i) for i in archive.infolist()} == files


def test_wheel_members_are_copied_without_recompressing(tmp_path: Path) -> None:
    source = tmp_path / "source.zip"
    payload = b"x = 1\n" * 5000
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("pkg/mod.py", payload)
    with zipfile.ZipFile(source) as archive:
        info = archive.getinfo("pkg/mod.py")
    raw = source.read_bytes()
    member = Entry("packages/pkg/mod.py", len(payload), ZipMemberData(source, info))
    result = write_zip([member], tmp_path / "out.zip")
    start = info.header_offset + 30 + len(info.filename)
    level1_stream = raw[start:start + info.compress_size]
    assert level1_stream in result.path.read_bytes()  # level 1 bytes kept, not re-deflated at 6
    with zipfile.ZipFile(result.path) as archive:
        assert archive.read("packages/pkg/mod.py") == payload


def test_over_the_limit_leaves_the_old_zip_in_place(tmp_path: Path) -> None:
    target = tmp_path / "agent.zip"
    target.write_bytes(b"old zip")
    with pytest.raises(ZipTooLarge) as raised:
        write_zip([entry("big.bin", os.urandom(5000))], target, limit=1000)
    assert "at most" in str(raised.value)
    assert target.read_bytes() == b"old zip"
    assert [p.name for p in tmp_path.iterdir()] == ["agent.zip"]  # no temp file left behind


def test_interrupted_write_leaves_the_old_file_or_the_new_one(tmp_path: Path) -> None:
    target = tmp_path / "agent.zip"
    target.write_bytes(b"old")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), atomic_output(target) as stream:
        stream.write(b"half of a new fi")
        raise Boom
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_a_killed_build_process_leaves_the_old_zip(tmp_path: Path) -> None:
    """SIGKILL in the middle of writing: the rename never happened, the old bytes stay."""
    target = tmp_path / "agent.zip"
    target.write_bytes(b"old")
    script = (
        "import os, signal\n"
        "from pathlib import Path\n"
        "from bundler.write import atomic_output\n"
        f"with atomic_output(Path({str(target)!r})) as s:\n"
        "    s.write(b'partial')\n"
        "    s.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=False)
    assert target.read_bytes() == b"old"


def test_more_than_65535_entries_use_a_zip64_end_record(tmp_path: Path) -> None:
    entries = [entry(f"f/{i:05d}", b"") for i in range(70_000)]
    result = write_zip(entries, tmp_path / "many.zip")
    data = result.path.read_bytes()
    assert struct.pack("<I", 0x06064B50) in data
    with zipfile.ZipFile(result.path) as archive:
        assert len(archive.infolist()) == 70_000


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="two files would be stored as a.py"):
        write_zip([entry("a.py", b"1"), entry("a.py", b"2")], tmp_path / "x.zip")


def test_source_date_epoch_before_1980_is_clamped(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    result = write_zip([entry("a", b"a")], tmp_path / "x.zip")
    with zipfile.ZipFile(result.path) as archive:
        assert archive.infolist()[0].date_time == (1980, 1, 1, 0, 0, 0)


def test_content_digest_ignores_the_compressor(tmp_path: Path) -> None:
    files = {"a.py": b"a" * 500, "b/c.txt": b"hello"}
    ours = write_zip([entry(n, d) for n, d in files.items()], tmp_path / "ours.zip")
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    from bundler.model import Bundle

    assert content_digest(Bundle.from_zip(ours.path).entries) == \
        content_digest(Bundle.from_zip(other).entries)
    assert ours.path.read_bytes() != other.read_bytes()


def test_compressor_fingerprint_names_zlib_and_level() -> None:
    assert compressor_fingerprint() == f"zlib-{zlib.ZLIB_RUNTIME_VERSION}-level6"


def test_source_files_are_read_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "src.py"
    path.write_bytes(b"print('x')\n" * 1000)
    result = write_zip([Entry("src.py", path.stat().st_size, FileData(path))],
                       tmp_path / "out.zip")
    with zipfile.ZipFile(result.path) as archive:
        assert archive.read("src.py") == path.read_bytes()


def test_large_files_stream_through_a_spool_with_the_same_bytes(tmp_path: Path) -> None:
    import tracemalloc

    from bundler.write import SPOOL_OVER

    text = (b"def handler(event):\n    return {'ok': True}\n" * 400_000)[: SPOOL_OVER * 3]
    noise = os.urandom(SPOOL_OVER + 1)  # incompressible: stored, re-read from the source
    (tmp_path / "model.txt").write_bytes(text)
    (tmp_path / "weights.bin").write_bytes(noise)
    entries = [Entry(n, (tmp_path / n).stat().st_size, FileData(tmp_path / n))
               for n in ("model.txt", "weights.bin")]
    tracemalloc.start()
    result = write_zip(entries, tmp_path / "out.zip", threads=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < SPOOL_OVER  # never the 24 MiB file, nor the 8 MiB one, in memory
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    expected = packer.compress(text) + packer.flush()  # what the in-memory path would write
    data = result.path.read_bytes()
    assert expected in data
    with zipfile.ZipFile(result.path) as archive:
        assert archive.getinfo("weights.bin").compress_type == zipfile.ZIP_STORED
        assert archive.read("model.txt") == text and archive.read("weights.bin") == noise


def test_members_read_back_from_a_zip_are_checked_like_zipfile_checks_them(
    tmp_path: Path,
) -> None:
    from bundler.model import Bundle

    path = tmp_path / "mixed.zip"
    files = {"deflated.txt": b"hello " * 5000, "stored.bin": os.urandom(3000),
             "bzip2.txt": b"bz " * 1000}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("deflated.txt", files["deflated.txt"], zipfile.ZIP_DEFLATED)
        archive.writestr("stored.bin", files["stored.bin"], zipfile.ZIP_STORED)
        archive.writestr("bzip2.txt", files["bzip2.txt"], zipfile.ZIP_BZIP2)  # via zipfile
    entries = Bundle.from_zip(path).by_name()
    assert {name: entries[name].read() for name in files} == files
    raw = bytearray(path.read_bytes())
    at = raw.index(b"stored.bin") + len(b"stored.bin") + 100  # inside the stored bytes
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(zipfile.BadZipFile, match="Bad CRC-32"):
        Bundle.from_zip(path).by_name()["stored.bin"].read()


def test_a_full_disk_under_the_output_keeps_the_old_zip_and_leaves_no_temp(
    tmp_path: Path,
) -> None:
    """A real ENOSPC: the output folder is a 64 KiB tmpfs in a private mount namespace, the
    new zip (incompressible sources, ~200 KB) does not fit, the old one must survive whole."""
    import shutil

    from tests.support.projects import make_project

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a tiny tmpfs needs a mount namespace (root here)")
    blob = b"".join(hashlib.sha256(i.to_bytes(2, "big")).digest() for i in range(6400))
    project = make_project(tmp_path / "agent", "", mode="remote_build",
                           files={"data/blob.bin": blob})
    old = b"the zip of the last good build\n"
    (tmp_path / "old.zip").write_bytes(old)
    out = tmp_path / "out"
    out.mkdir()
    script = ('mount -t tmpfs -o size=64k tmpfs "$1" && cp "$2" "$1/agent.zip" || exit 9\n'
              'shift 2; "$@"; code=$?\n'
              'sha256sum "$0/agent.zip"; ls -A "$0"; exit $code')
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, str(out), str(out), str(tmp_path / "old.zip"),
         sys.executable, "-m", "bundler", "build", str(project),
         "--output", str(out / "agent.zip")], capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line == (f"error: cannot write {out / 'agent.zip'}: the disk is full — free some "
                    "space there, or write somewhere else"), done.stderr
    assert "Traceback" not in done.stderr and "Errno" not in done.stderr
    digest, _ = done.stdout.split("\n", 1)[0].split(maxsplit=1)
    assert digest == hashlib.sha256(old).hexdigest()  # the old zip, whole
    assert done.stdout.split("\n", 1)[1].split() == ["agent.zip"]  # no temp, no sidecar
