"""Run git-gate: ``python3 -m claude_bottle.sidecars.gitgate [CONFIG]``.

CONFIG defaults to ``/etc/claude-bottle/git-gate.json`` (the stage dir, mounted read-only). The gate
moves remote credentials out of its environment first, installs its hook into the mirror, then serves.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from claude_bottle.sidecars.gitgate.config import CONFIG_FILE, GateConfig
from claude_bottle.sidecars.gitgate.hook import CONFIG_ENV
from claude_bottle.sidecars.gitgate.remotes import stash_secrets
from claude_bottle.sidecars.gitgate.server import Gate, install_hooks, serve


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else f"/etc/claude-bottle/{CONFIG_FILE}")
    config = GateConfig.load(path)
    # First thing: no child process may inherit a credential.
    secrets_dir = stash_secrets(config.remotes, os.environ)
    for remote in config.remotes:
        if remote.kind == "ssh" and not remote.host_key:
            print(f"git-gate: remote {remote.name} is ssh without a pinned host key: refusing it",
                  file=sys.stderr)
    os.environ[CONFIG_ENV] = str(path.resolve())
    mirror = Path(config.mirror)
    if not (mirror / "HEAD").is_file():
        print(f"git-gate: no mirror at {mirror}; nothing to serve", file=sys.stderr)
        return 1
    install_hooks(mirror)
    gate = Gate(config, secrets_dir)
    server = serve(gate, config.listen, config.port)
    gate.log(event="start", listen=f"{config.listen}:{config.port}", remotes=[r.name for r in config.remotes])
    print(f"git-gate: serving {mirror} on {config.listen}:{server.server_address[1]}",
          file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
