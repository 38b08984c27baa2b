"""Docker commands as data, and parsers for what docker prints back.

Nothing here runs a process: functions return :class:`~claude_bottle.runner.Command` values for the
core's runner, or turn docker's output into values. That keeps every docker call recordable in tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from claude_bottle.identity import LABEL_AGENT, LABEL_BACKEND, LABEL_HOME, LABEL_ROLE, LABEL_SLUG
from claude_bottle.runner import Command

__all__ = [
    "KINDS",
    "Resource",
    "is_no_such",
    "label_args",
    "list_command",
    "parse_list",
    "remove_command",
]

DOCKER = "docker"
# Containers first: a network cannot be removed while a container sits on it.
KINDS = ("container", "network", "volume")

# One JSON object per line. `.Label "key"` reads one label, so a label value holding a comma (a home
# path) cannot break parsing the way the comma-joined `.Labels` string would.
_FIELDS = (
    ("slug", LABEL_SLUG),
    ("backend", LABEL_BACKEND),
    ("role", LABEL_ROLE),
    ("agent", LABEL_AGENT),
    ("home", LABEL_HOME),
)
_LABEL_FORMAT = ",".join(f'"{key}":{{{{json (.Label "{label}")}}}}' for key, label in _FIELDS)
_FORMATS = {
    "container": '{"id":{{json .ID}},"name":{{json .Names}},"state":{{json .State}},' + _LABEL_FORMAT + "}",
    "network": '{"id":{{json .ID}},"name":{{json .Name}},"state":"",' + _LABEL_FORMAT + "}",
    "volume": '{"id":{{json .Name}},"name":{{json .Name}},"state":"",' + _LABEL_FORMAT + "}",
}


@dataclass(frozen=True)
class Resource:
    """One labelled docker object as ``docker ps/network ls/volume ls`` reported it."""

    kind: str
    ident: str
    name: str
    slug: str
    backend: str = ""
    role: str = ""
    agent: str = ""
    home: str = ""
    state: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"


def label_args(labels: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for key, value in labels.items():
        out += ["--label", f"{key}={value}"]
    return out


def list_command(kind: str, *, filters: Iterable[str] = ()) -> Command:
    """List ``kind`` objects carrying our slug label (plus any extra ``label=...`` filters).

    Filtering on the slug label *key* in the engine means an object without it is never even seen."""
    argv = {"container": [DOCKER, "ps", "--all", "--no-trunc"],
            "network": [DOCKER, "network", "ls", "--no-trunc"],
            "volume": [DOCKER, "volume", "ls"]}[kind]
    for f in (f"label={LABEL_SLUG}", *filters):
        argv += ["--filter", f]
    return Command((*argv, "--format", _FORMATS[kind]), check=False)


def parse_list(kind: str, stdout: str) -> list[Resource]:
    out = []
    for raw in stdout.splitlines():
        line = raw.strip()
        if not line:
            continue
        row = json.loads(line)
        if not row.get("slug"):
            continue  # belt and braces: never hand back something without our slug label
        out.append(Resource(kind=kind, ident=row["id"], name=row["name"], slug=row["slug"],
                            backend=row.get("backend") or "", role=row.get("role") or "",
                            agent=row.get("agent") or "", home=row.get("home") or "",
                            state=row.get("state") or ""))
    return out


def remove_command(kind: str, *idents: str) -> Command:
    argv = {"container": (DOCKER, "rm", "--force", "--volumes"), "network": (DOCKER, "network", "rm"),
            "volume": (DOCKER, "volume", "rm", "--force")}[kind]
    return Command((*argv, *idents), check=False, timeout=60)


def is_no_such(stderr: str) -> bool:
    """Docker's wording for "already gone", which removal treats as success."""
    text = stderr.lower()
    return "no such" in text or "not found" in text


def inspect_command(name: str) -> Command:
    return Command((DOCKER, "container", "inspect", name), check=False)


def parse_inspect(stdout: str) -> dict[str, object] | None:
    try:
        data = json.loads(stdout)
    except ValueError:
        return None
    return data[0] if isinstance(data, list) and data else None


def network_ips(info: Mapping[str, object]) -> dict[str, str]:
    """Network name -> IPv4 address of an inspected container."""
    settings = info.get("NetworkSettings") or {}
    networks = settings.get("Networks") or {} if isinstance(settings, dict) else {}
    return {name: str(net.get("IPAddress") or "") for name, net in networks.items() if isinstance(net, dict)}


def is_running(info: Mapping[str, object]) -> bool:
    state = info.get("State") or {}
    return bool(isinstance(state, dict) and state.get("Running"))


def logs_command(name: str, *, follow: bool = False, tail: int | None = None) -> Command:
    argv = [DOCKER, "logs"]
    if follow:
        argv.append("--follow")
    if tail is not None:
        argv += ["--tail", str(tail)]
    return Command((*argv, name), check=False)
