"""What the service-client tests share: the loopback service fixture, tiny bundles, a client.

``fake`` starts :class:`tests.fakeservice.FakeService` and points the CLI at it through the
environment (endpoint, token, millisecond poll and backoff intervals, a private state folder
for remembered sessions). Test modules import the fixture by name.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from bundler.deploy.auth import Credential, Secret
from bundler.deploy.client import PREVIEW_API_VERSION, FoundryClient
from bundler.deploy.http import HttpOptions
from bundler.model import BytesData, Entry
from bundler.project import example_metadata
from bundler.write import write_zip
from tests.fakeservice import TOKEN, FakeService

AGENT = "hello-agent"
RunCli = Callable[..., Result]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[FakeService]:
    with FakeService() as service:
        monkeypatch.setenv("FBUNDLE_ENDPOINT", service.endpoint)
        monkeypatch.setenv("FBUNDLE_TOKEN", TOKEN)
        monkeypatch.setenv("FBUNDLE_POLL_INTERVAL", "0.005")
        monkeypatch.setenv("FBUNDLE_POLL_MAX_INTERVAL", "0.02")
        monkeypatch.setenv("FBUNDLE_BACKOFF", "0.005")
        monkeypatch.setenv("FBUNDLE_BACKOFF_MAX", "2")
        monkeypatch.setenv("FBUNDLE_LOGS_IDLE", "0.3")
        monkeypatch.setenv("FBUNDLE_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        yield service


def make_bundle(folder: Path, text: str = "print('hello')\n", *,
                metadata: dict[str, object] | None = None, size: int = 0) -> Path:
    """A flat remote_build zip (main.py, requirements.txt, optional filler) + metadata.json."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"main.py": text.encode(), "requirements.txt": b"agent-framework\n"}
    if size:
        files["data.bin"] = os.urandom(size)  # incompressible, so the zip is really this big
    entries = [Entry(name, len(data), BytesData(data)) for name, data in files.items()]
    zip_path = folder / "agent-code.zip"
    write_zip(entries, zip_path)
    meta = metadata or example_metadata(mode="remote_build")
    (folder / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    return zip_path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def client(fake: FakeService, *, api_version: str = PREVIEW_API_VERSION,
           sleep: Callable[[float], None] | None = None, **kwargs: object) -> FoundryClient:
    """A library client of ``fake`` with the test token (and an injectable sleep)."""
    options = HttpOptions(backoff=0.001, backoff_max=30)
    return FoundryClient(fake.endpoint, lambda: Credential(Secret(TOKEN), "test", "fix"),
                         api_version=api_version, options=options, sleep=sleep,
                         **kwargs)  # type: ignore[arg-type]
