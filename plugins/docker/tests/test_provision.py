from __future__ import annotations

import io
import os
import socket
import tarfile

from claude_bottle_docker.provision import build_user_archive, install_ca, install_user_files


def _members(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}, tar


def test_archive_holds_prompt_and_workspace_and_reports_what_it_cannot_copy(tmp_path):
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "a.py").write_text("print(1)\n")
    (ws / "run.sh").write_text("#!/bin/sh\n")
    (ws / "run.sh").chmod(0o755)
    (ws / "link").symlink_to("/etc/passwd")  # copied as a link, never followed
    os.mkfifo(ws / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(ws / "sock"))
    secret = ws / "locked"
    secret.write_text("x")
    secret.chmod(0)
    try:
        archive = build_user_archive(prompt="Be careful.", workspace=ws)
    finally:
        sock.close()
    members, _ = _members(archive.data)
    assert "home/claude/.claude/CLAUDE.md" in members
    assert {"workspace/src", "workspace/src/a.py", "workspace/run.sh", "workspace/link"} <= set(members)
    assert members["workspace/link"].issym() and members["workspace/link"].linkname == "/etc/passwd"
    assert members["workspace/run.sh"].mode & 0o111
    assert "pipe (fifo)" in archive.skipped and "sock (socket)" in archive.skipped
    if os.geteuid() != 0:  # root reads mode-0 files; anyone else must see it reported
        assert "locked (unreadable)" in archive.skipped
    with tarfile.open(fileobj=io.BytesIO(archive.data)) as tar:
        assert tar.extractfile("home/claude/.claude/CLAUDE.md").read() == b"Be careful.\n"


def test_no_workspace_means_only_the_prompt(tmp_path):
    archive = build_user_archive(prompt="p", workspace=None)
    members, _ = _members(archive.data)
    assert set(members) == {"home/claude/.claude", "home/claude/.claude/CLAUDE.md"}
    assert build_user_archive(prompt="", workspace=None).entries == 0  # nothing to unpack, no exec


def test_ca_goes_in_as_root_and_user_files_as_the_agent_user(recorder):
    install_ca(recorder, "agent-c", b"-----BEGIN CERTIFICATE-----\n")
    install_user_files(recorder, "agent-c", build_user_archive(prompt="p", workspace=None))
    ca, files = recorder.calls
    assert ca.argv[:6] == ("docker", "exec", "-i", "--user", "root", "agent-c") and ca.input
    assert files.argv[:5] == ("docker", "exec", "-i", "--user", "claude") and "--extract" in files.argv
