"""PID 1 of the sidecar bundle: start the daemons the config names, forward signals, reap, and exit when
any daemon dies (so Docker sees the bundle fail instead of a proxy-less bundle that still "runs").

Run as ``python3 -m claude_bottle.sidecars.init [CONFIG]``. Exit status: 0 after a SIGTERM/SIGINT
shutdown, 1 when a daemon died (its name and status are printed first), 2 for a bad config.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from claude_bottle.sidecars.config import CONFIG_PATH, BundleConfig, ConfigError, load_bundle_config
from claude_bottle.sidecars.egress.inject import CREDENTIALS_FILE

__all__ = ["BUNDLE_PROBLEM_FILE", "DAEMONS", "STARTED_MARKER", "Daemon", "Supervisor", "daemon_argv", "main",
           "note_restart"]

GRACE_SECONDS = 5.0  # docker stop waits 10 s before SIGKILL; leave the daemons half of it
_PY = sys.executable or "python3"

# What each daemon name in bundle.yaml runs. A config entry may also give its own argv (tests, and
# sidecars added later), but the names the host renders are resolved here, inside the image.
DAEMONS: Mapping[str, tuple[str, ...]] = {
    "egress": (_PY, "-m", "claude_bottle.sidecars.egress.run"),
    "dns": (_PY, "-m", "claude_bottle.sidecars.dns"),
    "git-gate": (_PY, "-m", "claude_bottle.sidecars.gitgate"),
}
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
_WATCHED = (*_FORWARDED, signal.SIGCHLD)


# In the container's writable layer: it survives a restart of the container, a tmpfs does not.
STARTED_MARKER = Path("/run/claude-bottle/started")
# Beside the audit log, so in the bottle's state dir on the host, where `list` reads it.
BUNDLE_PROBLEM_FILE = "bundle-problem.txt"


def note_restart(cfg: BundleConfig, *, marker: Path = STARTED_MARKER,
                 credentials: Path = CREDENTIALS_FILE) -> str | None:
    """On a second start of this container, with the bottle's credentials gone from the tmpfs (a
    ``docker restart``, a crash, an engine restart), say so where the user sees it: docker logs and
    ``claude-bottle list``. The proxy refuses all traffic meanwhile (``CredentialStore``). Returns the
    problem, or ``None``."""
    restarted = marker.exists()
    with contextlib.suppress(OSError):
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    if not (restarted and cfg.credentials and not credentials.exists()):
        return None
    problem = ("the sidecar bundle restarted and lost this bottle's credentials, so it refuses all "
               f"traffic: run `claude-bottle start {cfg.slug}` to give them again, or "
               f"`claude-bottle down {cfg.slug}`")
    _say(problem)
    with contextlib.suppress(OSError):
        (Path(cfg.audit_log).parent / BUNDLE_PROBLEM_FILE).write_text(problem + "\n")
    return problem


@dataclass(frozen=True)
class Daemon:
    name: str
    argv: tuple[str, ...]


def daemon_argv(cfg: BundleConfig, config_path: str) -> list[Daemon]:
    out = []
    for entry in cfg.daemons:
        argv = entry.argv or DAEMONS.get(entry.name)
        if argv is None:
            raise ConfigError(f"unknown daemon {entry.name!r} (known: {', '.join(sorted(DAEMONS))})")
        out.append(Daemon(entry.name, (*argv, config_path) if not entry.argv else tuple(argv)))
    return out


def _say(text: str) -> None:
    print(f"claude-bottle-init: {text}", file=sys.stderr, flush=True)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


class Supervisor:
    """Signals are blocked and taken synchronously with ``sigtimedwait``: no handler runs between a
    child's death and our bookkeeping, and children start with an empty mask (``posix_spawn``)."""

    def __init__(self, daemons: Sequence[Daemon]) -> None:
        self.daemons = list(daemons)
        self.running: dict[int, Daemon] = {}
        self.stopping = False
        self.failed: str | None = None

    def start(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
        for daemon in self.daemons:
            try:
                pid = os.posix_spawnp(daemon.argv[0], list(daemon.argv), dict(os.environ),
                                      setsigmask=(), setsigdef=_WATCHED)
            except OSError as exc:
                self.failed = f"{daemon.name} could not start: {exc}"
                _say(self.failed)
                self.stop(signal.SIGTERM)
                return
            self.running[pid] = daemon
            _say(f"started {daemon.name} (pid {pid})")

    def stop(self, sig: int) -> None:
        self.stopping = True
        for pid in self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            daemon = self.running.pop(pid, None)
            if daemon is None:
                continue  # an orphan re-parented to PID 1: reaped, nothing else to do
            if not self.stopping:
                self.failed = f"{daemon.name} {_describe(status)}; stopping the bundle"
                _say(self.failed)
                self.stop(signal.SIGTERM)
            else:
                _say(f"{daemon.name} {_describe(status)}")

    def loop(self) -> int:
        deadline: float | None = None
        while self.running:
            timeout = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            info = signal.sigtimedwait(_WATCHED, timeout)
            if info is not None and info.si_signo != signal.SIGCHLD:
                _say(f"got {signal.Signals(info.si_signo).name}; forwarding")
                self.stop(info.si_signo)
            self.reap()
            if self.stopping and deadline is None:
                deadline = time.monotonic() + GRACE_SECONDS
            if deadline is not None and time.monotonic() >= deadline and self.running:
                _say(f"{', '.join(d.name for d in self.running.values())} still running; killing")
                self.stop(signal.SIGKILL)
                deadline = time.monotonic() + GRACE_SECONDS
        return 1 if self.failed else 0


def _become_subreaper() -> None:
    """Outside a container (tests) we are not PID 1; ask the kernel to re-parent orphans to us
    anyway, so reaping behaves the same in both places."""
    if os.getpid() == 1:
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    path = args[0] if args else os.environ.get("CLAUDE_BOTTLE_BUNDLE_CONFIG", CONFIG_PATH)
    try:
        cfg = load_bundle_config(path)
        daemons = daemon_argv(cfg, path)
    except (OSError, ConfigError) as exc:
        _say(f"bad config {path}: {exc}")
        return 2
    if not daemons:
        _say(f"{path} names no daemons")
        return 2
    _become_subreaper()
    if os.getpid() == 1:  # in the bundle (tests run the init elsewhere and must not touch /run)
        note_restart(cfg)
    sup = Supervisor(daemons)
    sup.start()
    return sup.loop()


if __name__ == "__main__":
    sys.exit(main())
