"""The shared test kit does what its contracts say: real readers accept what it generates."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from installer.exceptions import InstallerError
from installer.sources import WheelFile
from packaging.utils import parse_wheel_filename

from tests.support import RunCli
from tests.support.binaries import elf, elf_needing_glibc, glibc_symbol, macho, macho_fat, pe_dll
from tests.support.index import JSON_TYPE, SimpleIndex
from tests.support.wheels import (
    CORPUS_DESCRIPTION,
    compile_extension,
    extension_wheel,
    make_wheel,
)

# ------------------------------------------------------------------------------------ wheels


def test_made_wheel_parses_with_installer_and_its_record_validates(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "Demo-Pkg", "1.0", requires=["beta>=1"], requires_python=">=3.11")

    assert path.name == "demo_pkg-1.0-py3-none-any.whl"
    with WheelFile.open(path) as wheel:
        wheel.validate_record()
        assert wheel.dist_info_dir == "demo_pkg-1.0.dist-info"
        metadata = wheel.read_dist_info("METADATA")
        wheel_info = wheel.read_dist_info("WHEEL")
        contents = {element[0][0] for element in wheel.get_contents()}
    assert "Metadata-Version: 2.1\nName: Demo-Pkg\nVersion: 1.0\n" in metadata
    assert "Requires-Python: >=3.11\nRequires-Dist: beta>=1\n" in metadata
    assert "Root-Is-Purelib: true\nTag: py3-none-any\n" in wheel_info
    assert "demo_pkg/__init__.py" in contents


def test_default_package_module_names_the_project_and_version(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo-pkg", "2.0")
    with zipfile.ZipFile(path) as archive:
        assert archive.read("demo_pkg/__init__.py") == b"VALUE = 'demo-pkg 2.0'\n"


def test_bad_record_fails_installer_validation(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", "1.0", bad_record=True)
    with WheelFile.open(path) as wheel, pytest.raises(InstallerError, match="hash"):
        wheel.validate_record()


def test_record_lists_its_own_line_with_empty_hash_and_size(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", "1.0")
    with zipfile.ZipFile(path) as archive:
        record = archive.read("demo-1.0.dist-info/RECORD").decode()
    assert record.endswith("demo-1.0.dist-info/RECORD,,\n")


def test_same_arguments_make_the_same_bytes(tmp_path: Path) -> None:
    first = make_wheel(tmp_path / "a", "demo", "1.0", data={"scripts/tool": b"#!python\n"})
    second = make_wheel(tmp_path / "b", "demo", "1.0", data={"scripts/tool": b"#!python\n"})
    assert first.read_bytes() == second.read_bytes()


def test_members_are_deflated_with_fixed_timestamps_and_chosen_modes(tmp_path: Path) -> None:
    path = make_wheel(
        tmp_path,
        "demo",
        "1.0",
        files={"demo/__init__.py": b"", "demo/run.sh": b"#!/bin/sh\n"},
        data={"scripts/tool": b"#!python\n", "headers/demo.h": b"int x;\n"},
        executable=["demo/run.sh", "scripts/tool"],
    )
    with zipfile.ZipFile(path) as archive:
        infos = {info.filename: info for info in archive.infolist()}
    assert {info.compress_type for info in infos.values()} == {zipfile.ZIP_DEFLATED}
    assert {info.date_time for info in infos.values()} == {(1980, 1, 1, 0, 0, 0)}
    modes = {name: (info.external_attr >> 16) & 0o777 for name, info in infos.items()}
    assert modes["demo/run.sh"] == 0o755
    assert modes["demo-1.0.data/scripts/tool"] == 0o755
    assert modes["demo-1.0.data/headers/demo.h"] == 0o644
    assert modes["demo/__init__.py"] == 0o644


def test_data_and_entry_points_install_through_installer_schemes(tmp_path: Path) -> None:
    path = make_wheel(
        tmp_path,
        "demo",
        "1.0",
        data={"purelib/extra.py": b"X = 1\n", "data/share/demo.txt": b"hi\n"},
        entry_points="[console_scripts]\ndemo = demo:main\n",
    )
    with WheelFile.open(path) as wheel:
        wheel.validate_record()
        schemes = {
            element[0][0]: element[0][0].split("/")[2]
            for element in wheel.get_contents()
            if element[0][0].startswith("demo-1.0.data/")
        }
        entry_points = wheel.read_dist_info("entry_points.txt")
    assert schemes == {
        "demo-1.0.data/purelib/extra.py": "extra.py",
        "demo-1.0.data/data/share/demo.txt": "share",
    }
    assert entry_points == "[console_scripts]\ndemo = demo:main\n"


def test_compressed_tag_sets_expand_to_one_tag_line_each(tmp_path: Path) -> None:
    path = extension_wheel(tmp_path, "native", "1.0")
    assert path.name == "native-1.0-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    with WheelFile.open(path) as wheel:
        wheel.validate_record()
        wheel_info = wheel.read_dist_info("WHEEL")
    assert "Root-Is-Purelib: false\n" in wheel_info
    assert wheel_info.endswith(
        "Tag: cp313-cp313-manylinux_2_17_x86_64\nTag: cp313-cp313-manylinux2014_x86_64\n"
    )


def test_compiled_extension_is_an_x86_64_shared_object_exporting_its_init() -> None:
    data = compile_extension("kit_probe")
    assert data[:4] == b"\x7fELF" and struct.unpack_from("<H", data, 18)[0] == 62
    assert b"PyInit_kit_probe" in data
    assert compile_extension("kit_probe") is data  # cached for the session


def _unpack(wheel: Path, into: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(into)
    return into


@pytest.mark.parametrize(
    ("name", "abi3", "suffix"),
    [("native", False, ".cpython-313-x86_64-linux-gnu.so"), ("limited", True, ".abi3.so")],
)
def test_extension_wheel_imports_and_answers_42_under_real_python313(
    tmp_path: Path, python313: Path, name: str, abi3: bool, suffix: str
) -> None:
    python = "3.9" if abi3 else "3.13"
    site = _unpack(extension_wheel(tmp_path, name, "1.0", python=python, abi3=abi3), tmp_path / "s")
    assert (site / name / f"_native{suffix}").is_file()

    result = subprocess.run(
        [str(python313), "-c", f"import {name}; print({name}.answer())"],
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "42\n"


def test_extension_filenames_follow_the_wheel_abi(tmp_path: Path) -> None:
    def modules(path: Path) -> list[str]:
        with zipfile.ZipFile(path) as archive:
            return [n for n in archive.namelist() if "/_native" in n]

    linux = "manylinux_2_17_x86_64"
    assert modules(extension_wheel(tmp_path, "a", "1", tag=f"cp313-cp313t-{linux}")) == [
        "a/_native.cpython-313t-x86_64-linux-gnu.so"
    ]
    assert modules(extension_wheel(tmp_path, "b", "1", python="3.11")) == [
        "b/_native.cpython-311-x86_64-linux-gnu.so"
    ]
    assert modules(extension_wheel(tmp_path, "c", "1", tag="cp313-cp313-win_amd64")) == [
        "c/_native.cp313-win_amd64.pyd"
    ]
    assert modules(extension_wheel(tmp_path, "d", "1", tag="cp313-cp313-macosx_11_0_arm64")) == [
        "d/_native.cpython-313-darwin.so"
    ]


def test_standard_corpus_holds_every_described_wheel(wheelhouse: Path) -> None:
    found = {
        (str(n), str(v), str(t))
        for n, v, _, tags in (parse_wheel_filename(p.name) for p in wheelhouse.glob("*.whl"))
        for t in tags
    }
    names = {name for name, _, _ in found}
    assert len(list(wheelhouse.glob("*.whl"))) == len(CORPUS_DESCRIPTION)
    assert names == {
        "alpha",
        "beta",
        "gamma",
        "delta",
        "native",
        "limited",
        "oldabi",
        "modern",
        "winonly",
        "maconly",
        "freethreaded",
        "withdata",
    }
    assert ("limited", "1.0", "cp39-abi3-manylinux2014_x86_64") in found
    assert ("modern", "2.0", "cp313-cp313-manylinux_2_28_x86_64") in found
    assert ("freethreaded", "1.0", "cp313-cp313t-manylinux2014_x86_64") in found
    for path in wheelhouse.glob("*.whl"):
        with WheelFile.open(path) as wheel:
            wheel.validate_record()


# ------------------------------------------------------------------------------------- index


def test_pip_downloads_the_native_wheel_for_a_313_manylinux_target(
    tmp_path: Path, simple_index: SimpleIndex
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--index-url",
            simple_index.url,
            "--platform",
            "manylinux2014_x86_64",
            "--python-version",
            "3.13",
            "--dest",
            str(tmp_path),
            "native",
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == [
        "native-1.0-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    ]
    assert simple_index.hits["/simple/native/"] >= 1


def test_pip_reads_the_html_form_of_the_index(tmp_path: Path, wheelhouse: Path) -> None:
    with SimpleIndex(wheelhouse, json=False) as index:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--index-url",
                index.url,
                "--dest",
                str(tmp_path),
                "beta==1.0",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["beta-1.0-py3-none-any.whl"]


def uv_compile(index: SimpleIndex, requirements: str, *extra: str) -> list[str]:
    """The pins ``uv pip compile`` prints for ``requirements`` against the loopback index."""
    result = subprocess.run(
        ["uv", "pip", "compile", "-", "--index-url", index.url, "--python-version", "3.13",
         "--no-header", "--no-annotate", *extra],
        input=requirements, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_uv_compile_applies_markers_for_the_313_target(simple_index: SimpleIndex) -> None:
    pins = uv_compile(simple_index, "alpha\n", "--python-platform", "x86_64-manylinux_2_17")
    assert pins == ["alpha==1.0", "beta==2.0", "delta==1.0"]
    assert simple_index.hits["/simple/gamma/"] == 0


def test_project_page_links_files_with_hash_and_requires_python(
    simple_index: SimpleIndex,
) -> None:
    page = httpx.get(f"{simple_index.url}/alpha/", headers={"Accept": "text/html"}).text
    assert '<a href="../../files/alpha-1.0-py3-none-any.whl#sha256=' in page
    assert 'data-requires-python="&gt;=3.9"' in page


def test_json_form_is_served_when_asked_for(simple_index: SimpleIndex) -> None:
    response = httpx.get(f"{simple_index.url}/beta/", headers={"Accept": JSON_TYPE})
    body = json.loads(response.text)
    assert response.headers["content-type"] == JSON_TYPE
    assert body["meta"] == {"api-version": "1.1"}
    assert body["versions"] == ["1.0", "2.0"]
    assert [f["filename"] for f in body["files"]] == [
        "beta-1.0-py3-none-any.whl",
        "beta-2.0-py3-none-any.whl",
    ]
    metadata = httpx.get(body["files"][0]["url"] + ".metadata").text
    assert "Name: beta\nVersion: 1.0\n" in metadata


def test_yanked_files_are_marked_in_both_forms(simple_index: SimpleIndex) -> None:
    simple_index.yanked["beta-2.0-py3-none-any.whl"] = "broken <build>"
    page = httpx.get(f"{simple_index.url}/beta/", headers={"Accept": "text/html"}).text
    body = httpx.get(f"{simple_index.url}/beta/", headers={"Accept": JSON_TYPE}).json()
    [line] = [line for line in page.splitlines() if ">beta-2.0-py3-none-any.whl<" in line]
    assert 'data-yanked="broken &lt;build&gt;"' in line
    assert "data-yanked" not in page.replace(line, "")
    assert [f.get("yanked") for f in body["files"]] == [None, "broken <build>"]


def test_uv_skips_a_yanked_version(simple_index: SimpleIndex) -> None:
    simple_index.yanked["beta-2.0-py3-none-any.whl"] = ""
    assert uv_compile(simple_index, "beta\n") == ["beta==1.0"]


def test_non_normalized_names_redirect_and_unknown_names_are_404(
    simple_index: SimpleIndex,
) -> None:
    redirect = httpx.get(f"{simple_index.url}/My_Beta/")
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "/simple/my-beta/"
    assert httpx.get(f"{simple_index.url}/nonexistent/").status_code == 404


def test_index_counts_requests_and_fails_on_demand(simple_index: SimpleIndex) -> None:
    simple_index.fail_with = 500
    assert httpx.get(f"{simple_index.url}/beta/").status_code == 500
    simple_index.fail_with = None
    assert httpx.get(f"{simple_index.url}/beta/").status_code == 200
    assert simple_index.hits["/simple/beta/"] == 2
    assert simple_index.total == 2


def test_closed_index_refuses_connections(wheelhouse: Path) -> None:
    index = SimpleIndex(wheelhouse)
    url = index.url
    assert httpx.get(f"{url}/").status_code == 200
    index.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/")


# ---------------------------------------------------------------------------------- binaries


def _clr_directory(data: bytes) -> tuple[int, int]:
    """A tiny PE reader: (rva, size) of data directory 14, the CLR runtime header."""
    assert data[:2] == b"MZ"
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    assert data[pe : pe + 4] == b"PE\0\0"
    optional = pe + 24
    magic = struct.unpack_from("<H", data, optional)[0]
    directories = optional + {0x10B: 96, 0x20B: 112}[magic]
    count = struct.unpack_from("<I", data, directories - 4)[0]
    assert count == 16
    rva, size = struct.unpack_from("<II", data, directories + 8 * 14)
    return rva, size


def _rva_to_offset(data: bytes, rva: int) -> int:
    pe: int = struct.unpack_from("<I", data, 0x3C)[0]
    sections: int = struct.unpack_from("<H", data, pe + 6)[0]
    optional_size: int = struct.unpack_from("<H", data, pe + 20)[0]
    table = pe + 24 + optional_size
    for index in range(sections):
        fields: tuple[bytes, int, int, int, int] = struct.unpack_from(
            "<8sIIII", data, table + 40 * index
        )
        _, _, virtual_address, raw_size, raw_pointer = fields
        if virtual_address <= rva < virtual_address + raw_size:
            return rva - virtual_address + raw_pointer
    raise AssertionError(f"rva {rva:#x} is in no section")


@pytest.mark.parametrize("machine", [0x8664, 0x14C, 0xAA64])
def test_managed_pe_has_a_clr_header_a_reader_can_follow(machine: int) -> None:
    data = pe_dll(managed=True, machine=machine)
    rva, size = _clr_directory(data)
    header = _rva_to_offset(data, rva)
    cb, _major, _minor, metadata_rva = struct.unpack_from("<IHHI", data, header)
    assert size == cb == 72
    assert data[_rva_to_offset(data, metadata_rva) :][:4] == b"BSJB"
    assert struct.unpack_from("<H", data, struct.unpack_from("<I", data, 0x3C)[0] + 4)[0] == machine


def test_native_pe_has_no_clr_header() -> None:
    assert _clr_directory(pe_dll()) == (0, 0)


def test_objdump_reads_the_pe_as_a_dll() -> None:
    data = pe_dll(managed=True)
    path = Path(os.environ["XDG_CACHE_HOME"]) / "managed.dll"
    path.write_bytes(data)
    out = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True, check=True)
    assert "pei-x86-64" in out.stdout and "DLL" in out.stdout


@pytest.mark.parametrize(
    ("kind", "prefix"),
    [
        ("x86_64", bytes.fromhex("cffaedfe07000001")),
        ("arm64", bytes.fromhex("cffaedfe0c000001")),
        ("i386", bytes.fromhex("cefaedfe07000000")),
        ("ppc", bytes.fromhex("feedface00000012")),
        ("ppc64", bytes.fromhex("feedfacf01000012")),
    ],
)
def test_macho_headers_carry_magic_and_cpu_in_their_byte_order(kind: str, prefix: bytes) -> None:
    data = macho(kind)
    assert data.startswith(prefix)
    assert len(data) == (32 if kind in ("x86_64", "arm64", "ppc64") else 28)


def test_fat_macho_points_at_two_thin_images() -> None:
    data = macho_fat()
    magic, count = struct.unpack_from(">II", data, 0)
    assert (magic, count) == (0xCAFEBABE, 2)
    for index in range(2):
        _, _, offset, size, _ = struct.unpack_from(">iiIII", data, 8 + 20 * index)
        assert data[offset : offset + 4] == bytes.fromhex("cffaedfe") and size == 32


@pytest.mark.parametrize(
    ("machine", "bits", "little", "expected"),
    [
        (62, 64, True, "X86-64"),
        (183, 64, True, "AArch64"),
        (3, 32, True, "80386"),
        (20, 32, False, "PowerPC"),
    ],
)
def test_readelf_reads_the_elf_header(
    tmp_path: Path, machine: int, bits: int, little: bool, expected: str
) -> None:
    path = tmp_path / "lib.so"
    path.write_bytes(elf(machine, bits, little))
    out = subprocess.run(["readelf", "-h", str(path)], capture_output=True, text=True, check=True)
    assert expected in out.stdout
    assert f"ELF{bits}" in out.stdout
    assert "DYN (Shared object file)" in out.stdout


@pytest.mark.parametrize("version", ["2.17", "2.34"])
def test_readelf_shows_the_glibc_version_the_object_needs(tmp_path: Path, version: str) -> None:
    path = tmp_path / "needs.so"
    path.write_bytes(elf_needing_glibc(version))
    out = subprocess.run(["readelf", "-V", str(path)], capture_output=True, text=True, check=True)
    needs = out.stdout.split(".gnu.version_r")[1]
    assert f"Name: GLIBC_{version}" in needs
    dynamic = subprocess.run(
        ["objdump", "-T", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert f"GLIBC_{version}" in dynamic and glibc_symbol(version) in dynamic


def test_glibc_versions_outside_the_table_are_found_in_libc() -> None:
    assert glibc_symbol("2.33")
    with pytest.raises(ValueError, match="GLIBC_9.99"):
        glibc_symbol("9.99")


# ---------------------------------------------------------------------------------- fixtures


def test_environment_has_fresh_caches_and_no_index_configuration(isolated_env: Path) -> None:
    assert os.environ["PIP_CONFIG_FILE"] == os.devnull
    assert os.environ["UV_NO_CONFIG"] == "1"
    assert "PIP_FIND_LINKS" not in os.environ and "PIP_INDEX_URL" not in os.environ
    for variable in ("UV_CACHE_DIR", "PIP_CACHE_DIR", "FBUNDLE_CACHE_DIR", "XDG_CACHE_HOME"):
        folder = Path(os.environ[variable])
        assert folder.is_dir() and folder.is_relative_to(isolated_env)
        assert list(folder.iterdir()) == [] or variable == "XDG_CACHE_HOME"


def test_pip_reads_no_site_or_user_configuration() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True
    )
    assert "index-url" not in listed.stdout and "find-links" not in listed.stdout


def test_requests_beyond_loopback_fail_fast() -> None:
    # Refused by the blackhole proxy; pypi.org itself would be reachable from this machine.
    with pytest.raises((httpx.ProxyError, httpx.ConnectError)):
        httpx.get("https://pypi.org/simple/", timeout=5)


def test_run_cli_invokes_the_fbundle_command_group(run_cli: RunCli) -> None:
    result = run_cli("--version")
    assert result.exit_code == 0
    assert "fbundle" in result.stdout
