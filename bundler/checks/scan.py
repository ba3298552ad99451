"""Reading a bundle for the checks: small text files, then one streaming pass over the bytes.

Nothing is extracted to disk. Each member is inflated once, in a thread pool (zlib and hashlib
release the GIL), and only as far as needed: the first bytes tell a binary from anything else,
ELF files are read whole for their version needs, and a sha256 is computed only for files a
RECORD lists with a matching size. Members of a zip are still read to the end so that their CRC
is checked. A zip bomb is refused before it is inflated: bundler.zipformat never inflates past
an entry's declared size (and never more than a chunk at a time), and the declared sizes are
checked against the limit (and against what deflate can produce at most) first; members the
zip reader found contradicted by their local header, or overlapping another, are not read.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Iterator, Set
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from bundler.binaries import HEAD_SIZE, inspect_binary, needs_whole_file, sniff
from bundler.checks.base import Scanned
from bundler.checks.facts import Facts
from bundler.model import Entry, ZipMemberData
from bundler.sensitive import SecretScan
from bundler.zipformat import CHUNK, DEFLATED, STORED, inflate, raw_chunks, readable_raw

TEXT_LIMIT = 16 * 1024 * 1024  # RECORD, METADATA, requirements.txt: never larger in practice
DEFLATE_MAX_RATIO = 1032  # deflate cannot expand a byte more than this (zlib tech notes)
BATCH_BYTES = 8 * 1024 * 1024
BATCH_ENTRIES = 512


class Opener:
    """Opens entries for the checks. Zip members are inflated from their own offsets through
    bundler.zipformat (one handle each, so threads never share a file position)."""

    @contextmanager
    def open(self, entry: Entry) -> Iterator[BinaryIO]:
        with entry.open() as stream:
            yield stream

    def close(self) -> None:
        """Nothing is kept open between entries."""


def describe(error: BaseException) -> str:
    """A reader failure as a short phrase (zipfile's messages are good; give the rest a name)."""
    text = str(error).strip() or type(error).__name__
    return text[:200]


def read_text(opener: Opener, entry: Entry, facts: Facts) -> str | None:
    """A small text file's contents, or None (and the reason noted) if it cannot be read."""
    if entry.size > TEXT_LIMIT:
        facts.unreadable[entry.name] = f"{entry.size} bytes is too large for a text file"
        return None
    try:
        with opener.open(entry) as stream:
            data = stream.read(TEXT_LIMIT + 1)
            stream.read()  # to the end, so a bad CRC shows
    # Any reader failure on hostile input (BadZipFile, zlib.error, EOFError, NotImplementedError
    # for unknown methods, RuntimeError for encryption, ...) is a finding, never a traceback.
    except Exception as error:  # noqa: BLE001
        facts.unreadable[entry.name] = describe(error)
        return None
    return decode_text(data)


def decode_text(data: bytes) -> str:
    """A small text file as pip would read it (a BOM names UTF-8/16/32, else UTF-8); bytes
    that are neither are replaced, so a rule still sees the rest."""
    from bundler.requirements import decode

    try:
        return decode(data)
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def read_head(opener: Opener, entry: Entry, size: int) -> bytes:
    """A member's first ``size`` bytes (empty if it cannot be read: FB001 says why)."""
    if entry.compress_size is not None and bomb_reason(entry):
        return b""
    try:
        with opener.open(entry) as stream:
            return stream.read(size)
    except Exception:  # noqa: BLE001 — see read_text
        return b""


def bomb_reason(entry: Entry) -> str | None:
    """Why inflating this member would be unsafe, judged from its declared sizes alone."""
    if entry.compress_size is None or not isinstance(entry.data, ZipMemberData):
        return None
    method = entry.data.info.compress_type
    if method == STORED and entry.size != entry.compress_size:
        return (f"stored member declares {entry.size} bytes but holds {entry.compress_size}")
    if method == DEFLATED and entry.size > DEFLATE_MAX_RATIO * max(
            entry.compress_size, 1) + 1024:
        return (f"declares {entry.size} bytes from {entry.compress_size} compressed, "
                f"more than deflate can produce")
    return None


def _scan_chunks(chunks: Iterator[bytes], want_hash: bool, *, drain: bool,
                 secrets: SecretScan | None = None) -> Scanned:
    """What a member's bytes are: the head tells a binary from anything else, ELF files are
    kept whole for their version needs, the sha256 is computed when wanted, ``secrets``
    judges the bytes as they pass. Reading stops after the head unless hashing, ELF, the
    secret scan or ``drain`` (a zip member's CRC is checked at its end) needs the rest."""
    digest = hashlib.sha256() if want_hash else None
    buffer = bytearray()
    whole: bool | None = None  # keep every byte (ELF), or just the head; None: not known yet
    judging = secrets is not None
    for out in chunks:
        if digest is not None:
            digest.update(out)
        if judging and secrets is not None:
            judging = secrets.feed(out)
        if whole is None:
            buffer += out
            if len(buffer) >= HEAD_SIZE:
                whole = needs_whole_file(sniff(bytes(buffer[:8])))
        elif whole:
            buffer += out
        if whole is False and digest is None and not drain and not judging:
            break
    data = bytes(buffer)
    fmt = sniff(data[:8])
    binary = inspect_binary(data if needs_whole_file(fmt) else data[:HEAD_SIZE]) if fmt else None
    return Scanned(binary, digest.hexdigest() if digest is not None else None,
                   judged=secrets is not None,
                   secret=secrets.verdict() if secrets is not None else None)


def _scan_one(opener: Opener, entry: Entry, want_hash: bool, judge: bool = False) -> Scanned:
    # A build plan's wheel members carry the sha256 their RECORD declared, which the build
    # checked against the bytes (once per wheel sha256); those are not inflated again to hash
    # or to reach a CRC. Zips read back never carry one, so ``validate`` always reads the bytes.
    known = entry.sha256
    try:
        with opener.open(entry) as stream:
            scanned = _scan_chunks(iter(lambda: stream.read(CHUNK), b""),
                                   want_hash and known is None,
                                   drain=known is None and isinstance(entry.data, ZipMemberData),
                                   secrets=SecretScan(entry.name) if judge else None)
    except Exception as error:  # noqa: BLE001 — see read_text
        return Scanned(error=describe(error))
    if scanned.sha256 is None and want_hash:
        return Scanned(scanned.binary, known, judged=scanned.judged, secret=scanned.secret)
    return scanned


def _head_of(stream: BinaryIO, data: ZipMemberData) -> bytes:
    """The first HEAD_SIZE uncompressed bytes of a member, inflated from its raw stream."""
    first = next(raw_chunks(stream, data.info), b"")
    if data.info.compress_type == STORED:
        return first[:HEAD_SIZE]
    if data.info.compress_type != DEFLATED:
        raise zipfile.BadZipFile(f"{data.info.filename}: compression method "
                                 f"{data.info.compress_type} is not supported")
    return zlib.decompressobj(-15).decompress(first, HEAD_SIZE)


def _scan_verified(facts: Facts, files: list[Entry], want_hash: set[str],
                   judge: Set[str]) -> list[Entry]:
    """Sniff the plan's verified wheel members from their raw streams, one handle per wheel
    (an order of magnitude cheaper than opening each through zipfile); returns the entries
    that still need the full scan (binaries read whole, anything that failed here)."""
    rest: list[Entry] = []
    handles: dict[Path, BinaryIO] = {}
    try:
        for entry in files:
            data = entry.data
            if entry.sha256 is None or not isinstance(data, ZipMemberData) \
                    or entry.name in judge:
                rest.append(entry)
                continue
            try:
                stream = handles.get(data.archive) or handles.setdefault(
                    data.archive, open(data.archive, "rb"))
                head = _head_of(stream, data)
            except (OSError, zipfile.BadZipFile, zlib.error):
                rest.append(entry)
                continue
            fmt = sniff(head[:8])
            if needs_whole_file(fmt):
                rest.append(entry)
                continue
            facts.scanned[entry.name] = Scanned(
                inspect_binary(head) if fmt else None,
                entry.sha256 if entry.name in want_hash else None)
    finally:
        for handle in handles.values():
            handle.close()
    return rest


def _raw_readable(entry: Entry) -> bool:
    data = entry.data
    return isinstance(data, ZipMemberData) and readable_raw(data.info)


def _scan_raw(stream: BinaryIO, entry: Entry, want_hash: bool, judge: bool = False) -> Scanned:
    """``_scan_one`` for a stored or deflated member, without a zipfile stream per member
    (per-member overhead dominates bundles of thousands of small files)."""
    assert isinstance(entry.data, ZipMemberData)
    try:
        return _scan_chunks(inflate(stream, entry.data.info), want_hash, drain=True,
                            secrets=SecretScan(entry.name) if judge else None)
    except (zipfile.BadZipFile, zlib.error, OSError) as error:
        return Scanned(error=describe(error))


def scan_bytes(facts: Facts, opener: Opener, want_hash: set[str],
               judge: Set[str] = frozenset()) -> None:
    """Fill ``facts.scanned`` for every file, biggest first, in batches over a thread pool;
    the files in ``judge`` are judged for secrets on the way (``sensitive.SecretScan``)."""
    files = sorted((e for e in facts.files if e.name not in facts.bombs
                    and e.name not in facts.not_read), key=lambda e: -e.size)
    files = _scan_verified(facts, files, want_hash, judge)
    batches: list[list[Entry]] = []
    current: list[Entry] = []
    weight = 0
    for entry in files:
        current.append(entry)
        weight += entry.size
        if weight >= BATCH_BYTES or len(current) >= BATCH_ENTRIES:
            batches.append(current)
            current, weight = [], 0
    if current:
        batches.append(current)

    def run(batch: list[Entry]) -> list[tuple[str, Scanned]]:
        results = []
        handles: dict[Path, BinaryIO] = {}
        try:
            for entry in batch:
                wanted = entry.name in want_hash
                judged = entry.name in judge
                if entry.sha256 is None and _raw_readable(entry):
                    archive = entry.data.archive  # type: ignore[attr-defined]
                    if archive not in handles:
                        handles[archive] = open(archive, "rb")
                    results.append((entry.name, _scan_raw(handles[archive], entry, wanted,
                                                          judged)))
                else:
                    results.append((entry.name, _scan_one(opener, entry, wanted, judged)))
        finally:
            for handle in handles.values():
                handle.close()
        return results

    with ThreadPoolExecutor(max_workers=4) as pool:
        for results in pool.map(run, batches):
            facts.scanned.update(results)
