"""Injection decisions: only the slot on the secret's own hosts gets the real value, after the scan."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from claude_bottle.manifest.model import EnvKind, EnvValue, SecretDef
from claude_bottle.secrets import plan_credentials
from claude_bottle.sidecars.audit import AuditLog, audit_record
from claude_bottle.sidecars.egress.dlp import RequestParts, Scanner
from claude_bottle.sidecars.egress.inject import (
    WITHHELD,
    Credential,
    CredentialStore,
    Scrubber,
    apply,
    decide,
    needles,
    parse_credentials,
)

API_KEY = "sk-ant-api03-" + "Zq8_rT2-mK4pL9xW" * 6 + "nB7vAA"
OAUTH = "sk-ant-oat01-" + "Pp0-aa9_Qw3eRt6Y" * 6 + "kL2mAA"
ANTHROPIC = "api.anthropic.com"


@pytest.fixture(scope="module")
def creds() -> tuple[Credential, ...]:
    """Built the way the host builds them and parsed the way the proxy parses them."""
    host = EnvValue(EnvKind.HOST, "FROM_HOST")
    defs = [
        SecretDef("ANTHROPIC_API_KEY", host, (ANTHROPIC,), "x-api-key", "{value}"),
        SecretDef("CLAUDE_CODE_OAUTH_TOKEN", host, (ANTHROPIC,), "Authorization", "Bearer {value}"),
        SecretDef("GH_TOKEN", host, ("*.github.com",), "Authorization", "token {value}"),
    ]
    values = {"ANTHROPIC_API_KEY": API_KEY, "CLAUDE_CODE_OAUTH_TOKEN": OAUTH,
              "GH_TOKEN": "ghp_" + "a1B2c3" * 6}
    return parse_credentials(plan_credentials(defs, values).payload())


def by_name(creds: tuple[Credential, ...], name: str) -> Credential:
    return next(c for c in creds if c.name == name)


def run(creds: tuple[Credential, ...], host: str, headers: tuple[tuple[str, str], ...],
        path: str = "/v1/messages", body: bytes = b"{}", exempt: bool = False):
    r = RequestParts("POST", host, path, headers, body)
    d = decide(r, creds, Scanner(needles(creds)), dlp_exempt=exempt)
    return d, apply(headers, d)


def test_api_key_placeholder_is_swapped_in_its_header(creds: tuple[Credential, ...]) -> None:
    ph = by_name(creds, "ANTHROPIC_API_KEY").placeholder
    d, out = run(creds, ANTHROPIC, (("content-type", "application/json"), ("X-Api-Key", ph)))
    assert not d.refused
    assert out == (("content-type", "application/json"), ("X-Api-Key", API_KEY))
    assert d.events() == [{"kind": "inject", "verdict": "inject", "rule": "secret:ANTHROPIC_API_KEY",
                           "reason": "ANTHROPIC_API_KEY put in header x-api-key",
                           "secret": "ANTHROPIC_API_KEY", "header": "x-api-key"}]
    assert API_KEY not in json.dumps(d.events()) and API_KEY not in repr(d)


def test_oauth_token_bearer_is_swapped(creds: tuple[Credential, ...]) -> None:
    ph = by_name(creds, "CLAUDE_CODE_OAUTH_TOKEN").placeholder
    d, out = run(creds, ANTHROPIC, (("authorization", f"Bearer {ph}"),))
    assert out == (("authorization", f"Bearer {OAUTH}"),)
    assert [e["secret"] for e in d.events()] == ["CLAUDE_CODE_OAUTH_TOKEN"]


def test_wildcard_host_and_trailing_dot(creds: tuple[Credential, ...]) -> None:
    gh = by_name(creds, "GH_TOKEN")
    _, out = run(creds, "API.GitHub.com.", (("Authorization", f"token {gh.placeholder}"),))
    assert out[0][1] == f"token {gh.value}"
    assert gh.serves("api.github.com") and gh.serves("a.b.github.com") and not gh.serves("github.com")
    assert not gh.serves("github.com.evil.net") and not gh.serves("127.0.0.1")


@pytest.mark.parametrize("where", ["header", "other-header", "query", "path", "body", "base64-body"])
def test_placeholder_to_another_host_is_refused(creds: tuple[Credential, ...], where: str) -> None:
    ph = by_name(creds, "ANTHROPIC_API_KEY").placeholder
    headers, path, body = [("accept", "*/*")], "/collect", b""
    if where == "header":
        headers.append(("x-api-key", ph))
    elif where == "other-header":
        headers.append(("x-note", f"key={ph}"))
    elif where == "query":
        path = f"/collect?k={ph}"
    elif where == "path":
        path = f"/collect/{ph}"
    elif where == "body":
        body = json.dumps({"k": ph}).encode()
    else:
        body = base64.b64encode(ph.encode())
    d, out = run(creds, "pypi.org", tuple(headers), path=path, body=body)
    assert d.refused and not d.injections
    assert {(f.kind, f.secret) for f in d.findings} == {("placeholder", "ANTHROPIC_API_KEY")}
    assert "placeholder of secret ANTHROPIC_API_KEY" in d.reason("pypi.org")
    assert out == tuple(headers)  # nothing injected into a refused request


def test_placeholder_elsewhere_on_its_own_host_passes_uninjected(creds: tuple[Credential, ...]) -> None:
    """Claude Code may quote its environment in a conversation: that leaks nothing to Anthropic."""
    ph = by_name(creds, "ANTHROPIC_API_KEY").placeholder
    d, out = run(creds, ANTHROPIC, (("x-api-key", ph),), body=json.dumps({"content": f"env: {ph}"}).encode())
    assert not d.refused
    assert out == (("x-api-key", API_KEY),)


def test_placeholder_in_wrong_format_is_not_injected(creds: tuple[Credential, ...]) -> None:
    ph = by_name(creds, "CLAUDE_CODE_OAUTH_TOKEN").placeholder
    for value in (f"Basic {ph}", f"Bearer {ph}x", f"{ph}"):
        d, out = run(creds, ANTHROPIC, (("authorization", value),))
        assert not d.injections and out == (("authorization", value),)


def test_right_header_wrong_host_is_refused_not_injected(creds: tuple[Credential, ...]) -> None:
    ph = by_name(creds, "CLAUDE_CODE_OAUTH_TOKEN").placeholder
    d, _ = run(creds, "api.anthropic.com.evil.net", (("authorization", f"Bearer {ph}"),))
    assert d.refused and not d.injections


@pytest.mark.parametrize("encode", [
    lambda v: v, lambda v: base64.b64encode(v.encode()).decode(), lambda v: v.encode().hex(),
    lambda v: "".join(f"%{b:02x}" for b in v.encode()),
])
def test_real_value_refused_everywhere_even_on_its_own_host(creds: tuple[Credential, ...], encode) -> None:
    """The agent never holds a real value; if one got in (a .env in the workspace), it must not leave."""
    for host in (ANTHROPIC, "pypi.org"):
        d, _ = run(creds, host, (("x-api-key", by_name(creds, "ANTHROPIC_API_KEY").placeholder),),
                   body=json.dumps({"x": encode(API_KEY)}).encode(), exempt=True)
        assert d.refused and ("secret", "ANTHROPIC_API_KEY") in {(f.kind, f.secret) for f in d.findings}
        assert "value of secret ANTHROPIC_API_KEY" in d.reason(host)


def test_scanning_runs_before_injection(creds: tuple[Credential, ...]) -> None:
    """A request with a finding gets no real value, and a clean one is not refused for the value the
    proxy itself inserts."""
    ph = by_name(creds, "ANTHROPIC_API_KEY").placeholder
    d, out = run(creds, ANTHROPIC, (("x-api-key", ph),), body=b"AKIAIOSFODNN7EXAMPLE")
    assert d.refused and out == (("x-api-key", ph),)
    assert d.events() == [{"kind": "dlp", "verdict": "deny", "rule": "dlp:aws-access-key",
                           "finding": "aws-access-key", "where": "body",
                           "reason": "body carries a secret-shaped string (aws-access-key)"}]
    assert "dlp_exempt: true" in d.reason(ANTHROPIC)
    d, out = run(creds, ANTHROPIC, (("x-api-key", ph),), body=b"AKIAIOSFODNN7EXAMPLE", exempt=True)
    assert not d.refused and out == (("x-api-key", API_KEY),)


def test_split_placeholder_in_two_headers_to_other_host(creds: tuple[Credential, ...]) -> None:
    ph = by_name(creds, "ANTHROPIC_API_KEY").placeholder
    d, _ = run(creds, "pypi.org", (("x-a", ph[:50]), ("x-b", ph[50:])))
    assert d.refused


def test_store_reloads_when_the_file_changes(tmp_path: Path, creds: tuple[Credential, ...]) -> None:
    path = tmp_path / "credentials.json"
    store = CredentialStore(path)
    assert store.refresh()[0] == ()
    payload = {"version": 1, "credentials": [c.to_json() for c in creds]}
    path.write_text(json.dumps(payload))
    loaded, scanner = store.refresh()
    assert [c.name for c in loaded] == [c.name for c in creds]
    assert scanner.needles
    payload["credentials"] = payload["credentials"][:1]
    path.write_text(json.dumps(payload) + "\n")
    assert len(store.refresh()[0]) == 1


def test_scrubber_withholds_any_field_carrying_a_value(tmp_path: Path, creds: tuple[Credential, ...]) -> None:
    store_path = tmp_path / "credentials.json"
    store_path.write_text(json.dumps({"version": 1, "credentials": [c.to_json() for c in creds]}))
    log = tmp_path / "egress.jsonl"
    audit = AuditLog(str(log), scrub=Scrubber(CredentialStore(store_path)))
    hexed = API_KEY.encode().hex()
    ph = by_name(creds, "ANTHROPIC_API_KEY").placeholder
    audit.write(audit_record(source="dns", kind="dns", verdict="deny", rule="dns", host=f"{hexed[:60]}.x.y",
                             reason=f"the Host header '{hexed[60:]}' names another host", path=f"/p/{ph}"))
    audit.write(audit_record(source="egress", kind="request", verdict="allow", rule="api.anthropic.com",
                             reason="allowlisted", host="api.anthropic.com", path="/v1/messages"))
    first, second = (json.loads(x) for x in log.read_text().splitlines())
    assert first["host"] == first["reason"] == first["path"] == WITHHELD
    assert first["source"] == "dns" and second["host"] == "api.anthropic.com"
    assert hexed[:40] not in log.read_text() and ph not in log.read_text()


def test_no_injection_over_plain_http(creds: tuple[Credential, ...]) -> None:
    ph = by_name(creds, "ANTHROPIC_API_KEY").placeholder
    r = RequestParts("POST", ANTHROPIC, "/v1/messages", (("x-api-key", ph),), b"{}", scheme="http")
    d = decide(r, creds, Scanner(needles(creds)))
    assert d.refused and not d.injections
    assert "over plain HTTP" in d.reason(ANTHROPIC) and "https://api.anthropic.com" in d.reason(ANTHROPIC)


@pytest.mark.parametrize("exempt", [False, True])
@pytest.mark.parametrize("headers", [
    (("x-api-key", "attacker-key-of-no-known-shape-0123456789"),),
    (("x-api-key", "sk-ant-api03-" + "Z" * 95),),
    (("authorization", "Bearer attacker-token-0123456789"),),
])
def test_a_credential_the_agent_brought_is_refused_on_a_secrets_host(creds, headers, exempt) -> None:
    """Attack: send the conversation to api.anthropic.com under the attacker's own key (Files API,
    batches) and read it back from the attacker's account. Exempting the host from format scanning
    must not open that path."""
    d, out = run(creds, ANTHROPIC, headers, exempt=exempt)
    assert d.refused and not d.injections and out == headers
    assert any(f.kind == "foreign-credential" for f in d.findings)
    assert "attacker" not in json.dumps(d.events())


def test_a_second_credential_header_next_to_the_placeholder_is_refused(creds) -> None:
    ph = by_name(creds, "ANTHROPIC_API_KEY").placeholder
    d, _ = run(creds, ANTHROPIC, (("x-api-key", ph), ("X-API-KEY", "attacker-key-0123456789abcdef")))
    assert d.refused and not d.injections


def test_credential_headers_of_other_hosts_are_not_judged(creds) -> None:
    d, _ = run(creds, "pypi.org", (("authorization", "Basic dXNlcjpwYXNz"),), body=b"", path="/simple/")
    assert not d.refused


def test_foreign_credential_refusal_says_what_to_send(creds) -> None:
    d, _ = run(creds, ANTHROPIC, (("x-api-key", "attacker-key-0123456789abcdef"),))
    assert "send the placeholder" in d.reason(ANTHROPIC) and "dlp_exempt" not in d.reason(ANTHROPIC)
