from __future__ import annotations

from claude_bottle.identity import Names
from claude_bottle_docker.topology import (
    AgentRun,
    agent_cpus,
    agent_env,
    agent_run_command,
    network_create_command,
)


def _run(**kw):
    base = dict(names=Names("claude-abcde"), image="claude-bottle-agent:1",
                labels={"dev.claude-bottle.slug": "claude-abcde"},
                env=agent_env(literal_env={"HTTP_PROXY": "http://evil:1", "EDITOR": "vi"}),
                secret_env_names=("API_TOKEN",), dns="172.30.0.2")
    base.update(kw)
    return AgentRun(**base)


def test_agent_is_hardened_and_only_on_the_internal_network():
    argv = agent_run_command(_run(), {"API_TOKEN": "s3cr3t-value"}).argv
    joined = " ".join(argv)
    for flag in ("--cap-drop ALL", "--security-opt no-new-privileges", "--user claude",
                 "--network claude-bottle-net-claude-abcde", "--dns 172.30.0.2", "--pids-limit",
                 "--memory", "--cpus", "net.ipv6.conf.all.disable_ipv6=1",
                 "--label dev.claude-bottle.slug=claude-abcde"):
        assert flag in joined, flag
    assert argv.count("--network") == 1
    forbidden_flags = ("--privileged", "docker.sock", "--network host", "--volume", "--mount", "-v",
                       "--cap-add")
    for forbidden in forbidden_flags:
        assert forbidden not in argv and forbidden not in joined, forbidden


def test_the_agent_leaves_the_host_half_a_core():
    assert agent_cpus(2) == "1.5"
    assert agent_cpus(16) == "15.5"
    assert agent_cpus(1) == "0.5"
    argv = agent_run_command(_run(), {}).argv
    assert float(argv[argv.index("--cpus") + 1]) == float(agent_cpus())


def test_secret_values_travel_in_the_environment_never_argv():
    cmd = agent_run_command(_run(), {"API_TOKEN": "s3cr3t-value"})
    assert "s3cr3t-value" not in " ".join(cmd.argv)
    assert cmd.argv[cmd.argv.index("API_TOKEN") - 1] == "--env"
    assert cmd.secret_env == {"API_TOKEN": "s3cr3t-value"}


def test_bottle_proxy_env_wins_over_user_literals():
    env = agent_env(literal_env={"HTTP_PROXY": "http://evil:1", "EDITOR": "vi"})
    assert env["HTTP_PROXY"] == env["https_proxy"] == "http://egress:3128"
    assert env["NO_PROXY"] == "egress,git-gate,supervise"
    assert env["EDITOR"] == "vi"
    assert env["NODE_EXTRA_CA_CERTS"].endswith("claude-bottle.crt")


def test_internal_network_has_no_gateway_address_on_the_host():
    argv = network_create_command("n", {"k": "v"}, internal=True).argv
    assert "--internal" in argv and "com.docker.network.bridge.inhibit_ipv4=true" in argv
    assert argv[-1] == "n" and "k=v" in argv
    egress = network_create_command("e", {"k": "v"}, internal=False).argv
    assert "--internal" not in egress
