"""Host-side pieces of issue 15's fixes: header characters and ports, the credential store that knows
what it expects, the restart marker, and the problem line ``list`` shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claude_bottle.backends.base import ActiveBottle
from claude_bottle.lifecycle import _with_problem
from claude_bottle.manifest.model import EnvKind, EnvValue, SecretDef
from claude_bottle.secrets import plan_credentials
from claude_bottle.sidecars.config import BundleConfig, dump_bundle_config, parse_bundle_config
from claude_bottle.sidecars.egress.credentials import CredentialCheck
from claude_bottle.sidecars.egress.headers import authority_port, forbidden_header_chars
from claude_bottle.sidecars.egress.inject import CredentialsMissing, CredentialStore
from claude_bottle.sidecars.init import BUNDLE_PROBLEM_FILE, note_restart
from claude_bottle.ui import active_json, active_table


@pytest.mark.parametrize(("name", "value", "found"), [
    (b"X-A", b"a\rHost: evil.test", "CR"),
    (b"X-A", b"a\nHost: evil.test", "LF"),
    (b"X-A", b"a\x00b", "NUL"),
    (b"X\rHost", b"evil.test", "CR"),
])
def test_cr_lf_nul_anywhere_in_a_header_is_refused(name: bytes, value: bytes, found: str) -> None:
    why = forbidden_header_chars([(b"Host", b"ok.test"), (name, value)])
    assert why is not None and found in why
    assert "evil.test" not in why.split("header")[1] if b"\r" not in name else True


def test_ordinary_headers_pass() -> None:
    assert forbidden_header_chars([(b"Host", b"a.test"), (b"X", b"tab\tand spaces ok")]) is None


@pytest.mark.parametrize(("authority", "scheme", "port"), [
    ("a.test", "https", 443), ("a.test", "http", 80), ("a.test:8080", "http", 8080),
    ("[::1]:99", "https", 99), ("[::1]", "http", 80), ("a.test:x", "http", None),
    ("a.test:99999", "http", None),
    ("a.test:٣", "http", None),
])
def test_authority_port(authority: str, scheme: str, port: int | None) -> None:
    assert authority_port(authority, scheme) == port


def _write(path: Path, names: tuple[str, ...]) -> None:
    creds = [{"name": n, "placeholder": "p" * 20, "hosts": ["a.test"], "header": "x", "format": "{value}",
              "value": "v" * 20} for n in names]
    path.write_text(json.dumps({"version": 1, "credentials": creds}))


def test_a_store_that_expects_credentials_refuses_while_the_file_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    store = CredentialStore(path, expected=("KEY",))
    with pytest.raises(CredentialsMissing):
        store.refresh()
    _write(path, ("KEY",))
    creds, _ = store.refresh()
    assert [c.name for c in creds] == ["KEY"]
    path.unlink()  # a restart empties the tmpfs: what was loaded before must not be used
    with pytest.raises(CredentialsMissing):
        store.refresh()


def test_a_store_without_expectations_reads_a_missing_file_as_none(tmp_path: Path) -> None:
    assert CredentialStore(tmp_path / "none.json").refresh()[0] == ()


def test_an_undeclared_credential_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    _write(path, ("OTHER",))
    with pytest.raises(ValueError, match="does not declare"):
        CredentialStore(path, expected=("KEY",)).refresh()


def test_the_check_refuses_every_request_while_credentials_are_missing(tmp_path: Path) -> None:
    cfg = BundleConfig(slug="dev-abcde", bottle="dev", credentials=("KEY",),
                       audit_log=str(tmp_path / "a.jsonl"))
    check = CredentialCheck(cfg, store=CredentialStore(tmp_path / "missing.json", expected=("KEY",)))
    refusal = check.check_host("a.test", 443)
    assert refusal is not None and refusal.rule == "credentials-missing"
    assert "claude-bottle down dev-abcde" in refusal.reason


def test_the_bundle_config_carries_names_and_the_body_cap_never_values() -> None:
    cfg = BundleConfig(slug="s-aaaaa", bottle="b", credentials=("KEY",), request_body_max_bytes=1000)
    text = dump_bundle_config(cfg)
    back = parse_bundle_config(text)
    assert back.credentials == ("KEY",) and back.request_body_max_bytes == 1000
    plain = dump_bundle_config(BundleConfig(slug="s-aaaaa", bottle="b"))
    assert "credentials" not in plain and "request_body_max_bytes" not in plain


def test_a_bottle_that_declares_secrets_always_delivers_even_none() -> None:
    """An optional secret left unset still means a delivery (of nothing): the bundle waits for one."""
    source = EnvValue(EnvKind.HOST, "CB_UNSET_FOR_TEST")
    declared = [SecretDef("KEY", source, ("a.test",), optional=True)]
    unset = plan_credentials(declared, {})
    assert unset.credentials == () and unset and json.loads(unset.payload())["credentials"] == []
    assert not plan_credentials([], {})


def test_note_restart_reports_only_a_restart_that_lost_expected_credentials(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = BundleConfig(slug="dev-abcde", bottle="dev", credentials=("KEY",),
                       audit_log=str(logs / "egress.jsonl"))
    marker, creds = tmp_path / "run" / "started", tmp_path / "credentials.json"
    assert note_restart(cfg, marker=marker, credentials=creds) is None  # first start
    assert marker.exists() and not (logs / BUNDLE_PROBLEM_FILE).exists()
    creds.write_text("{}")
    assert note_restart(cfg, marker=marker, credentials=creds) is None  # restarted, but they are there
    creds.unlink()
    problem = note_restart(cfg, marker=marker, credentials=creds)
    assert problem and "claude-bottle down dev-abcde" in problem
    assert (logs / BUNDLE_PROBLEM_FILE).read_text().strip() == problem
    bare = BundleConfig(slug="x-abcde", bottle="x", audit_log=str(logs / "egress.jsonl"))
    assert note_restart(bare, marker=marker, credentials=creds) is None  # nothing was expected


def test_list_shows_the_problem_a_bundle_reported(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    bottle = ActiveBottle(slug="dev-abcde", backend="docker", agent="dev", started_at=0.0)
    assert _with_problem(bottle, tmp_path).problem == ""
    (tmp_path / "logs" / BUNDLE_PROBLEM_FILE).write_text(
        "lost it \x1b[2J: run `claude-bottle down dev-abcde`\n")
    shown = _with_problem(bottle, tmp_path)
    assert "claude-bottle down dev-abcde" in shown.problem
    assert active_json([shown])[0]["problem"] == shown.problem
    assert [c.header for c in active_table([shown]).columns][-1] == "problem"
