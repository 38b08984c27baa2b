"""Shared by every test layer: a temporary ``CLAUDE_BOTTLE_HOME`` for the whole session, so no test
ever reads or writes the user's real ``~/.claude-bottle``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _session_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("claude-bottle-home")
    old = os.environ.get("CLAUDE_BOTTLE_HOME")
    os.environ["CLAUDE_BOTTLE_HOME"] = str(home)
    try:
        yield home
    finally:
        if old is None:
            os.environ.pop("CLAUDE_BOTTLE_HOME", None)
        else:
            os.environ["CLAUDE_BOTTLE_HOME"] = old
