"""Integration layer: a real docker engine, real images, the real CLI in a subprocess.

One temporary ``CLAUDE_BOTTLE_HOME`` for the whole session; every bottle the suite makes carries
``dev.claude-bottle.home=<that home>``, and every helper container (the HTTPS upstream, foreign
containers) carries ``dev.claude-bottle-test.home=<that home>``. The session fails if either label
still marks anything when it ends (what is found is removed first, so one leak does not poison the
next run): the tox-docker leak check.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.dockerkit import HOME_LABEL, HOST_CA, TEST_LABEL, Env, docker_works, labelled, remove


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    skip = None if docker_works() else pytest.mark.skip(reason="no usable docker engine")
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
            if skip is not None:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    home = Path(tempfile.mkdtemp(prefix="cb-it-home-"))
    workdir = tmp_path_factory.mktemp("work")
    (workdir / "hello.txt").write_text("hello from the host\n")
    # The proxy's upstream trust: this machine's TLS-inspecting CA (images need it for npm/pip too),
    # plus the suite's own test CA, appended by the upstream fixture.
    ca_bundle = home / "upstream-ca.pem"
    ca_bundle.write_bytes(HOST_CA.read_bytes() if HOST_CA.is_file() else b"")
    environ = {**os.environ, "CLAUDE_BOTTLE_HOME": str(home), "CLAUDE_BOTTLE_EXTRA_CA_CERTS": str(ca_bundle),
               "CLAUDE_BOTTLE_BACKEND": "docker", "NO_COLOR": "1", "COLUMNS": "200"}
    environ.pop("CLAUDE_BOTTLE_BACKENDS", None)
    before = labelled(f"{HOME_LABEL}={home}") + labelled(f"{TEST_LABEL}={home}")
    assert not before, f"a fresh home already has labelled resources: {before}"
    yield Env(home=home, environ=environ, workdir=workdir)
    leaked = labelled(f"{HOME_LABEL}={home}") + labelled(f"{TEST_LABEL}={home}")
    remove(leaked)
    shutil.rmtree(home, ignore_errors=True)
    assert not leaked, f"the suite left labelled docker resources behind: {leaked}"


@pytest.fixture(scope="session")
def images(env: Env) -> None:
    """Build (or find) the images once, so every ``up`` in the suite is warm."""
    env.cli("build", timeout=1800)
