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
