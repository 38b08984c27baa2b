"""``claude-bottle check`` and ``up --check``: try every way out of a live bottle from inside it.

The probe is one node program (``check_probe.js``, run as the agent user through
:meth:`Backend.run_in_agent`) configured by :func:`probe_config`. It prints one JSON line per attempt,
``{"cls", "probe", "result", "ok"}``, where ``ok`` means the attempt failed as it must, and a last
``{"done": true}``. :func:`parse_results` groups those lines into one :class:`CheckResult` per class
in :data:`CLASSES`: PASS when the class reported and every attempt in it held, FAIL otherwise (a class
the probe never reported on fails too). Only the config and the probe run touch anything outside.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from importlib import resources
from typing import TYPE_CHECKING

from claude_bottle.errors import BottleError

if TYPE_CHECKING:
    from pathlib import Path

    from claude_bottle.backends.base import Backend, ProbeTargets
    from claude_bottle.config import Settings
    from claude_bottle.runner import Runner

__all__ = [
    "CLASSES",
    "CheckReport",
    "CheckResult",
    "Observation",
    "allowed_host",
    "check_bottle",
    "parse_results",
    "probe_config",
    "run_probe",
]

# Each class and what a PASS means.
CLASSES: dict[str, str] = {
    "direct-tcp": "no TCP connection straight out, to public or private addresses",
    "direct-udp": "no UDP answer from outside resolvers",
    "dns": "only the bundle's names resolve; no resolver answers for outside names",
    "metadata-and-host": "cloud metadata and the host refuse, directly and through the proxy",
    "ip-literals": "the proxy refuses IP-literal targets",
    "sibling-bottles": "no other bottle and no neighbour of the agent answers",
    "docker-socket": "no container-engine socket, no engine API port on the host",
    "capabilities": "no capabilities, no privilege gain, not root",
    "ipv6": "no global IPv6 address, no IPv6 route out",
    "proxy-bypass": "the proxy refuses raw tunnels, other ports and mismatched Host headers",
}

PROBE_TIMEOUT = 120.0  # the probe takes about two of its 4 s attempt timeouts
_SHOWN = 3  # failed attempts named in a class's detail

# What the probe tries. The machine may have no internet at all: an outside address "fails" then
# whatever the bottle does, so each class also aims at something nearby (the host, neighbours).
_CONFIG: dict[str, object] = {
    "timeout_ms": 4000,
    "proxy": {"host": "egress", "port": 3128},
    "bundle_names": ["egress", "git-gate", "supervise"],
    "outside_names": ["example.com", "deb.debian.org"],
    "direct_tcp": ["1.1.1.1:443", "1.1.1.1:80", "8.8.8.8:53", "10.0.0.1:80", "172.16.0.1:80",
                   "192.168.0.1:80", "100.64.0.1:80"],
    "direct_udp": ["8.8.8.8:53", "1.1.1.1:53", "9.9.9.9:53", "10.0.0.1:53"],
    "dns_servers": ["8.8.8.8", "1.1.1.1", "127.0.0.11"],
    "metadata": ["169.254.169.254"],
    "metadata_names": ["metadata.google.internal"],
    "host_ports": [22, 80, 443],
    "ip_literal_urls": ["http://1.1.1.1/", "http://[2606:4700:4700::1111]/"],
    "ip_literal_connects": ["1.1.1.1:443"],
    "ip_literal_odd": ["16843009:443", "0x01010101:443"],  # 1.1.1.1 spelt as one number
    "neighbour_count": 16,
    "sibling_ports": [3128, 53, 8418, 22, 80],
    "sockets": ["/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
                "/run/podman/podman.sock"],
    "ipv6_tcp": ["[2606:4700:4700::1111]:443", "[2001:4860:4860::8888]:53"],
    "ipv6_udp": ["[2001:4860:4860::8888]:53"],
}


@dataclass(frozen=True)
class Observation:
    """One attempt of the probe: ``ok`` when it failed as it must."""

    cls: str
    probe: str
    result: str
    ok: bool


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class CheckReport:
    results: tuple[CheckResult, ...]
    observations: tuple[Observation, ...] = ()
    complete: bool = True  # the probe ran to its end
    slug: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.ok)


def probe_config(targets: ProbeTargets, *, allowed_host: str = "") -> dict[str, object]:
    """The probe's configuration: the fixed attempts, plus what the backend knows (``targets``) and a
    host the bottle allows (``allowed_host``: the tunnel and ``Host`` attempts need one; "" skips
    them)."""
    return {**_CONFIG, "host_addresses": list(targets.host), "siblings": list(targets.siblings),
            "far_side": list(targets.far_side), "allowed_host": allowed_host}


def _observation(line: str) -> Observation | bool | None:
    """An attempt, ``True`` for the end marker, ``None`` for anything else (node's own warnings)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if data.get("done") is True:
        return True
    if not all(isinstance(data.get(k), str) for k in ("cls", "probe", "result")):
        return None
    return Observation(data["cls"], data["probe"], data["result"], data.get("ok") is True)


def _result(name: str, seen: list[Observation], *, complete: bool) -> CheckResult:
    if not seen:
        why = "it stopped before reporting" if not complete else "it reported nothing"
        return CheckResult(name, False, f"no result: the probe did not try this class ({why})")
    bad = [o for o in seen if not o.ok]
    if not bad:
        return CheckResult(name, True, f"{CLASSES[name]} ({len(seen)} probes)")
    shown = "; ".join(f"{o.probe}: {o.result}" for o in bad[:_SHOWN])
    more = f" (and {len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else ""
    return CheckResult(name, False, shown + more)


def parse_results(stdout: str) -> CheckReport:
    """Group the probe's output into one result per class of :data:`CLASSES`, in that order."""
    observations: list[Observation] = []
    complete = False
    for line in stdout.splitlines():
        found = _observation(line.strip())
        if found is True:
            complete = True
        elif isinstance(found, Observation):
            observations.append(found)
    results = tuple(_result(name, [o for o in observations if o.cls == name], complete=complete)
                    for name in CLASSES)
    return CheckReport(results, tuple(observations), complete)


def _probe_script() -> bytes:
    return resources.files("claude_bottle").joinpath("check_probe.js").read_bytes()


def run_probe(backend: Backend, slug: str, *, settings: Settings) -> CheckReport:
    """Run the probe in bottle ``slug``'s agent. Raises :class:`BottleError` when it could not run at
    all (no node, the bottle stopped): that is no verdict on the walls."""
    allowed = allowed_host(settings.state_root / slug / "stage")
    config = probe_config(backend.probe_targets(slug=slug), allowed_host=allowed)
    result = backend.run_in_agent(slug=slug, argv=["node", "-", json.dumps(config)],
                                  input=_probe_script(), timeout=PROBE_TIMEOUT)
    report = parse_results(result.stdout)
    if not report.observations:
        lines = [ln for ln in (result.stderr or result.stdout).splitlines() if ln.strip()]
        why = lines[-1].strip() if lines else f"exit status {result.returncode}"
        raise BottleError(f"the containment probe did not run in bottle {slug}: {why}")
    return replace(report, slug=slug)


def allowed_host(stage_dir: Path) -> str:
    """A host the bottle's proxy allows by exact name on port 443 and inspects (not passthrough),
    from the ``bundle.yaml`` its backend rendered; "" when there is none or no such file."""
    from claude_bottle.sidecars.config import ConfigError, load_bundle_config  # noqa: PLC0415 - yaml

    try:
        rules = load_bundle_config(stage_dir / "bundle.yaml").rules
    except (OSError, ConfigError):
        return ""
    return next((r.host for r in rules if "*" not in r.host and not r.passthrough
                 and 443 in (r.ports or (443,))), "")


def check_bottle(slug: str, *, settings: Settings, runner: Runner) -> CheckReport:
    """``claude-bottle check SLUG``: the probe in that live bottle, on the backend that made it."""
    from claude_bottle import lifecycle  # noqa: PLC0415 - lifecycle imports this module lazily

    backend = lifecycle.backend_of(slug, settings=settings, runner=runner)
    return run_probe(backend, slug, settings=settings)
