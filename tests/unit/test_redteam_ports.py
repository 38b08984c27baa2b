"""The port rule the red team added: an allow entry opens 80 and 443 unless it lists ``ports``."""

from __future__ import annotations

import pytest

from claude_bottle.errors import BottleError
from claude_bottle.manifest.parse import parse_bottle
from claude_bottle.sidecars.config import Rule
from claude_bottle.sidecars.egress.policy import Policy, refusal_body


def test_default_ports_are_the_web_only() -> None:
    policy = Policy([Rule("api.example.com"), Rule("*.example.org")])
    for host in ("api.example.com", "a.example.org"):
        assert policy.check(host, port=443).allowed and policy.check(host, "GET", "/", port=80).allowed
        for port in (22, 25, 3128, 8080, 8443):
            verdict = policy.check(host, "GET", "/", port=port)
            assert not verdict.allowed and verdict.rule == "port", (host, port)
    assert policy.check("other.example", port=22).rule == "default-deny"


def test_listed_ports_replace_the_default() -> None:
    policy = Policy([Rule("svc.internal", ports=(8080,), private=True)])
    assert policy.lookup("svc.internal", port=8080).allowed
    refused = policy.lookup("svc.internal", port=443)
    assert refused.rule == "port"
    body = refusal_body(refused, bottle="dev", method="CONNECT", port=443)
    assert "rule: port" in body and "add 443 to the ports of 'svc.internal'" in body


def test_without_a_port_the_host_alone_is_judged() -> None:
    """SNI and WebSocket checks judge the name only; the port was judged at CONNECT."""
    assert Policy([Rule("api.example.com")]).lookup("api.example.com").allowed


def test_manifest_ports() -> None:
    text = "---\negress:\n  allow:\n    - {host: svc.internal, private: true, ports: [8080, 9000]}\n---\n"
    assert parse_bottle(name="b", path="b.md", text=text).egress.allow[0].ports == (8080, 9000)


@pytest.mark.parametrize("bad", ["0", "65536", "http", "-1", "8080.5"])
def test_bad_ports_are_one_line_with_the_line(bad: str) -> None:
    text = f"---\negress:\n  allow:\n    - host: svc.internal\n      ports: [{bad}]\n---\n"
    with pytest.raises(BottleError) as info:
        parse_bottle(name="b", path="b.md", text=text)
    assert str(info.value).startswith("b.md:5:") and "port" in str(info.value), str(info.value)
