"""Each rule family through ``run_checks``, on bundles written as real zips from real bytes."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bundler.checks import CheckContext, Finding, errors, run_checks, select
from bundler.model import Bundle, BytesData, Entry
from bundler.targets import Target
from bundler.wheels import layout_wheel
from bundler.write import write_zip
from tests.support.binaries import elf, elf_needing_glibc, macho, macho_fat, pe_dll
from tests.support.wheels import compile_extension, extension_wheel, make_wheel

MAIN = {"main.py": b"print('hi')\n", "requirements.txt": b""}


def write(tmp_path: Path, files: dict[str, bytes], extra: list[Entry] = ()) -> Path:  # type: ignore[assignment]
    entries = [Entry(n, len(b), BytesData(b)) for n, b in files.items()] + list(extra)
    path = tmp_path / "bundle.zip"
    write_zip(entries, path)
    return path


def wheel_entries(wheel: Path) -> list[Entry]:
    laid = layout_wheel(wheel, hashlib.sha256(wheel.read_bytes()).hexdigest())
    return laid.entries


def check(path: Path, runtime: str = "python_3_13", mode: str = "bundled",
          **kw: object) -> list[Finding]:
    context = CheckContext(Target.for_runtime(runtime, kw.pop("glibc", (2, 17))),  # type: ignore[arg-type]
                           mode, **kw)  # type: ignore[arg-type]
    return run_checks(Bundle.from_zip(path), context)


def codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


@pytest.fixture()
def demo(tmp_path: Path) -> list[Entry]:
    return wheel_entries(make_wheel(tmp_path, "demo", "1.0", requires=["helper>=1"]))


@pytest.fixture()
def helper(tmp_path: Path) -> list[Entry]:
    return wheel_entries(make_wheel(tmp_path, "helper", "1.2"))


def test_a_bundle_laid_out_like_build_validates_clean(tmp_path: Path, demo: list[Entry],
                                                      helper: list[Entry]) -> None:
    path = write(tmp_path, {**MAIN, "requirements.txt": b"demo==1.0\n"}, demo + helper)
    assert check(path) == []


def test_extension_wheel_for_the_target_validates_clean(tmp_path: Path) -> None:
    entries = wheel_entries(extension_wheel(tmp_path, "fast", "1.0", python="3.13"))
    path = write(tmp_path, {**MAIN, "requirements.txt": b"fast\n"}, entries)
    assert check(path) == []


def test_findings_are_sorted_and_deterministic(tmp_path: Path) -> None:
    path = write(tmp_path, {"a.pyd": b"x", "b.dylib": b"y", ".env": b"K=v"})
    first = check(path)
    assert first == sorted(first) == check(path)


# ---- layout ---------------------------------------------------------------------------------

def test_wrapper_folder_is_rejected_with_its_name(tmp_path: Path) -> None:
    path = write(tmp_path, {"my-agent/main.py": b"", "my-agent/requirements.txt": b""})
    (wrapped,) = [f for f in check(path) if f.code == "FB101"]
    assert wrapped.path == "my-agent/" and "zip the contents of my-agent/" in wrapped.hint


def test_missing_entry_point_names_the_script(tmp_path: Path) -> None:
    path = write(tmp_path, {"requirements.txt": b"", "app.py": b""})
    found = check(path, mode="remote_build", entry_point=["python", "main.py"])
    assert [(f.code, f.path) for f in found] == [("FB102", "main.py")]


def test_module_entry_point_may_live_in_packages(tmp_path: Path, demo: list[Entry],
                                                  helper: list[Entry]) -> None:
    path = write(tmp_path, {"requirements.txt": b"demo\n"}, demo + helper)
    assert check(path, entry_point=["python", "-m", "demo"]) == []


def test_raw_wheels_and_sdists_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, {**MAIN, "packages/x-1.0-py3-none-any.whl": b"PK",
                            "vendor/y-1.0.tar.gz": b"gz"})
    found = [f.path for f in check(path, mode="remote_build") if f.code == "FB103"]
    assert found == ["packages/x-1.0-py3-none-any.whl", "vendor/y-1.0.tar.gz"]


def test_an_archive_a_record_lists_is_package_data(tmp_path: Path) -> None:
    """python-dateutil ships dateutil/zoneinfo/dateutil-zoneinfo.tar.gz in its RECORD: pip
    installs it as data; only an archive no distribution owns is a raw package (FB103)."""
    wheel = make_wheel(tmp_path, "python-dateutil", "2.9.0", files={
        "dateutil/__init__.py": b"", "dateutil/zoneinfo/__init__.py": b"",
        "dateutil/zoneinfo/dateutil-zoneinfo.tar.gz": b"\x1f\x8b data"})
    entries = layout_wheel(wheel, hashlib.sha256(wheel.read_bytes()).hexdigest()).entries
    path = write(tmp_path, {**MAIN, "requirements.txt": b"python-dateutil\n",
                            "packages/stray-1.0.tar.gz": b"gz"}, entries)
    found = [f.path for f in check(path) if f.code == "FB103"]
    assert found == ["packages/stray-1.0.tar.gz"]


def test_requirements_and_packages_follow_the_mode(tmp_path: Path) -> None:
    path = write(tmp_path, {"main.py": b""})
    assert codes(check(path, mode="bundled")) == {"FB104", "FB105"}
    path = write(tmp_path, {**MAIN, "packages/x.py": b""})
    assert codes(check(path, mode="remote_build")) == {"FB106"}


def test_shipped_clutter_is_a_warning_only(tmp_path: Path) -> None:
    path = write(tmp_path, {**MAIN, "__pycache__/main.cpython-313.pyc": b"",
                            ".venv/pyvenv.cfg": b"", ".git/HEAD": b"", ".env": b"TOKEN=x"})
    found = check(path, mode="remote_build")
    assert codes(found) == {"FB107", "FB108", "FB109", "FB110"}
    assert errors(found) == []


# ---- paths ----------------------------------------------------------------------------------

def test_unsafe_names_are_each_reported(tmp_path: Path) -> None:
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in MAIN.items():
            archive.writestr(name, data)
        archive.writestr("/etc/passwd", b"")
        archive.writestr("../escape.py", b"")
        archive.writestr("C:\\win.py", b"")
        archive.writestr("README.md", b"")
        archive.writestr("readme.md", b"")
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        archive.writestr(info, "main.py")
    found = {(f.code, f.path) for f in check(path, mode="remote_build")}
    assert {("FB201", "/etc/passwd"), ("FB202", "../escape.py"), ("FB203", "C:\\win.py"),
            ("FB204", "C:\\win.py"), ("FB206", "readme.md"), ("FB208", "link")} <= found


def test_duplicate_and_non_utf8_names_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in MAIN.items():
            archive.writestr(name, data)
        with pytest.warns(UserWarning):
            archive.writestr("main.py", b"again")
        archive.writestr("cafX.py", b"")
    # cp437 byte 0x82 (é) without the UTF-8 flag: not valid UTF-8.
    path.write_bytes(path.read_bytes().replace(b"cafX.py", b"caf\x82.py"))
    found = {(f.code, f.path) for f in check(path, mode="remote_build")}
    assert ("FB205", "main.py") in found
    assert ("FB207", "caf\xe9.py") in found


# ---- binaries -------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "data", "code"), [
    ("packages/x/_native.so", pe_dll(), "FB301"),
    ("packages/x/_native.so", macho("arm64"), "FB302"),
    ("packages/x/_native.so", macho_fat(), "FB302"),
    ("packages/x/_native.so", elf(machine=183), "FB303"),
    ("packages/x/_native.so", elf(machine=3, bits=32), "FB304"),
    ("packages/x/_speedups.pyd", b"not even a PE", "FB306"),
    ("packages/x/lib.dylib", b"text", "FB306"),
])
def test_foreign_binaries_are_found_by_their_bytes(tmp_path: Path, name: str, data: bytes,
                                                   code: str) -> None:
    path = write(tmp_path, {**MAIN, name: data})
    assert [(f.code, f.path) for f in check(path)] == [(code, name)]


def test_extension_abi_tag_must_fit_the_runtime(tmp_path: Path) -> None:
    so = compile_extension("m", "3.13")
    path = write(tmp_path, {**MAIN, "packages/a.cpython-311-x86_64-linux-gnu.so": so,
                            "packages/b.cpython-313-x86_64-linux-gnu.so": so,
                            "packages/c.abi3.so": so,
                            "packages/d.cpython-313t-x86_64-linux-gnu.so": so})
    assert [f.path for f in check(path)] == ["packages/a.cpython-311-x86_64-linux-gnu.so",
                                             "packages/d.cpython-313t-x86_64-linux-gnu.so"]
    on_314 = [f.path for f in check(path, runtime="python_3_14")]
    assert "packages/b.cpython-313-x86_64-linux-gnu.so" in on_314
    assert "packages/c.abi3.so" not in on_314


def test_glibc_need_above_the_floor_is_an_error_unless_raised(tmp_path: Path) -> None:
    path = write(tmp_path, {**MAIN, "packages/x/_n.abi3.so": elf_needing_glibc("2.34")})
    (found,) = check(path)
    assert (found.code, found.path) == ("FB307", "packages/x/_n.abi3.so")
    assert "GLIBC_2.34" in found.message and "2.17" in found.message
    assert check(path, glibc=(2, 34)) == []


def test_windows_wheel_installed_into_packages_is_caught(tmp_path: Path) -> None:
    wheel = extension_wheel(tmp_path, "winonly", "1.0", tag="cp313-cp313-win_amd64")
    path = write(tmp_path, {**MAIN, "requirements.txt": b"winonly\n"}, wheel_entries(wheel))
    findings = check(path)
    assert {"FB301", "FB409"} <= codes(findings)
    [windows] = [f for f in findings if f.code == "FB301"]
    assert windows.message.endswith("(from winonly 1.0)")  # which requirement brought it in


# ---- dependencies ---------------------------------------------------------------------------

def test_missing_requirement_is_named(tmp_path: Path, demo: list[Entry],
                                      helper: list[Entry]) -> None:
    path = write(tmp_path, {**MAIN, "requirements.txt": b"demo\nrequests>=2\n"}, demo + helper)
    (found,) = check(path)
    assert found.code == "FB401" and "requests>=2" in found.message


def test_transitive_requirement_is_named_with_markers_for_the_target(tmp_path: Path) -> None:
    entries = wheel_entries(make_wheel(tmp_path, "top", "1.0", requires=[
        "needed", "winonly; sys_platform == 'win32'", "old; python_version < '3.12'",
        "sock; extra == 'socks'"]))
    path = write(tmp_path, {**MAIN, "requirements.txt": b"top\n"}, entries)
    found = check(path)
    assert [(f.code, f.message.split(" (on")[0]) for f in found] == [
        ("FB403", "top 1.0 requires needed")]
    path = write(tmp_path, {**MAIN, "requirements.txt": b"top[socks]\n"}, entries)
    assert any("sock" in f.message and f.code == "FB403" for f in check(path))


def test_version_that_does_not_satisfy_is_reported(tmp_path: Path, helper: list[Entry]) -> None:
    path = write(tmp_path, {**MAIN, "requirements.txt": b"helper>=2\n"}, helper)
    (found,) = check(path)
    assert found.code == "FB402" and "helper 1.2 is installed" in found.message


def test_two_versions_of_one_distribution(tmp_path: Path) -> None:
    a = wheel_entries(make_wheel(tmp_path / "a", "helper", "1.0"))
    b = wheel_entries(make_wheel(tmp_path / "b", "helper", "2.0"))
    names = {e.name for e in a}
    path = write(tmp_path, {**MAIN, "requirements.txt": b"helper\n"},
                 a + [e for e in b if e.name not in names])
    assert "FB404" in codes(check(path))


def test_tampered_file_is_caught_even_with_the_same_size(tmp_path: Path,
                                                         helper: list[Entry]) -> None:
    tampered = []
    for e in helper:
        if e.name.endswith("__init__.py"):
            data = e.read()
            flipped = bytes([data[0] ^ 1]) + data[1:]
            e = Entry(e.name, len(flipped), BytesData(flipped))
        tampered.append(e)
    path = write(tmp_path, {**MAIN, "requirements.txt": b"helper\n"}, tampered)
    (found,) = check(path)
    assert found.code == "FB405" and found.path == "packages/helper/__init__.py"


def test_file_listed_in_record_but_missing(tmp_path: Path, helper: list[Entry]) -> None:
    kept = [e for e in helper if not e.name.endswith("__init__.py")]
    path = write(tmp_path, {**MAIN, "requirements.txt": b"helper\n"}, kept)
    assert [(f.code, f.path) for f in check(path)] == [("FB406", "packages/helper/__init__.py")]


# ---- size -----------------------------------------------------------------------------------

def test_over_the_unpacked_threshold_lists_the_largest_top_level_packages(
        tmp_path: Path) -> None:
    path = write(tmp_path, {**MAIN, "packages/big/a.bin": bytes(3000),
                            "packages/small/b.bin": bytes(100)})
    context = CheckContext(Target.for_runtime("python_3_13"), "remote_build",
                           unpacked_warning=2000, max_unpacked=2000)
    found = run_checks(Bundle.from_zip(path), context)
    (size,) = [f for f in found if f.code == "FB503"]
    assert "packages/big 0.0 MB" in size.message
    assert "FB003" in codes(found)


# ---- metadata and .NET ----------------------------------------------------------------------

def test_metadata_fields_and_cpu_memory_pairs(tmp_path: Path) -> None:
    path = write(tmp_path, MAIN)
    definition: dict[str, Any] = {
        "kind": "container", "cpu": "1", "memory": "4Gi", "code_configuration": {
            "runtime": "python_3_12", "entry_point": [], "dependency_resolution": "remote"}}
    metadata = {"name": "-bad-", "definition": definition}
    found = check(path, mode="remote_build", metadata=metadata)
    # 1/4Gi is well-formed but not a known allocation: a warning, the service is the judge.
    assert {"FB601", "FB603", "FB604", "FB606"} == codes(found)
    assert sum(f.code == "FB601" for f in found) == 4
    assert {f.severity for f in found if f.code in ("FB604", "FB606")} == {"warning"}
    definition["memory"] = None
    assert "FB602" in codes(check(path, mode="remote_build", metadata=metadata))


def test_dotnet_bundled_needs_entry_dll_and_runtimeconfig_for_net10(tmp_path: Path) -> None:
    config = b'{"runtimeOptions": {"tfm": "net8.0"}}'
    path = write(tmp_path, {"MyAgent.dll": pe_dll(managed=True, machine=0x14C),
                            "MyAgent.runtimeconfig.json": config,
                            "e_sqlite3.dll": pe_dll(managed=False)})
    found = {(f.code, f.path) for f in check(path, "dotnet_10", entry_point=["dotnet",
                                                                             "MyAgent.dll"])}
    assert found == {("FB703", "MyAgent.runtimeconfig.json"), ("FB301", "e_sqlite3.dll")}
    found = {(f.code, f.path) for f in check(path, "dotnet_10", entry_point=["dotnet",
                                                                             "Other.dll"])}
    assert ("FB701", "Other.dll") in found and ("FB702", "Other.runtimeconfig.json") in found


def test_dotnet_remote_build_needs_a_project_and_no_build_output(tmp_path: Path) -> None:
    path = write(tmp_path, {"Program.cs": b"", "bin/Release/x.dll": b"", "obj/a.json": b""})
    found = {(f.code, f.path) for f in check(path, "dotnet_10", "remote_build")}
    assert found == {("FB704", ""), ("FB705", "bin/"), ("FB705", "obj/")}


def test_select_and_ignore_take_codes_and_prefixes() -> None:
    fs = [Finding("a", "FB301", "m", "h"), Finding("b", "FB307", "m", "h"),
          Finding("c", "FB110", "m", "h", "warning")]
    assert [f.code for f in select(fs, ["FB3"])] == ["FB301", "FB307"]
    assert [f.code for f in select(fs, ["FB3"], ["FB307"])] == ["FB301"]
    assert [f.code for f in select(fs, ["FB307"], ["FB3"])] == ["FB307"]
    assert [f.code for f in select(fs, [], ["FB1"])] == ["FB301", "FB307"]


def test_largest_names_packages_and_root_items_biggest_first() -> None:
    from bundler.checks.size import largest

    entries = [Entry(n, size, BytesData(b"")) for n, size in (
        ("packages/torch/a.so", 3_000_000), ("packages/torch/b.so", 2_000_000),
        ("packages/yaml/__init__.py", 1_000_000), ("data/model.bin", 4_000_000),
        ("main.py", 10))]
    assert largest(entries, 3) == "packages/torch 5.0 MB, data/ 4.0 MB, packages/yaml 1.0 MB"
