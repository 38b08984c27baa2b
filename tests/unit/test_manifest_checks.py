"""The pure value checks, including what they accept (the proxy and git-gate reuse them)."""

from __future__ import annotations

import pytest

from claude_bottle.manifest import checks


@pytest.mark.parametrize(
    "host",
    [
        "api.anthropic.com",
        "*.pypi.org",
        "localhost",
        "a-b.example",
        "xn--bcher-kva.example",
        "*.corp",
        "a1.b2",
    ],
)
def test_good_hosts(host: str) -> None:
    assert checks.host_problem(host) is None


@pytest.mark.parametrize(
    "host",
    [
        "",
        "http://a.example",
        "a.example:80",
        "a.example/x",
        "1.2.3.4",
        "::1",
        "[::1]",
        "127.1",
        "0x7f.1",
        "2130706433",
        "A.example",
        "bücher.example",
        "*",
        "*.*.a",
        "a.*.b",
        "a.example.",
        "a_b.example",
        "-a.example",
        "a-.example",
        "a..example",
        ("x" * 64) + ".example",
    ],
)
def test_bad_hosts(host: str) -> None:
    assert checks.host_problem(host) is not None


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("a.example", "a.example", True),
        ("a.example", "A.Example.", True),
        ("a.example", "b.a.example", False),
        ("*.a.example", "b.a.example", True),
        ("*.a.example", "c.b.a.example", True),
        ("*.a.example", "a.example", False),
        ("*.a.example", "evila.example", False),
        ("*.a.example", "a.example.evil", False),
    ],
)
def test_host_matches(pattern: str, host: str, matches: bool) -> None:
    assert checks.host_matches(pattern, host) is matches


@pytest.mark.parametrize(
    ("pattern", "by", "covered"),
    [
        ("a.example", "a.example", True),
        ("b.a.example", "*.a.example", True),
        ("*.b.a.example", "*.a.example", True),
        ("*.a.example", "*.a.example", True),
        ("*.a.example", "a.example", False),
        ("*.a.example", "*.b.a.example", False),
        ("a.example", "*.a.example", False),
    ],
)
def test_host_covered(pattern: str, by: str, covered: bool) -> None:
    assert checks.host_covered(pattern, by) is covered


@pytest.mark.parametrize(
    "pattern", ["main", "feature/*", "claude/{slug}", "claude/{slug}/*", "a-b_c.d/e", "*"]
)
def test_good_git_patterns(pattern: str) -> None:
    assert checks.git_pattern_problem(pattern) is None


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "/a",
        "a/",
        "-a",
        ".a",
        "a.",
        "a.lock",
        "a..b",
        "a//b",
        "a@{b",
        "a/.b",
        "a~b",
        "a^b",
        "a:b",
        "a?b",
        "a[b",
        "a b",
        "a\\b",
        "a\tb",
        "{user}",
        "refs/heads/main",
    ],
)
def test_bad_git_patterns(pattern: str) -> None:
    assert checks.git_pattern_problem(pattern) is not None


@pytest.mark.parametrize(
    ("url", "ssh"),
    [
        ("https://github.com/me/x.git", False),
        ("http://10.0.0.5:8080/x.git", False),
        ("ssh://git@h.example:2222/x.git", True),
        ("git@github.com:me/x.git", True),
        ("h.example:x.git", True),
    ],
)
def test_good_remote_urls(url: str, ssh: bool) -> None:
    assert checks.remote_url_problem(url) is None
    assert checks.is_ssh_url(url) is ssh


@pytest.mark.parametrize(
    "url",
    [
        "file:///x",
        "/srv/x.git",
        "./x",
        "git://h.example/x",
        "https://u:p@h.example/x",
        "https://u@h/x",
        "ssh:///x",
    ],
)
def test_bad_remote_urls(url: str) -> None:
    assert checks.remote_url_problem(url) is not None


@pytest.mark.parametrize(
    "key",
    [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        "[h.example]:2222 ecdsa-sha2-nistp256 AAAAE2VjZHNh",
    ],
)
def test_good_host_keys(key: str) -> None:
    assert checks.host_key_problem(key) is None


@pytest.mark.parametrize(
    ("name", "ok"),
    [("X", True), ("_x1", True), ("1x", False), ("A-B", False), ("HTTP_PROXY", False), ("no_proxy", False)],
)
def test_env_names(name: str, ok: bool) -> None:
    assert (checks.env_name_problem(name) is None) is ok


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("Authorization", True),
        ("x-api-key", True),
        ("Host", False),
        ("transfer-encoding", False),
        ("a b", False),
    ],
)
def test_header_names(name: str, ok: bool) -> None:
    assert (checks.header_problem(name) is None) is ok
