"""pip's index configuration, read the way pip reads it."""

from __future__ import annotations

import os
from pathlib import Path

from bundler.indexes import DEFAULT_INDEX, read_pip_config


def test_environment_variables_win_over_config_files(tmp_path: Path) -> None:
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nindex-url = https://files.example/simple\n"
                      "extra-index-url = https://a.example/simple\n  https://b.example/simple\n"
                      "[install]\nfind-links = /wheels\n")
    found = read_pip_config({"PIP_CONFIG_FILE": str(config), "HOME": str(tmp_path),
                             "XDG_CONFIG_DIRS": str(tmp_path / "none"),
                             "PIP_INDEX_URL": "https://mirror.example/simple"})
    assert found.index_url == "https://mirror.example/simple"
    assert found.extra_index_urls == ("https://a.example/simple", "https://b.example/simple")
    assert found.find_links == ("/wheels",)
    assert found.uv_args() == [
        "--index-url", "https://mirror.example/simple",
        "--extra-index-url", "https://a.example/simple",
        "--extra-index-url", "https://b.example/simple", "--find-links", "/wheels"]


def test_config_file_devnull_turns_every_file_off(tmp_path: Path) -> None:
    user = tmp_path / ".config" / "pip" / "pip.conf"
    user.parent.mkdir(parents=True)
    user.write_text("[global]\nindex-url = https://user.example/simple\n")
    env = {"HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path / "none")}
    assert read_pip_config(env).index_url == "https://user.example/simple"
    assert read_pip_config({**env, "PIP_CONFIG_FILE": os.devnull}).index_url == DEFAULT_INDEX


def test_no_index_is_passed_on(tmp_path: Path) -> None:
    found = read_pip_config({"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1",
                             "PIP_FIND_LINKS": "/a /b"})
    assert found.uv_args() == ["--no-index", "--find-links", "/a", "--find-links", "/b"]


def test_a_native_release_is_told_apart_from_its_wheel_names() -> None:
    """numpy 2.4.4's real wheel names: its lowest x86_64 floor for cp313 is 2.27, which uv
    cannot be asked for, so 2.28 is what the message suggests; other CPythons' wheels and
    other platforms do not count toward the floor."""
    from bundler.sdists import native_release
    from bundler.targets import PythonTarget

    target = PythonTarget.for_runtime("python_3_13")
    numpy = ["numpy-2.4.4-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
             "numpy-2.4.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
             "numpy-2.4.4-cp313-cp313-musllinux_1_2_x86_64.whl",
             "numpy-2.4.4-cp313-cp313-win_amd64.whl",
             "numpy-2.4.4-cp313-cp313-macosx_14_0_arm64.whl"]
    error = native_release("numpy", "2.4.4", numpy, target, "uv.lock")
    assert error is not None
    assert str(error) == (
        "numpy 2.4.4 (uv.lock) ships only manylinux_2_27 wheels for CPython 3.13, above the "
        "glibc 2.17 floor, and its sdist would build native code — build with --glibc 2.28, "
        "or lock a version with manylinux2014 wheels")
    at_228 = PythonTarget.for_runtime("python_3_13", (2, 28))
    assert native_release("numpy", "2.4.4", numpy, at_228) is None  # a wheel fits
    assert native_release("six", "1.0", ["six-1.0-py2.py3-none-any.whl"], target) is None
    assert native_release("docopt", "0.6.2", [], target) is None  # sdist-only: build it
    old = native_release("old", "1.0", ["old-1.0-cp311-cp311-manylinux2014_x86_64.whl"],
                         target)
    assert old is not None and "ships platform wheels (manylinux2014_x86_64) but none for " \
        "CPython 3.13 on manylinux x86_64" in str(old)


def test_the_suggested_glibc_is_one_uv_is_asked_at_unchanged() -> None:
    """A hint's --glibc must make uv take the wheel: uv's platform names skip 2.18-2.27 and
    2.29-2.30, so a wheel needing 2.27 or 2.29 is suggested 2.28 or 2.31, and resolution and
    the native-release refusal give the same number (one function)."""
    from bundler.targets import PythonTarget, glibc_to_ask, manylinux_floor

    assert [glibc_to_ask((2, m))[1] for m in (12, 17, 18, 27, 28, 29, 31, 34)] == \
        [12, 17, 28, 28, 28, 31, 31, 34]
    for minor in range(5, 40):
        asked = glibc_to_ask((2, minor))
        uv = PythonTarget.for_runtime("python_3_13", asked).uv_platform
        assert int(uv.rsplit("_", 1)[1]) >= minor, (minor, asked, uv)
    assert manylinux_floor("manylinux2014_x86_64") == (2, 17)
    assert manylinux_floor("manylinux_2_28_x86_64") == (2, 28)
    assert manylinux_floor("manylinux_2_28_aarch64") is None
    assert manylinux_floor("musllinux_1_2_x86_64") is None
