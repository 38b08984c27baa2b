"""Run git-gate: ``python3 -m claude_bottle.sidecars.gitgate [CONFIG]``.

CONFIG is ``git-gate.json`` or any file beside it (the bundle's init passes ``bundle.yaml``); default
``/etc/claude-bottle/git-gate.json`` (the stage dir, mounted read-only). A bottle without a git
workspace has no such file or no mirror: the gate then idles, so the bundle's init (which stops the
bundle when a daemon exits) can always start it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

from claude_bottle.sidecars.gitgate.config import CONFIG_FILE, GateConfig
from claude_bottle.sidecars.gitgate.hook import CONFIG_ENV
from claude_bottle.sidecars.gitgate.remotes import write_known_hosts
from claude_bottle.sidecars.gitgate.server import Gate, install_hooks, serve


def _say(text: str) -> None:
    print(f"git-gate: {text}", file=sys.stderr, flush=True)


def _idle(why: str) -> int:
    _say(f"{why}; idle")
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    return 0


def _trust_upstream_ca(config_dir: Path, work_dir: Path) -> None:
    """Remotes are reached directly from the bundle; where HTTPS passes an inspecting proxy, its CA
    (mounted as upstream-ca.pem) is trusted on top of the system's, never instead of it."""
    extra = config_dir / "upstream-ca.pem"
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    if not extra.is_file() or "GIT_SSL_CAINFO" in os.environ:
        return
    bundle = work_dir / "ca-bundle.pem"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    bundle.write_text((system.read_text() if system.is_file() else "") + "\n" + extra.read_text())
    os.environ["GIT_SSL_CAINFO"] = str(bundle)


def _own_git_config(work_dir: Path, mirror: Path) -> None:
    """The gate's global git config. The mirror belongs to the host user while the gate runs as root,
    so git's ownership check must be told, in protected (global) config. ``*`` rather than the path:
    receive-pack runs the hook's git with ``GIT_DIR=.``, which a path entry does not match, and this
    git only ever opens the gate's own repositories."""
    work_dir.mkdir(parents=True, exist_ok=True)
    gitconfig = work_dir / "gitconfig"
    gitconfig.write_text(f"# git-gate's repositories: {mirror} and its remote caches\n"
                         "[safe]\n\tdirectory = *\n")
    os.environ["GIT_CONFIG_GLOBAL"] = str(gitconfig)


def main(argv: list[str]) -> int:
    given = Path(argv[1] if len(argv) > 1 else f"/etc/claude-bottle/{CONFIG_FILE}")
    path = given if given.name == CONFIG_FILE else given.parent / CONFIG_FILE
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    if not path.is_file():
        return _idle(f"no {path}: this bottle has no git workspace")
    config = GateConfig.load(path)
    mirror = Path(config.mirror)
    if not (mirror / "HEAD").is_file():
        return _idle(f"no mirror at {mirror}: this bottle has no git workspace")
    os.environ[CONFIG_ENV] = str(path.resolve())
    _own_git_config(Path(config.work_dir), mirror)
    install_hooks(mirror)
    write_known_hosts(config)
    _trust_upstream_ca(path.parent, Path(config.work_dir))
    for remote in config.remotes:
        if remote.kind == "ssh" and not remote.host_key:
            _say(f"remote {remote.name} is ssh without a pinned host key: every use of it is refused")
    gate = Gate(config)
    server = serve(gate, config.listen, config.port)
    gate.log(event="start", listen=f"{config.listen}:{config.port}", remotes=[r.name for r in config.remotes])
    _say(f"serving {mirror} on {config.listen}:{server.server_address[1]}")
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
