"""The guest's DNS must end at the bundle's responder: published on the bundle address, checked at launch.

smolvm's guest resolver is a relay on the guest link's gateway whose upstream is the host's own
resolver unless ``machine create --dns`` names another; under a CIDR-only allow list it is not
filtered (smolvm filters DNS only for ``allow_hosts``), so without ``--dns`` every name the guest looks
up would leave the bottle through the host's resolver: a DNS tunnel. With ``--dns <bundle address>``
and the bundle's port 53 published there (UDP and TCP), the relay's only upstream is our responder,
which answers the bundle's names and refuses the rest without forwarding.

That smolvm honours ``--dns`` this way can only be seen from a booted guest, which this host cannot
run; so ``launch`` checks it on every start, fail-closed: the guest resolves ``egress.`` (absolute, no
search list) and must get the bundle's own address on its network, an answer only our responder
gives. Any other outcome stops the launch (docs/decisions/0005-smolmachines-networking.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from claude_bottle.errors import BottleError
from claude_bottle.sidecars.config import DNS_PORT
from claude_bottle_docker.kit import bundle as bundle_mod
from claude_bottle_smolmachines.engine import SmolvmError

if TYPE_CHECKING:
    from claude_bottle_smolmachines.engine import Smolvm

__all__ = ["PROBE_NAME", "check_guest_dns", "dns_publish"]

PROBE_NAME = "egress."  # a bundle name, absolute so no search domain of the host's is tried first


def dns_publish(bundle_address: str) -> tuple[bundle_mod.Publish, ...]:
    """Port 53 of the bundle on the bundle address, UDP and TCP (a resolver retries a truncated
    answer over TCP). The address is the bottle's own, so 53 there collides with no other bottle."""
    return tuple(bundle_mod.Publish(host_ip=bundle_address, host_port=DNS_PORT, container_port=DNS_PORT,
                                    protocol=proto) for proto in ("udp", "tcp"))


def check_guest_dns(smolvm: Smolvm, *, machine: str, user: str, bundle_ip: str) -> None:
    """Resolve :data:`PROBE_NAME` in the guest; raise one line unless the answer is ``bundle_ip``."""
    why = ""
    try:
        out = smolvm.exec(name=machine, user=user, argv=["getent", "ahostsv4", PROBE_NAME], timeout=60).stdout
        answers = {line.split()[0] for line in out.splitlines() if line.split()}
        if bundle_ip in answers:
            return
        why = f"it answered {', '.join(sorted(answers)) or 'nothing'}"
    except SmolvmError as exc:
        why = f"the lookup failed ({exc.message})"
    raise BottleError(
        f"the guest's DNS does not end at the bottle's DNS responder ({PROBE_NAME} should be {bundle_ip}; "
        f"{why}): smolvm may not honour --dns, so the guest is not started",
        hint="report the smolvm version (`claude-bottle backends`); use the docker backend meanwhile")
