"""Receive git remote credentials from the host on stdin and keep them in a tmpfs, for the gate only.

The host runs ``docker exec -i <bundle> python3 -m claude_bottle.sidecars.gitgate.creds`` with a JSON
object ``{"<remote>": {"kind": "ssh-key"|"token", "value": "..."}}`` on stdin (the same path as the
proxy's credentials, decision 0007): no value is ever on a command line, in an environment, in
``docker inspect`` or on a disk. Each value becomes ``<dir>/<remote>.key`` or ``<remote>.token``, 0600
in a 0700 directory; anything that is not a tmpfs is refused. The agent runs in another container.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from claude_bottle.sidecars.gitgate.config import SECRETS_DIR

__all__ = ["is_tmpfs", "main", "store"]

_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def is_tmpfs(path: Path) -> bool:
    """Is ``path`` on a tmpfs? (The longest mount point containing it, from /proc/self/mountinfo.)"""
    best, fstype = "", ""
    target = str(path.resolve())
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        mount_point = left.split()[4]
        if (target == mount_point or target.startswith(mount_point.rstrip("/") + "/")) and \
                len(mount_point) >= len(best):
            best, fstype = mount_point, right.split()[0]
    return fstype == "tmpfs"


def store(payload: dict[str, dict[str, str]], directory: Path) -> list[Path]:
    old = os.umask(0o077)
    try:
        return _store(payload, directory)
    finally:
        os.umask(old)


def _store(payload: dict[str, dict[str, str]], directory: Path) -> list[Path]:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    if not is_tmpfs(directory):
        raise SystemExit(f"git-gate: {directory} is not a tmpfs; refusing to store credentials there")
    written = []
    for name, item in payload.items():
        kind, value = item.get("kind"), item.get("value", "")
        if not _NAME.match(name) or kind not in ("ssh-key", "token"):
            raise SystemExit(f"git-gate: bad credential entry {name!r}")
        path = directory / f"{name}.{'key' if kind == 'ssh-key' else 'token'}"
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value.rstrip("\n") + "\n" if kind == "ssh-key" else value.strip())
        tmp.replace(path)
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    directory = Path(argv[1]) if len(argv) > 1 else Path(SECRETS_DIR)
    store(json.loads(sys.stdin.read() or "{}"), directory)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
