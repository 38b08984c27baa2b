"""Host canonicalisation and IP-literal detection: every spelling of an address is refused."""

from __future__ import annotations

import pytest

from claude_bottle.sidecars.egress.hosts import (
    HostError,
    is_ip_literal,
    matches,
    normalize_host,
    normalize_pattern,
)

IP_SPELLINGS = [
    "127.0.0.1", "127.0.0.1.", "10.0.0.1", "169.254.169.254", "8.8.8.8",
    "2130706433",          # one decimal number
    "0x7f000001",          # one hex number
    "0X7F000001",          # upper-case hex
    "0x7f.1", "0x7f.0.0.1", "127.1", "127.0.1",
    "0177.0.0.1", "017700000001",  # octal
    "00000127.0.0.1",
    "1.2.3.4.", "1.2.3.4..",
    "::1", "[::1]", "[::ffff:127.0.0.1]", "::ffff:127.0.0.1", "::ffff:7f00:1", "fd00:ec2::254",
    "[fe80::1%25eth0]", "fe80::1%eth0", "[::]",
    "１２７.０.０.１",       # full-width digits (IDNA maps them to ASCII)
    "127。0。0。1",          # ideographic full stops
    "example.123",          # numeric last label: an address to WHATWG URL parsers
    "a.b.0x10",
]


@pytest.mark.parametrize("raw", IP_SPELLINGS)
def test_ip_literals_are_refused_as_ip_literals(raw):
    with pytest.raises(HostError) as err:
        normalize_host(raw)
    assert err.value.rule in ("ip-literal", "bad-host")
    if raw not in ("1.2.3.4..",):
        assert err.value.rule == "ip-literal", raw


@pytest.mark.parametrize("raw", ["example.com", "a-b.example.co.uk", "xn--bcher-kva.example", "1password.com",
                                 "123.example.com", "0x.example", "_dmarc.example.com", "a1"])
def test_names_are_not_ip_literals(raw):
    assert not is_ip_literal(raw)
    assert normalize_host(raw) == raw


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("  example.com ", "example.com"),
        ("Bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example", "xn--bcher-kva.example"),
        ("ｅｘａｍｐｌｅ.com", "example.com"),   # full-width letters fold to ASCII
        ("example。com", "example.com"),
    ],
)
def test_canonical_form(raw, canonical):
    assert normalize_host(raw) == canonical


@pytest.mark.parametrize("raw", ["", " ", "exa mple.com", "example..com", ".example.com", "example.com..",
                                 "-example.com", "example-.com", "ex%61mple.com", "user@example.com",
                                 "example.com/path", "a" * 64 + ".com", ("a" * 60 + ".") * 5 + "com",
                                 "exa\x00mple.com", "example.com\r\nX: y", "*.example.com"])
def test_malformed_hosts_are_refused(raw):
    with pytest.raises(HostError) as err:
        normalize_host(raw)
    assert err.value.rule == "bad-host"


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("example.com", "example.com", True),
        ("example.com", "www.example.com", False),
        ("*.example.com", "www.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),          # the apex is not a subdomain of itself
        ("*.example.com", "badexample.com", False),
        ("*.example.com", "example.com.evil.net", False),
        ("*.example.com", "wwwexample.com", False),
        ("example.com", "example.com.evil.net", False),
        ("example.com", "evil-example.com", False),
    ],
)
def test_matching(pattern, host, expected):
    assert matches(pattern, host) is expected


@pytest.mark.parametrize(
    ("pattern", "canonical"),
    [("*.Example.COM.", "*.example.com"), ("API.anthropic.com", "api.anthropic.com"),
     ("*.bücher.example", "*.xn--bcher-kva.example")],
)
def test_patterns_are_canonicalised(pattern, canonical):
    assert normalize_pattern(pattern) == canonical


@pytest.mark.parametrize("pattern", ["*", "*.", "**.example.com", "api.*.com", "*example.com", "10.0.0.1",
                                     "[::1]", "*.10.0.0.1", "example.com:443"])
def test_bad_patterns_are_refused(pattern):
    with pytest.raises(ValueError, match=r"egress\.allow entry"):
        normalize_pattern(pattern)
