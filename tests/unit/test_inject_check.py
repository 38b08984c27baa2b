"""The proxy's credential step on mitmproxy-shaped requests (a stand-in: mitmproxy needs Python 3.12+,
so the real addon is exercised in the bundle by the integration tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from claude_bottle.manifest.model import EnvKind, EnvValue, SecretDef
from claude_bottle.secrets import plan_credentials
from claude_bottle.sidecars.audit import AuditLog
from claude_bottle.sidecars.config import BundleConfig, Rule
from claude_bottle.sidecars.egress.credentials import REDACTED_PATH, WITHHELD_HOST, CredentialCheck
from claude_bottle.sidecars.egress.inject import CredentialStore
from claude_bottle.sidecars.egress.policy import Verdict

API_KEY = "sk-ant-api03-" + "Zq8_rT2-mK4pL9xW" * 6 + "nB7vAA"


@dataclass
class Headers:
    fields: tuple[tuple[bytes, bytes], ...]


@dataclass
class Request:
    method: str
    path: str
    headers: Headers
    raw_content: bytes | None = b""
    port: int = 443


@dataclass
class Response:
    status_code: int
    headers: Headers
    body: bytes | None = b""  # None: a Content-Encoding that cannot be decoded

    @property
    def content(self) -> bytes:
        if self.body is None:
            raise ValueError("unknown encoding")
        return self.body

    @content.setter
    def content(self, value: bytes) -> None:
        self.body = value

    @classmethod
    def make(cls, status: int, text: str, headers: dict[str, str]) -> Response:
        fields = tuple((k.encode(), v.encode()) for k, v in headers.items())
        return cls(status, Headers(fields), text.encode())


@dataclass
class Flow:
    request: Request
    response: Response | None = None
    metadata: dict[str, object] = field(default_factory=dict)


Setup = tuple[CredentialCheck, str, Path]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    secret = SecretDef("ANTHROPIC_API_KEY", EnvValue(EnvKind.HOST, "K"), ("api.anthropic.com",), "x-api-key",
                       "{value}")
    creds = plan_credentials([secret], {"ANTHROPIC_API_KEY": API_KEY})
    store_path = tmp_path / "credentials.json"
    store_path.write_bytes(creds.payload())
    log = tmp_path / "egress.jsonl"
    cfg = BundleConfig(slug="t-abcde", bottle="t", audit_log=str(log))
    check = CredentialCheck(cfg, store=CredentialStore(store_path), audit=AuditLog(str(log)))
    return check, creds.agent_env["ANTHROPIC_API_KEY"], log


def verdict(host: str, exempt: bool = False) -> Verdict:
    return Verdict(True, host, host, "allowlisted", Rule(host=host, dlp_exempt=exempt), "10.0.0.1")


def lines(log: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def test_injects_into_the_slot_and_logs_the_name_only(setup: Setup) -> None:
    check, placeholder, log = setup
    flow = Flow(Request("POST", "/v1/messages", Headers(((b"x-api-key", placeholder.encode()),)), b"{}"))
    assert check(flow, verdict("api.anthropic.com")) is None
    assert flow.request.headers.fields == ((b"x-api-key", API_KEY.encode()),)
    (line,) = lines(log)
    assert line["kind"] == "inject" and line["secret"] == "ANTHROPIC_API_KEY"
    assert line["host"] == "api.anthropic.com"
    assert line["method"] == "POST" and line["path"] == "/v1/messages"
    assert API_KEY not in log.read_text() and placeholder not in log.read_text()


def test_refuses_placeholder_to_other_host_without_touching_it(setup: Setup) -> None:
    check, placeholder, log = setup
    flow = Flow(Request("GET", f"/x?k={placeholder}", Headers(((b"x-api-key", placeholder.encode()),))))
    refusal = check(flow, verdict("pypi.org"))
    assert refusal is not None and refusal.rule == "dlp"
    assert "placeholder of secret ANTHROPIC_API_KEY" in refusal.reason
    assert flow.request.headers.fields == ((b"x-api-key", placeholder.encode()),)
    found = lines(log)
    assert {(x["kind"], x["where"]) for x in found} == {("dlp", "header x-api-key"), ("dlp", "query")}
    assert all(x["path"] == "/x" for x in found)  # the query (which carried it) is never logged
    assert placeholder not in log.read_text()


def test_streamed_body_and_unreadable_credentials_fail_closed(setup: Setup,
                                                              tmp_path: Path) -> None:
    check, _, _ = setup
    flow = Flow(Request("POST", "/", Headers(()), None))
    refusal = check(flow, verdict("api.anthropic.com"))
    assert refusal is not None and "streamed" in refusal.reason
    check.store.path.write_text("{not json")
    refusal = check(Flow(Request("GET", "/", Headers(()))), verdict("api.anthropic.com"))
    assert refusal is not None and refusal.rule == "credentials"


def test_exempt_host_gets_format_findings_but_not_own_secret(setup: Setup) -> None:
    check, _, _ = setup
    aws = Flow(Request("POST", "/", Headers(()), b"AKIAIOSFODNN7EXAMPLE"))
    assert check(aws, verdict("paste.example", exempt=True)) is None
    assert check(aws, verdict("paste.example")) is not None
    own = Flow(Request("POST", "/", Headers(()), API_KEY.encode().hex().encode()))
    assert check(own, verdict("paste.example", exempt=True)) is not None


def test_a_path_carrying_a_secret_is_withheld_from_the_audit_log(setup: Setup) -> None:
    check, _, log = setup
    flow = Flow(Request("GET", f"/up/{API_KEY.encode().hex()}/x?y=1", Headers(())))
    assert check(flow, verdict("pypi.org")) is not None
    assert flow.request.path == REDACTED_PATH
    text = log.read_text()
    assert API_KEY.encode().hex() not in text and REDACTED_PATH in text


def test_a_name_carrying_a_secret_is_refused_before_any_lookup(setup: Setup) -> None:
    check, placeholder, log = setup
    hexed = API_KEY.encode().hex()
    name = ".".join(hexed[i:i + 60] for i in range(0, len(hexed), 60)) + ".files.example.com"
    refusal = check.check_host(name, 443)
    assert refusal is not None and "value of secret ANTHROPIC_API_KEY" in refusal.reason
    assert check.check_host(placeholder.lower().replace("_", "-") + ".example.com") is not None
    assert check.check_host("api.anthropic.com") is None
    text = log.read_text()
    assert hexed[:60] not in text and WITHHELD_HOST in text


def test_websocket_messages_and_trailers_are_judged(setup: Setup) -> None:
    check, placeholder, _ = setup
    assert check.check_message(b"hello", verdict("chat.example")) is None
    refusal = check.check_message(f"key {placeholder}".encode(), verdict("chat.example"))
    assert refusal is not None and "placeholder" in refusal.reason
    assert check.check_message(b"AKIAIOSFODNN7EXAMPLE", verdict("chat.example", exempt=True)) is None
    flow = Flow(Request("POST", "/", Headers(()), b"x"))
    flow.request.trailers = Headers(((b"x-t", b"1"),))  # type: ignore[attr-defined]
    refusal = check(flow, verdict("api.anthropic.com"))
    assert refusal is not None and "trailers" in refusal.reason


def _injected_flow(check: CredentialCheck, placeholder: str) -> Flow:
    flow = Flow(Request("GET", "/echo", Headers(((b"x-api-key", placeholder.encode()),))))
    assert check(flow, verdict("api.anthropic.com")) is None
    return flow


def test_a_reflected_value_is_swapped_back_for_the_placeholder(setup: Setup) -> None:
    check, placeholder, log = setup
    flow = _injected_flow(check, placeholder)
    flow.response = Response(200, Headers(((b"x-echo", API_KEY.encode()),)), f"you sent {API_KEY}".encode())
    check.response(flow)
    assert flow.response.status_code == 200
    assert flow.response.body == f"you sent {placeholder}".encode()
    assert flow.response.headers.fields == ((b"x-echo", placeholder.encode()),)
    assert any(json.loads(x)["kind"] == "redact" for x in log.read_text().splitlines())
    assert API_KEY not in log.read_text()


@pytest.mark.parametrize("body", [None, API_KEY.encode().hex().encode()])
def test_an_encoded_or_unreadable_reflection_is_withheld(setup: Setup, body: bytes | None) -> None:
    check, placeholder, _ = setup
    flow = _injected_flow(check, placeholder)
    flow.response = Response(200, Headers(()), body)
    check.response(flow)
    assert flow.response.status_code == 502 and API_KEY.encode().hex().encode() not in flow.response.content


def test_responses_of_flows_without_injection_are_untouched(setup: Setup) -> None:
    check, _, _ = setup
    flow = Flow(Request("GET", "/", Headers(())), Response(200, Headers(()), API_KEY.encode()))
    check.response(flow)
    assert flow.response is not None and flow.response.body == API_KEY.encode()
