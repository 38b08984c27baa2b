"""The baseline for the lifecycle benchmark: what a person would type with plain docker to get the same
bottle. Same images, networks, flags and mounts as ``claude-bottle up --detach --no-workspace``, and it
also waits until the proxy accepts connections (a bottle whose proxy is not up is not usable), but
no planning, state, labels lookups, CA provisioning or prompt copy.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from claude_bottle.config import load_settings
from claude_bottle.runner import SubprocessRunner
from claude_bottle_docker.images import image_refs

__all__ = ["RawBottle", "raw_down", "raw_up"]


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


@dataclass(frozen=True)
class RawBottle:
    name: str
    stage: Path


def current_images() -> tuple[str, str]:
    refs = image_refs(load_settings(), runner=SubprocessRunner())
    return refs.agent, refs.sidecars


def raw_up(name: str, *, home: str, images: tuple[str, str] | None = None) -> RawBottle:
    """``images``: the (agent, sidecars) refs ``up`` just used; looked up as ``up`` would if absent
    (the lookup then counts in the raw time, as it does in ``up``'s)."""
    agent_image, sidecars_image = images or current_images()
    stage = Path(tempfile.mkdtemp(prefix="cb-raw-"))
    try:
        (stage / "logs").mkdir()
        (stage / "bundle.yaml").write_text(
            f"version: 1\nslug: {name}\nbottle: default\ndaemons: [egress, dns]\n"
            "egress: {port: 3128, allow: []}\ndns: {port: 53, names: [egress, git-gate, supervise]}\n")
        label = ["--label", f"dev.claude-bottle-bench.home={home}"]
        _docker("network", "create", *label, "--internal",
                "-o", "com.docker.network.bridge.inhibit_ipv4=true", f"raw-net-{name}")
        _docker("network", "create", *label, f"raw-egress-{name}")
        _docker("create", "--name", f"raw-sidecars-{name}", *label, "--network", f"raw-egress-{name}",
                "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE", "--cap-add", "DAC_OVERRIDE",
                "--security-opt", "no-new-privileges",
                "--mount", f"type=bind,source={stage},target=/etc/claude-bottle,readonly",
                "--mount", f"type=bind,source={stage / 'logs'},target=/var/log/claude-bottle", sidecars_image)
        _docker("network", "connect", "--alias", "egress", f"raw-net-{name}", f"raw-sidecars-{name}")
        _docker("start", f"raw-sidecars-{name}")
        info = json.loads(_docker("inspect", f"raw-sidecars-{name}"))[0]["NetworkSettings"]["Networks"]
        egress_ip, internal_ip = info[f"raw-egress-{name}"]["IPAddress"], info[f"raw-net-{name}"]["IPAddress"]
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection((egress_ip, 3128), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        _docker("run", "-d", "--name", f"raw-agent-{name}", *label, "--network", f"raw-net-{name}",
                "--dns", internal_ip, "--user", "claude", "--cap-drop", "ALL",
                "--security-opt", "no-new-privileges",
                "--pids-limit", "2048", "--memory", "8g", "--init",
                "--env", "HTTPS_PROXY=http://egress:3128", agent_image, "sleep", "infinity")
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)  # its docker objects go by label in run.py
        raise
    return RawBottle(name=name, stage=stage)


def raw_down(bottle: RawBottle) -> None:
    _docker("rm", "-f", f"raw-agent-{bottle.name}", f"raw-sidecars-{bottle.name}")
    _docker("network", "rm", f"raw-net-{bottle.name}", f"raw-egress-{bottle.name}")
    shutil.rmtree(bottle.stage, ignore_errors=True)
