"""Red team: ``claude-bottle cp`` brings what the agent made onto the user's machine. ``docker cp`` keeps
modes and, run as root, makes the files root's: a set-uid program the agent planted arrived as a
set-uid-root program, and a FIFO it planted hangs the first tool that reads it."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.dockerkit import Env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def slug(env: Env, images: None) -> Iterator[str]:
    name = json.loads(env.cli("up", "--no-workspace", "--detach", "--yes", "--json").stdout)["slug"]
    try:
        yield name
    finally:
        env.cli("down", name, "--yes", "--discard", check=False)


def test_planted_set_id_programs_and_fifos_do_not_arrive(env: Env, slug: str, tmp_path: Path) -> None:
    planted = env.cli("exec", slug, "--", "sh", "-c",
                      "mkdir -p /workspace/out/sub && cp /bin/true /workspace/out/suid && "
                      "chmod 4755 /workspace/out/suid && cp /bin/true /workspace/out/sub/sgid && "
                      "chmod 2755 /workspace/out/sub/sgid && mkfifo /workspace/out/fifo && echo planted")
    assert planted.stdout.strip() == "planted", planted
    dest = tmp_path / "dest"
    out = env.cli("cp", f"{slug}:out", str(dest))
    files = {p.relative_to(dest).as_posix(): p.lstat().st_mode for p in dest.rglob("*")}
    assert set(files) == {"suid", "sub", "sub/sgid"}, files  # the FIFO is gone
    for name, mode in files.items():
        assert not mode & (stat.S_ISUID | stat.S_ISGID), (name, oct(mode))
    assert files["suid"] & 0o111, "still an executable, only without its set-id bits"
    assert "set-id" in out.stderr and "fifo" in out.stderr, out.stderr
    single = tmp_path / "single"
    env.cli("cp", f"{slug}:out/suid", str(single))
    assert not single.lstat().st_mode & stat.S_ISUID


def test_docker_cp_forms_still_land_where_docker_puts_them(env: Env, slug: str, tmp_path: Path) -> None:
    env.cli("exec", slug, "--", "sh", "-c", "mkdir -p /workspace/d && echo one > /workspace/d/one && "
            "cp /bin/true /workspace/d/suid && chmod 4755 /workspace/d/suid && "
            "ln -sf /etc/passwd /workspace/d/out-link && ln -sf one /workspace/d/in-link")
    into = tmp_path / "into"
    into.mkdir()
    env.cli("cp", f"{slug}:d", str(into))          # an existing directory: d goes inside it
    env.cli("cp", f"{slug}:d/.", str(tmp_path / "contents"))  # PATH/. : the contents, as DEST
    env.cli("cp", f"{slug}:d/one", str(tmp_path / "file"))
    for where in (into / "d", tmp_path / "contents"):
        assert (where / "one").read_text() == "one\n"
        assert not (where / "suid").stat().st_mode & stat.S_ISUID
        assert not (where / "out-link").is_symlink() and (where / "in-link").is_symlink()
    assert (tmp_path / "file").read_text() == "one\n"
    assert not [p for p in tmp_path.rglob(".claude-bottle-cp-*")], "a staging directory was left behind"
