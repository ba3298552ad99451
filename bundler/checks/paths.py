"""FB2xx: names that are unsafe or ambiguous once the service unpacks the zip on Linux."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator

from bundler.checks.base import Finding, finding, rules
from bundler.checks.facts import Facts

RULES = rules(
    ("FB201", "error", "absolute path"),
    ("FB202", "error", "'..' segment (zip-slip)"),
    ("FB203", "error", "backslash in a name"),
    ("FB204", "error", "drive letter in a name"),
    ("FB205", "error", "duplicate name"),
    ("FB206", "error", "names that differ only by case or Unicode normalization"),
    ("FB207", "error", "name is not UTF-8"),
    ("FB208", "error", "symlink entry"),
    ("FB209", "warning", "control character in a name"),
)

# Only a leading drive letter is one (``C:``, ``C:/x``, ``C:\\x``): ``a:b.txt`` is a valid Linux
# name (and ``c:x`` would be drive-relative on Windows, so a lone letter before ':' counts).
_DRIVE = re.compile(r"^[A-Za-z]:(?:[/\\]|$)")
_REBUILD = "rebuild the zip from a folder with a standard tool (fbundle build)"


def check(facts: Facts) -> Iterator[Finding]:
    entries = facts.bundle.entries
    for entry in entries:
        name = entry.name
        if name.startswith("/"):
            yield finding("FB201", name, "absolute path; unpacking writes outside the folder",
                          _REBUILD)
        if ".." in re.split(r"[/\\]", name):
            yield finding("FB202", name, "'..' segment; unpacking writes outside the folder "
                          "(zip-slip)", _REBUILD)
        if "\\" in name:
            yield finding("FB203", name, "backslash in the name; Linux keeps it as part of "
                          "one file name instead of a folder", "zip on Linux/macOS, or with "
                          "fbundle build, which writes forward slashes")
        if _DRIVE.match(name):
            yield finding("FB204", name, "drive letter in the name", _REBUILD)
        if not entry.name_is_utf8:
            yield finding("FB207", name, "the name is not valid UTF-8 (decoded as cp437 here)",
                          "rename the file with ASCII or UTF-8 characters and rebuild")
        if any((ord(c) < 0x20 and c != "\0") or ord(c) == 0x7F for c in name):
            yield finding("FB209", name, "a control character in the name (shown escaped); "
                          "listings, logs and scripts read it as something else",
                          "rename the file with printable characters and rebuild")
        if entry.kind == "symlink":
            yield finding("FB208", name, "symlink entry; the service unpacks a plain zip",
                          "store the file it points to instead (fbundle build does)")
    counts = Counter(e.name for e in entries)
    for name, count in counts.items():
        if count > 1:
            yield finding("FB205", name, f"stored {count} times; which copy wins depends on "
                          "the unzip tool", "rebuild the zip so each name appears once")
    folded: dict[str, list[str]] = defaultdict(list)
    for name in counts:
        folded[unicodedata.normalize("NFC", name.rstrip("/")).casefold()].append(name)
    for group in folded.values():
        if len(group) > 1:
            first, *others = sorted(group)
            for other in others:
                yield finding("FB206", other, f"collides with {first} on case-insensitive or "
                              "normalizing file systems", "rename one of them")
