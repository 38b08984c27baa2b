"""Shared by every suite (core, docker plugin, smolmachines plugin): temporary files stay in one
directory per test session, removed at its end. ``up --dry-run`` keeps its rendered files in a
temporary stage dir by design; without this, each run of the suites would leave those in /tmp."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_tmpdir() -> Iterator[None]:
    # Short on purpose: unix socket paths under it must stay below the kernel's 108-byte limit.
    path = tempfile.mkdtemp(prefix="cbt-", dir="/tmp")
    Path(path).chmod(0o755)
    saved_env, saved_attr = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = path  # subprocesses (the CLI run as a program) inherit it
    tempfile.tempdir = path
    try:
        yield
    finally:
        tempfile.tempdir = saved_attr
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(path, ignore_errors=True)
