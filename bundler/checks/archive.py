"""FB0xx: the archive itself — members that cannot be read, zip bombs, and zips that unpack to
something else than what their central directory says.

Most of these are found by the zip reader (bundler.zipformat), which every command shares;
this family reports them. The name rules (a file and a folder of one name, names Linux cannot
create, the entry limit) are judged here on the entries, so a build plan gets them too.
"""

from __future__ import annotations

from collections.abc import Iterator

from bundler.checks.base import Finding, finding, rules
from bundler.checks.facts import Facts
from bundler.zipformat import MAX_ENTRIES, name_problems

RULES = rules(
    ("FB001", "error", "a member cannot be read (bad CRC, truncated, unsupported or encrypted)"),
    ("FB002", "error", "a member declares sizes no honest zip has (zip bomb); not inflated"),
    ("FB003", "warning", "bytes not inspected because the declared total is over the limit"),
    ("FB004", "error", "a name holds a NUL byte"),
    ("FB005", "error", "the local header names another file than the central directory"),
    ("FB006", "error", "the local header disagrees with the central directory (method, CRC, "
                       "sizes, flags)"),
    ("FB007", "error", "flag bit 3 without the data descriptor it promises"),
    ("FB008", "error", "members whose bytes overlap (one member under several names)"),
    ("FB009", "error", "a file and a folder with the same name"),
    ("FB010", "error", "the end record's entry count differs from the central directory"),
    ("FB011", "error", f"more than {MAX_ENTRIES} entries"),
    ("FB012", "error", "a compression method other than stored or deflated"),
    ("FB013", "error", "a name longer than Linux can create (4095 bytes)"),
    ("FB014", "error", "a path segment longer than 255 bytes"),
    ("FB015", "error", "the end record says the zip spans several disks"),
    ("FB016", "error", "strong encryption, patched data or masked headers (flag bits 6, 5, 13)"),
    ("FB017", "error", "an entry with an empty name"),
)


def check(facts: Facts) -> Iterator[Finding]:
    errors = dict(facts.unreadable)
    errors.update({name: s.error for name, s in facts.scanned.items() if s.error})
    for name, why in errors.items():
        yield finding("FB001", name, f"cannot be read: {why}",
                      "rebuild the zip; the service cannot unpack this member either")
    for name, why in facts.bombs.items():
        yield finding("FB002", name, f"not inflated: {why}",
                      "rebuild the zip with a standard tool (fbundle build, zip -r)")
    if facts.content_skipped:
        yield finding("FB003", facts.bundle.location, "binaries and RECORD hashes were not "
                      f"checked: {facts.content_skipped}",
                      "shrink the bundle under the limit, then validate again")
    for problem in facts.bundle.problems:
        yield finding(problem.code, problem.name, problem.message, problem.hint)
    yield from _names(facts)


def _names(facts: Facts) -> Iterator[Finding]:
    entries = facts.bundle.entries
    if len(entries) > MAX_ENTRIES:
        yield finding("FB011", facts.bundle.location, f"{len(entries)} entries, more than the "
                      f"{MAX_ENTRIES} fbundle reads back", "an agent this large is not one; "
                      "exclude data folders (.fbundleignore) or ship them another way")
    folders: set[str] = set()
    for entry in entries:
        parts = entry.name.rstrip("/").split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
        if entry.kind == "dir":
            folders.add(entry.name.rstrip("/"))
    for entry in entries:
        if entry.kind != "dir" and entry.name in folders:
            yield finding("FB009", entry.name, f"is a file, and other entries sit in a folder "
                          f"{entry.name}/: extracting one fails or replaces the other",
                          "rename the file or the folder and rebuild")
        for code, message in name_problems(entry.name):
            yield finding(code, entry.name, message, "rename it and rebuild")
