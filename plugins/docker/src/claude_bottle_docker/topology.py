"""The docker shape of one bottle, as pure functions: networks, the hardened agent, its environment.

Why the network options:

* ``--internal`` keeps the engine from giving the agent's network a route off the host.
* ``com.docker.network.bridge.inhibit_ipv4`` keeps the engine from putting the gateway address on the
  host's side of the bridge. Without it, an ``--internal`` network on Docker 20.10 still lets the agent
  open connections to *every* host listener (the gateway, docker0, the host's own addresses), because
  the isolation rules only filter forwarded traffic, not traffic to the host itself. Measured here.
* The agent's IPv6 is switched off in its namespace: the bridge still has an IPv6 link-local address.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from claude_bottle.identity import Names
from claude_bottle.resources import Caps
from claude_bottle.runner import Command
from claude_bottle_docker.docker import DOCKER, label_args

__all__ = [
    "AGENT_USER",
    "BUNDLE_ALIASES",
    "CA_PATH_IN_AGENT",
    "PROXY_PORT",
    "agent_cpus",
    "agent_env",
    "agent_run_command",
    "network_create_command",
]

PROXY_PORT = 3128
# The bundle's names on the internal network (and in its DNS responder), whichever sidecars run:
# a name without a service just refuses connections. The sidecars that run: render.active_sidecars.
BUNDLE_ALIASES = ("egress", "git-gate", "supervise")
AGENT_USER = "claude"
WORKSPACE = "/workspace"
# Where provisioning puts the bottle's CA. The env below names these paths at creation; the files
# appear moments later, before any agent command runs.
CA_PATH_IN_AGENT = "/usr/local/share/ca-certificates/claude-bottle.crt"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BUNDLE_CA_PATH = "/run/claude-bottle/ca/ca.pem"

# Generous for a coding agent (node, compilers, test runners), small enough to stop a fork bomb or a
# runaway build from taking the host down with it.
PIDS_LIMIT = 2048
MEMORY_LIMIT = "8g"
# CPU: half a core is always left to the host (and the bottle's own sidecars), so a busy loop or an
# audit flood in the agent cannot starve the user's machine; never below half a core for the agent.
CPU_HEADROOM = 0.5
MIN_CPUS = 0.5


def agent_cpus(host_cpus: int | None = None) -> str:
    """The agent's ``--cpus``: the host's CPUs less :data:`CPU_HEADROOM`, e.g. ``1.5`` on 2 cores."""
    count = host_cpus if host_cpus is not None else (os.cpu_count() or 1)
    return f"{max(MIN_CPUS, count - CPU_HEADROOM):g}"


def network_create_command(name: str, labels: Mapping[str, str], *, internal: bool) -> Command:
    argv = [DOCKER, "network", "create", "--driver", "bridge", *label_args(labels)]
    if internal:
        argv += ["--internal", "--opt", "com.docker.network.bridge.inhibit_ipv4=true"]
    return Command((*argv, name), timeout=60)


def agent_env(*, literal_env: Mapping[str, str]) -> dict[str, str]:
    """The agent's non-secret environment: the user's literals, then what the bottle needs (wins)."""
    proxy = f"http://egress:{PROXY_PORT}"
    no_proxy = ",".join(BUNDLE_ALIASES)
    env = dict(literal_env)
    env.update({
        "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy,
        "NO_PROXY": no_proxy, "no_proxy": no_proxy,
        "NODE_EXTRA_CA_CERTS": CA_PATH_IN_AGENT,
        "SSL_CERT_FILE": SYSTEM_CA_BUNDLE,
        "REQUESTS_CA_BUNDLE": SYSTEM_CA_BUNDLE,
        "CURL_CA_BUNDLE": SYSTEM_CA_BUNDLE,
        "GIT_SSL_CAINFO": SYSTEM_CA_BUNDLE,
    })
    return env


def _cap_args(caps: Caps | None) -> list[str]:
    if caps is None:
        return ["--pids-limit", str(PIDS_LIMIT), "--memory", MEMORY_LIMIT, "--cpus", agent_cpus()]
    # swap = memory: the cap is on memory and swap together, so a bottle cannot page the host to death
    return ["--pids-limit", str(caps.pids), "--memory", str(caps.memory), "--memory-swap", str(caps.memory),
            "--cpus", f"{caps.cpus:g}"]


@dataclass(frozen=True)
class AgentRun:
    """Everything ``docker run`` needs for the agent container."""

    names: Names
    image: str
    labels: Mapping[str, str]
    env: Mapping[str, str]
    secret_env_names: tuple[str, ...]
    dns: str
    # The bottle's caps (claude_bottle.resources); None: the defaults below.
    caps: Caps | None = None


def agent_run_command(run: AgentRun, secret_env: Mapping[str, str]) -> Command:
    """The hardened agent: only on the internal network, non-root, no capabilities, no privilege
    gain, no host mounts or sockets, resolver = the bundle's DNS responder (not the host's)."""
    argv = [
        DOCKER, "run", "--detach", "--name", run.names.agent, "--hostname", run.names.slug,
        *label_args(run.labels),
        "--network", run.names.internal_net,
        "--dns", run.dns,
        "--user", AGENT_USER, "--workdir", WORKSPACE,
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        *_cap_args(run.caps),
        "--sysctl", "net.ipv6.conf.all.disable_ipv6=1",
        "--sysctl", "net.ipv6.conf.default.disable_ipv6=1",
        "--init",
    ]
    for key, value in sorted(run.env.items()):
        argv += ["--env", f"{key}={value}"]
    for key in run.secret_env_names:
        argv += ["--env", key]  # the value travels in the runner's environment, never in argv
    argv += [run.image, "sleep", "infinity"]
    return Command(tuple(argv), secret_env=dict(secret_env), timeout=120)
