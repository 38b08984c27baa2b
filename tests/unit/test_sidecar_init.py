"""The bundle's init, run for real as a child process (on the host's Python): it starts daemons,
forwards signals, exits non-zero when a daemon dies and reaps orphans (as a subreaper here; as PID 1
in the image, which tests/integration/test_bundle.py covers)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from claude_bottle.sidecars.config import BundleConfig, ConfigError, DaemonEntry, dump_bundle_config
from claude_bottle.sidecars.init import DAEMONS, daemon_argv

SRC = Path(__file__).resolve().parents[2] / "src"


def write_config(tmp_path: Path, daemons: list[DaemonEntry]) -> Path:
    path = tmp_path / "bundle.yaml"
    path.write_text(dump_bundle_config(BundleConfig(slug="t-aaaaa", bottle="t", daemons=tuple(daemons))))
    return path


def start_init(config: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen([sys.executable, "-m", "claude_bottle.sidecars.init", str(config)],
                            env=env, stderr=subprocess.PIPE, text=True)


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, state) of the processes whose parent is ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.append((int(entry.name), fields[0]))
    return out


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_a_dying_daemon_stops_the_bundle_with_status_1(tmp_path):
    cfg = write_config(tmp_path, [DaemonEntry("long", ("sleep", "60")),
                                  DaemonEntry("short", ("sh", "-c", "sleep 0.3; exit 3"))])
    proc = start_init(cfg)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert "short exited with status 3; stopping the bundle" in err
    assert "long killed by SIGTERM" in err


def test_sigterm_is_forwarded_and_exit_is_clean(tmp_path):
    marker = tmp_path / "got-term"
    script = f"trap 'touch {marker}; exit 0' TERM; while :; do sleep 0.05; done"
    cfg = write_config(tmp_path, [DaemonEntry("trapper", ("sh", "-c", script)),
                                  DaemonEntry("sleeper", ("sleep", "60"))])
    proc = start_init(cfg)
    wait_for(lambda: len(children(proc.pid)) == 2)
    time.sleep(0.2)  # let the shell install its trap
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert marker.exists()
    assert "got SIGTERM; forwarding" in err


def test_a_daemon_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path):
    stubborn = "trap '' TERM INT; while :; do sleep 0.05; done"
    cfg = write_config(tmp_path, [DaemonEntry("stubborn", ("sh", "-c", stubborn))])
    proc = start_init(cfg)
    wait_for(lambda: len(children(proc.pid)) == 1)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert "still running; killing" in err
    assert proc.returncode == 0


def test_orphans_are_reaped(tmp_path):
    # The daemon's subshell forks a short sleep and exits at once: the sleep is re-parented to the
    # init and, once it exits, must not linger as a zombie.
    cfg = write_config(tmp_path, [DaemonEntry("forker", ("sh", "-c", "(sleep 0.2 &); exec sleep 60"))])
    proc = start_init(cfg)
    try:
        wait_for(lambda: len(children(proc.pid)) >= 2)
        time.sleep(1.5)
        states = children(proc.pid)
        assert [s for _, s in states if s == "Z"] == []
        assert len(states) == 1  # only the daemon itself is left
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def test_unknown_daemon_or_bad_config_is_status_2(tmp_path):
    cfg = write_config(tmp_path, [DaemonEntry("no-such-daemon")])
    proc = start_init(cfg)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "unknown daemon 'no-such-daemon'" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 99\n")
    proc = start_init(bad)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "version 99" in err


def test_a_daemon_that_cannot_start_fails_the_bundle(tmp_path):
    cfg = write_config(tmp_path, [DaemonEntry("sleeper", ("sleep", "60")),
                                  DaemonEntry("ghost", ("/nonexistent/binary",))])
    proc = start_init(cfg)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert "ghost could not start" in err


@pytest.mark.parametrize("name", ["egress", "dns", "git-gate"])
def test_builtin_daemons_get_the_config_path(tmp_path, name):
    cfg = BundleConfig(slug="t-aaaaa", bottle="t", daemons=(DaemonEntry(name),))
    (daemon,) = daemon_argv(cfg, "/etc/claude-bottle/bundle.yaml")
    assert daemon.argv[-1] == "/etc/claude-bottle/bundle.yaml"
    assert "-m" in daemon.argv


def test_every_builtin_daemon_is_a_module_that_exists():
    """A name in the table whose module is missing would only fail inside a running bundle."""
    for name, argv in DAEMONS.items():
        module = argv[argv.index("-m") + 1]
        assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"


def test_supervise_is_not_a_daemon_of_this_version(tmp_path):
    cfg = BundleConfig(slug="t-aaaaa", bottle="t", daemons=(DaemonEntry("supervise"),))
    with pytest.raises(ConfigError, match="unknown daemon 'supervise'"):
        daemon_argv(cfg, "/etc/claude-bottle/bundle.yaml")
