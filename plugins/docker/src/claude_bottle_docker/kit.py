"""The docker plugin's public kit: what another backend may use to run the shared sidecar bundle (and
the agent image) in Docker. Everything here is a stable, documented name; the plugin's other modules
are private to it, and ``tests/unit/test_plugin_boundaries.py`` fails when another distribution
imports them.

The smolmachines backend runs its bundle with this kit (its agent is a microVM, its sidecars are the
same container as the docker backend's). A third backend on another engine (a remote Docker host,
Kubernetes) would take the same pieces: the bundle container, its stage (rendered config), the agent
provisioning archive, and the labelled-inventory cleanup.
"""

from __future__ import annotations

from claude_bottle_docker import bundle, images, provision
from claude_bottle_docker.bundle import show_logs
from claude_bottle_docker.cleanup import inventory, remove_items
from claude_bottle_docker.docker import DOCKER, label_args
from claude_bottle_docker.preflight import classify, inspect_container, require_engine
from claude_bottle_docker.prune import format_bytes
from claude_bottle_docker.render import active_sidecars, literal_env, render_stage
from claude_bottle_docker.topology import CA_PATH_IN_AGENT, SYSTEM_CA_BUNDLE, agent_env

__all__ = [
    "CA_PATH_IN_AGENT",
    "DOCKER",
    "SYSTEM_CA_BUNDLE",
    "active_sidecars",
    "agent_env",
    "bundle",
    "classify",
    "format_bytes",
    "images",
    "inspect_container",
    "inventory",
    "label_args",
    "literal_env",
    "provision",
    "remove_items",
    "render_stage",
    "require_engine",
    "show_logs",
]
