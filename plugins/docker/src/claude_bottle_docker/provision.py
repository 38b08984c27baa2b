"""Provisioning the running agent: the bottle's CA, the system prompt, a copy of the workspace.

Everything enters through ``docker exec -i`` with the bytes on stdin, never a host mount. The agent has
no capabilities, so root inside it can write only root-owned paths (the trust store) and the agent user
writes its own (``/workspace``, ``~/.claude``): two execs, one per owner.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from claude_bottle.errors import BottleError
from claude_bottle.runner import Command
from claude_bottle.workspace import INCLUDE_FLAG
from claude_bottle_docker.docker import DOCKER
from claude_bottle_docker.topology import AGENT_USER, BUNDLE_CA_PATH, CA_PATH_IN_AGENT, SYSTEM_CA_BUNDLE

if TYPE_CHECKING:
    from claude_bottle.runner import Runner

__all__ = [
    "WorkspaceArchive",
    "build_user_archive",
    "fetch_bundle_ca",
    "install_ca",
    "install_user_files",
    "skipped_note",
]

HOME = f"/home/{AGENT_USER}"


def fetch_bundle_ca(runner: Runner, bundle: str) -> bytes:
    result = runner.run(Command((DOCKER, "exec", bundle, "cat", BUNDLE_CA_PATH), check=False, timeout=30))
    pem = result.stdout
    if not result.ok or "BEGIN CERTIFICATE" not in pem:
        raise BottleError(f"the sidecar bundle {bundle} has no CA at {BUNDLE_CA_PATH}: "
                          f"{(result.stderr.strip() or 'empty').splitlines()[-1]}")
    return pem.encode()


def install_ca(runner: Runner, agent: str, pem: bytes) -> None:
    """Trust the bottle's CA for everything in the agent: the file node reads (NODE_EXTRA_CA_CERTS),
    and the system bundle OpenSSL, curl, git and Python read (what update-ca-certificates would
    produce, without its seconds of rehashing)."""
    script = f"cat > {CA_PATH_IN_AGENT} && cat {CA_PATH_IN_AGENT} >> {SYSTEM_CA_BUNDLE}"
    argv = (DOCKER, "exec", "-i", "--user", "root", agent, "sh", "-c", script)
    runner.run(Command(argv, input=pem, timeout=60))


@dataclass(frozen=True)
class WorkspaceArchive:
    data: bytes
    files: int
    skipped: tuple[str, ...]  # relative paths left out, each with the reason
    entries: int = 0          # members of the tar; 0: nothing to unpack, no exec needed
    left_out: int = 0         # paths left out because they may hold secrets (``exclude``)


def _kind_skipped(mode: int) -> str | None:
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return None


def build_user_archive(*, prompt: str, workspace: Path | None,
                       home_files: Mapping[str, bytes] | None = None,
                       exclude: Mapping[str, str] | None = None) -> WorkspaceArchive:
    """A tar (relative to ``/``) holding ``home_files`` (paths relative to the agent's home: Claude
    Code's config, ``~/.claude/CLAUDE.md``, skills; see ``claude_bottle.claude_code.home_files``), or
    without them ``prompt`` as ``~/.claude/CLAUDE.md``, and, if given, ``workspace`` copied to
    ``/workspace``. Sockets, fifos, devices and unreadable files cannot be copied: they are listed in
    ``skipped`` for the caller to report, never dropped silently. So is each path of ``exclude``
    (relative path -> why, from :func:`claude_bottle.workspace.workspace_notes`), with its reason:
    files that may hold secrets, and folders not walked into."""
    buf = io.BytesIO()
    skipped: list[str] = []
    count = 0
    files = dict(home_files or {})
    if not files and prompt:
        files[".claude/CLAUDE.md"] = (prompt if prompt.endswith("\n") else prompt + "\n").encode()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made: set[str] = set()
        for rel, data in sorted(files.items()):
            parts = rel.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in made:
                    made.add(folder)
                    _add_bytes(tar, f"{HOME[1:]}/{folder}", None)
            _add_bytes(tar, f"{HOME[1:]}/{rel}", data)
        if workspace is not None:
            count = _add_tree(tar, workspace, skipped, exclude or {})
        entries = len(tar.getmembers())
    left_out = len(exclude or {}) if workspace is not None else 0
    return WorkspaceArchive(data=buf.getvalue(), files=count, skipped=tuple(skipped), entries=entries,
                            left_out=left_out)


def skipped_note(archive: WorkspaceArchive, *, shown: int = 5) -> str:
    """The line ``launch`` prints about what the copy left out ("" when nothing was)."""
    if not archive.skipped:
        return ""
    more = " ..." if len(archive.skipped) > shown else ""
    note = f"not copied to /workspace ({len(archive.skipped)}): {', '.join(archive.skipped[:shown])}{more}"
    return note + (f"; copy one anyway with {INCLUDE_FLAG} PATH" if archive.left_out else "")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes | None) -> None:
    info = tarfile.TarInfo(name)
    # Now, not 1970: the session's CLAUDE.md marks its start (a workspace file newer than it was
    # changed in the session; claude_bottle.worksave).
    info.mtime = int(time.time())
    if data is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    else:
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))


def _add_tree(tar: tarfile.TarFile, root: Path, skipped: list[str], exclude: Mapping[str, str]) -> int:
    count = 0

    def onerror(err: OSError) -> None:
        skipped.append(f"{Path(err.filename or '?').relative_to(root) if err.filename else '?'} (unreadable)")

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
        here = Path(dirpath)
        rel_dir = here.relative_to(root)
        for name in sorted(dirnames + filenames):
            path = here / name
            rel = (rel_dir / name).as_posix()
            if rel in exclude:
                skipped.append(f"{rel} ({exclude[rel]})")
                continue
            try:
                st = path.lstat()
            except OSError:
                skipped.append(f"{rel} (unreadable)")
                continue
            why = _kind_skipped(st.st_mode)
            if why:
                skipped.append(f"{rel} ({why})")
                continue
            info = tar.gettarinfo(str(path), arcname=f"workspace/{rel}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isreg():
                try:
                    with path.open("rb") as fh:
                        tar.addfile(info, fh)
                except OSError:
                    skipped.append(f"{rel} (unreadable)")
                    continue
                count += 1
            else:
                tar.addfile(info)  # directory or symlink (a link is copied as a link, never followed)
        dirnames[:] = [d for d in dirnames if (rel_dir / d).as_posix() not in exclude]  # not walked into
    return count


def install_user_files(runner: Runner, agent: str, archive: WorkspaceArchive) -> None:
    """Unpack the archive as the agent user, so everything it gets is its own."""
    runner.run(Command(
        (DOCKER, "exec", "-i", "--user", AGENT_USER, "--workdir", "/", agent,
         "tar", "--extract", "--file", "-", "--directory", "/", "--no-same-owner",
         "--delay-directory-restore"),
        input=archive.data, timeout=600,
    ))
