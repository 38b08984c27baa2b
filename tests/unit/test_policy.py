"""The egress decision, exhaustively, on the host's Python: allowlist, methods/paths, address checks."""

from __future__ import annotations

import ipaddress

import pytest

from claude_bottle.sidecars.config import Rule
from claude_bottle.sidecars.egress import netcheck
from claude_bottle.sidecars.egress.policy import Policy, Verdict, refusal_body

OWN = ("172.30.5.0/24", "fd42:1::/64")

RULES = (
    Rule("api.example.com"),
    Rule("*.example.com", methods=("GET", "HEAD")),
    Rule("pypi.org", paths=("/simple/", "/pypi")),
    Rule("intranet.corp", private=True),
    Rule("files.corp", passthrough=True),
)


@pytest.fixture
def policy() -> Policy:
    return Policy(RULES, own_networks=OWN)


# -- allowlist -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "rule"),
    [("api.example.com", "api.example.com"), ("API.Example.com.", "api.example.com"),
     ("www.example.com", "*.example.com"), ("a.b.example.com", "*.example.com"), ("pypi.org", "pypi.org")],
)
def test_allowed_hosts(policy, host, rule):
    verdict = policy.check(host)
    assert verdict.allowed and verdict.rule == rule and verdict.verdict == "allow"


@pytest.mark.parametrize("host", ["example.com", "evil.com", "example.com.evil.com", "pypi.org.evil.com",
                                  "notpypi.org", "www.pypi.org"])
def test_everything_else_is_denied_by_default(policy, host):
    verdict = policy.check(host, "GET", "/")
    assert not verdict.allowed
    assert verdict.rule == "default-deny"
    assert verdict.verdict == "deny"


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "[::1]", "0x7f.1", "::ffff:127.0.0.1"])
def test_ip_literals_are_refused_before_the_allowlist(host):
    wide_open = Policy((Rule("*.0.1"), Rule("localhost")), own_networks=())
    verdict = wide_open.check(host, "GET", "/")
    assert (verdict.allowed, verdict.rule) == (False, "ip-literal")


def test_connect_and_plain_http_get_the_same_host_decision(policy):
    for host in ("www.example.com", "evil.com", "10.0.0.1"):
        connect = policy.check(host)
        plain = policy.check(host, "GET", "/")
        assert (connect.allowed, connect.rule) == (plain.allowed, plain.rule)


def test_exact_entry_wins_over_wildcard(policy):
    # api.example.com is listed exactly (any method) and matched by *.example.com (GET/HEAD only).
    verdict = policy.check("api.example.com", "POST", "/v1/messages")
    assert verdict.allowed and verdict.rule == "api.example.com"


# -- methods and paths -----------------------------------------------------------------------------
def test_method_rules(policy):
    assert policy.check("www.example.com", "get", "/").allowed
    refused = policy.check("www.example.com", "POST", "/")
    assert (refused.allowed, refused.rule) == (False, "method")
    assert "GET, HEAD" in refused.reason
    assert refused.entry is not None and refused.entry.host == "*.example.com"


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/simple/", True), ("/simple/requests/", True), ("/simple/x?y=1", True),
        ("/pypi", True), ("/pypi/requests/json", True),
        ("/pypix", False), ("/simplex", False), ("/", False), ("/admin", False),
        ("/simple/../admin", False), ("/simple/%2e%2e/admin", False), ("/simple/..%2fadmin", False),
        ("/simple/%2E%2E/admin", False), ("/simple\\..\\admin", False), ("/simple/./x", False),
        ("/pypi/%2F..", False),
    ],
)
def test_path_prefixes(policy, path, allowed):
    verdict = policy.check("pypi.org", "GET", path)
    assert verdict.allowed is allowed
    if not allowed:
        assert verdict.rule == "path"


# -- addresses -------------------------------------------------------------------------------------
def pin(policy: Policy, host: str, *addresses: str) -> Verdict:
    return policy.pin(policy.check(host), list(addresses))


def test_public_address_is_pinned(policy):
    verdict = pin(policy, "api.example.com", "93.184.216.34", "2606:2800:220:1::1")
    assert verdict.allowed and verdict.address == "93.184.216.34"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # CGNAT
        ("fc00::1", "private"), ("fd12:3456::1", "private"),
        ("198.18.0.1", "private"), ("192.0.2.1", "private"),
        ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"), ("::1", "loopback"),
        ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
        ("169.254.169.254", "metadata"), ("fd00:ec2::254", "metadata"), ("100.100.100.200", "metadata"),
        ("0.0.0.0", "unspecified"), ("0.1.2.3", "unspecified"), ("::", "unspecified"),
        ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
        ("172.30.5.9", "own-network"), ("fd42:1::9", "own-network"),
        ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::a9fe:a9fe", "metadata"), ("2002:7f00:1::1", "loopback"), ("::127.0.0.2", "loopback"),
    ],
)
def test_refused_addresses(policy, address, kind):
    verdict = pin(policy, "api.example.com", address)
    assert not verdict.allowed and verdict.rule == "private-address"
    assert kind in verdict.reason
    assert verdict.address is None


def test_one_bad_address_refuses_the_name(policy):
    verdict = pin(policy, "api.example.com", "93.184.216.34", "127.0.0.1")
    assert not verdict.allowed and "127.0.0.1" in verdict.reason


@pytest.mark.parametrize("address", ["10.1.2.3", "172.16.0.1", "100.64.0.1", "fd12::1", "192.168.0.10"])
def test_private_rule_allows_private_addresses(policy, address):
    verdict = pin(policy, "intranet.corp", address)
    assert verdict.allowed and verdict.address == address


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "169.254.169.254", "fd00:ec2::254",
                                     "100.100.100.200", "169.254.10.10", "fe80::1", "172.30.5.20",
                                     "fd42:1::20", "0.0.0.0", "::ffff:127.0.0.1", "224.0.0.1"])
def test_private_rule_still_refuses_loopback_link_local_metadata_and_own_networks(policy, address):
    verdict = pin(policy, "intranet.corp", address)
    assert not verdict.allowed and verdict.rule == "private-address"


def test_unresolvable_name(policy):
    verdict = pin(policy, "api.example.com")
    assert (verdict.allowed, verdict.rule) == (False, "unresolvable")


def test_private_rule_allows_mapped_private_addresses(policy):
    assert pin(policy, "intranet.corp", "::ffff:10.0.0.1").allowed
    assert not pin(policy, "api.example.com", "::ffff:10.0.0.1").allowed


def test_pin_keeps_a_refusal(policy):
    verdict = policy.pin(policy.check("evil.com"), ["93.184.216.34"])
    assert verdict.rule == "default-deny" and verdict.address is None


def test_own_networks_can_be_added_at_start():
    policy = Policy((Rule("intranet.corp", private=True),))
    assert pin(policy, "intranet.corp", "10.20.0.5").allowed
    policy.add_own_networks(["10.20.0.0/16"])
    assert "own-network" in pin(policy, "intranet.corp", "10.20.0.5").reason


def test_embedded_v4():
    assert netcheck.embedded_v4(ipaddress.ip_address("::ffff:1.2.3.4")) == ipaddress.ip_address("1.2.3.4")
    assert netcheck.embedded_v4(ipaddress.ip_address("2002:0102:0304::1")) == ipaddress.ip_address("1.2.3.4")
    assert netcheck.embedded_v4(ipaddress.ip_address("64:ff9b::102:304")) == ipaddress.ip_address("1.2.3.4")
    assert netcheck.embedded_v4(ipaddress.ip_address("2606:2800:220:1::1")) is None
    assert netcheck.embedded_v4(ipaddress.ip_address("1.2.3.4")) is None


# -- the 403 ---------------------------------------------------------------------------------------
def test_refusal_body_names_rule_and_fix(policy):
    body = refusal_body(policy.check("evil.com", "GET", "/"), bottle="dev", method="GET", port=443)
    assert body.splitlines()[0] == "claude-bottle egress proxy refused GET evil.com:443"
    assert "rule: default-deny" in body
    assert 'add "evil.com" to egress.allow in ~/.claude-bottle/bottles/dev.md' in body  # no file known


def test_refusal_body_names_the_bottle_file(policy):
    body = refusal_body(policy.check("evil.com", "GET", "/"), bottle="dev", method="GET", port=443,
                        bottle_file="/srv/proj/.claude-bottle/bottles/dev.md")
    assert 'add "evil.com" to egress.allow in /srv/proj/.claude-bottle/bottles/dev.md' in body
    assert "~/" not in body


def test_refusal_body_for_private_address_suggests_private_true(policy):
    body = refusal_body(pin(policy, "api.example.com", "10.0.0.1"), bottle="dev", method="CONNECT")
    assert "rule: private-address" in body and "private: true" in body
    body = refusal_body(pin(policy, "intranet.corp", "127.0.0.1"), bottle="dev", method="CONNECT")
    assert "private: true" not in body


def test_refusal_body_for_method_and_ip(policy):
    assert "widen the methods of '*.example.com'" in refusal_body(
        policy.check("www.example.com", "DELETE", "/"), bottle="dev", method="DELETE")
    assert "IP addresses are never allowed" in refusal_body(
        policy.check("[::1]", "GET", "/"), bottle="dev", method="GET", port=80)
    assert "refused GET [::1]:80" in refusal_body(
        policy.check("[::1]", "GET", "/"), bottle="dev", method="GET", port=80)


def test_refusal_body_says_when_an_edit_takes_effect(policy):
    """Issue 9: the 403 must not suggest that editing the bottle file unblocks this bottle."""
    body = refusal_body(policy.check("evil.com", "GET", "/"), bottle="dev", method="GET", port=443)
    assert body.rstrip().endswith("applies to bottles started after it, not to this one")
    dlp = refusal_body(Verdict(False, "a.test", "dlp", "a secret"), bottle="dev", method="POST")
    assert "started after" not in dlp  # nothing to edit for that one
