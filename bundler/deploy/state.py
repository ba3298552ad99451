"""The last session an invoke was given, per project endpoint and agent, so ``logs`` can default.

Kept in the user's state folder (``platformdirs.user_state_path("fbundle")``, as pip keeps its
state under the platform's user dirs; ``FBUNDLE_STATE_DIR`` overrides it), never in the project:
a session id is per user and per machine, and a project folder gets committed. The file holds
ids only (no token, no answer text) and is written to a temp file and renamed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

import platformdirs

from bundler.deploy.http import check_session
from bundler.errors import FbundleError, UsageError
from bundler.write import OutputError, atomic_output

log = logging.getLogger(__name__)

FILE = "sessions.json"
KEEP = 200  # the most recent (endpoint, agent) pairs kept


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """``FBUNDLE_STATE_DIR`` or the platform's user state dir; a relative answer is refused."""
    env = os.environ if env is None else env
    value = env.get("FBUNDLE_STATE_DIR") or str(platformdirs.user_state_path("fbundle"))
    folder = Path(value)
    if not folder.is_absolute():
        raise UsageError(f"the state folder {value!r} is not an absolute path",
                         "set HOME (or FBUNDLE_STATE_DIR) to an absolute folder")
    return folder


def _key(endpoint: str, agent: str) -> str:
    return f"{endpoint.rstrip('/')}|{agent}"


def _load(file: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(file.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        log.warning("ignoring %s: %s", file, error)
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) \
        else {}


def remember_session(endpoint: str, agent: str, session: str,
                     env: Mapping[str, str] | None = None) -> Path | None:
    """Record ``session`` as the last one for (endpoint, agent); None when it cannot be saved."""
    check_session(session, source="x-agent-session-id")
    try:
        file = state_dir(env) / FILE
    except FbundleError as error:  # the answer was printed; not remembering is not fatal
        log.warning("could not remember the session: %s", error)
        return None
    entries = _load(file)
    entries.pop(_key(endpoint, agent), None)
    entries[_key(endpoint, agent)] = {"session": session, "at": int(time.time())}
    kept = dict(list(entries.items())[-KEEP:])
    try:
        with atomic_output(file) as out:
            out.write(json.dumps(kept, indent=1, sort_keys=False).encode("utf-8"))
    except (OSError, OutputError) as error:
        log.warning("could not remember the session in %s: %s", file, error)
        return None
    return file


def last_session(endpoint: str, agent: str, env: Mapping[str, str] | None = None) -> str | None:
    """The session the last invoke of ``agent`` at ``endpoint`` was given, if any."""
    entry = _load(state_dir(env) / FILE).get(_key(endpoint, agent), {})
    session = entry.get("session")
    if not isinstance(session, str):
        return None
    try:
        return check_session(session, source="the remembered session")
    except FbundleError:
        return None
