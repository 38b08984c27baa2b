"""The Smolfile renderer against exact text, and the agent environment it carries."""

from __future__ import annotations

import tomllib

from claude_bottle_smolmachines.render import SmolfileSpec, agent_env, network_flags, render_smolfile

EXPECTED = '''\
image = "/home/u/.claude-bottle/cache/smolmachines/images/0123abcd.tar"
cmd = [
    "sleep",
    "infinity",
]
workdir = "/workspace"
user = "claude"
env = [
    "A=1",
    "HTTPS_PROXY=http://10.213.5.25:21000",
    "HTTP_PROXY=http://10.213.5.25:21000",
]
cpus = 2
memory = 4096
net = true
net_backend = "virtio-net"

[network]
allow_cidrs = [
    "10.213.5.25/32",
]
'''


def test_smolfile_exact_text() -> None:
    spec = SmolfileSpec(
        image="/home/u/.claude-bottle/cache/smolmachines/images/0123abcd.tar",
        env={"HTTP_PROXY": "http://10.213.5.25:21000", "A": "1", "HTTPS_PROXY": "http://10.213.5.25:21000"},
        allow_cidrs=("10.213.5.25/32",),
    )
    assert render_smolfile(spec) == EXPECTED


def test_smolfile_quotes_awkward_values() -> None:
    spec = SmolfileSpec(image='/p/with "quote".tar', env={"X": 'a"b\\c\n'}, allow_cidrs=())
    doc = tomllib.loads(render_smolfile(spec))
    assert doc["image"] == '/p/with "quote".tar'
    assert doc["env"] == ['X=a"b\\c\n']
    assert doc["network"] == {"allow_cidrs": []}


def test_agent_env_bottle_values_win() -> None:
    env = agent_env(literal_env={"HTTP_PROXY": "http://evil:1", "EDITOR": "vi"},
                    proxy_url="http://10.213.0.9:21000", extra={"CLAUDE_BOTTLE_GIT_GATE_URL": "http://10.213.0.9:21001"})
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        assert env[key] == "http://10.213.0.9:21000"
    assert env["EDITOR"] == "vi"
    assert env["CLAUDE_BOTTLE_GIT_GATE_URL"] == "http://10.213.0.9:21001"
    assert env["NODE_EXTRA_CA_CERTS"].endswith("claude-bottle.crt")


def test_network_flags_name_the_bundle_as_resolver() -> None:
    """The guest link and its resolver: smolvm 1.32 has no Smolfile key for either (``dns`` is refused
    at the top level and under ``[network]``), so they are create flags."""
    flags = network_flags(guest_subnet="10.213.4.0/30", bundle_address="10.213.4.9")
    assert flags == ["--guest-subnet", "10.213.4.0/30", "--dns", "10.213.4.9"]
