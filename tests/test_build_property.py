"""A property of the whole pipeline: whatever project tree build accepts, validate passes.

Random trees mix NFC and NFD spellings, case variants, nesting and many files (what Windows and
macOS checkouts produce); build either refuses the tree with one clear usage error, or writes a
zip that validates clean in the context build checked it in.
"""

from __future__ import annotations

import tempfile
import unicodedata
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundler.build import build_project
from bundler.errors import FbundleError
from bundler.validate import check_bundle, context_for, find_definition, load_bundle
from tests.support.projects import make_project

# Letters that have both a composed and a decomposed spelling, plus plain ASCII.
_LETTERS = st.sampled_from(list("abcXYZ_-") + ["é", "ü", "Å", "ñ"])
_SEGMENT = st.lists(_LETTERS, min_size=1, max_size=6).map("".join).filter(
    lambda s: s not in (".", ".."))
_SPELLING = st.sampled_from(["NFC", "NFD", "upper", "same"])


@st.composite
def trees(draw: st.DrawFn) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for _ in range(draw(st.integers(1, 40))):
        parts = draw(st.lists(_SEGMENT, min_size=1, max_size=3))
        spelling = draw(_SPELLING)
        name = "/".join(parts) + draw(st.sampled_from([".py", ".txt", ""]))
        if spelling == "NFC":
            name = unicodedata.normalize("NFC", name)
        elif spelling == "NFD":
            name = unicodedata.normalize("NFD", name)
        elif spelling == "upper":
            name = name.upper()
        files["src/" + name] = draw(st.text(max_size=40)).encode("utf-8")
    return files


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(files=trees())
def test_what_build_accepts_validate_passes(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp) / "agent", "", mode="remote_build")
        for name, data in files.items():
            path = project / name
            if any(p.is_file() for p in [*path.parents][:-1] if p.is_relative_to(project)):
                continue  # a file already stands where this one needs a folder
            if path.is_dir():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        try:
            result = build_project(project)
        except FbundleError as refused:
            # Refused in one line: by name at collection (case-only twins: exit 2), or by the
            # rule validate would report (an NFC file beside an NFD folder is FB009: exit 1).
            assert "\n" not in str(refused)
            assert refused.exit_code == 2 or (
                refused.exit_code == 1 and str(refused).startswith("FB")), refused
            return
        bundle = load_bundle(result.zip_path)
        context = context_for(bundle, find_definition(result.zip_path, bundle, None))
        errors = [f for f in check_bundle(bundle, context) if f.severity == "error"]
        assert errors == [], errors
