"""Audit lines: one JSON object each, fixed fields, no query strings."""

from __future__ import annotations

import json

from claude_bottle.sidecars.audit import AuditLog, audit_record


def test_lines_are_appended_one_object_each(tmp_path):
    path = tmp_path / "logs" / "egress.jsonl"
    log = AuditLog(str(path))
    log.write(audit_record(source="egress", kind="request", verdict="deny", rule="default-deny", reason="r",
                           host="evil.com", port=443, method="GET", path="/x?token=s3cr3t", now=0.25))
    log.write(audit_record(source="dns", kind="dns", verdict="deny", rule="dns", reason="r", host="a.b"))
    log.close()
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert first == {"time": "1970-01-01T00:00:00.250Z", "source": "egress", "kind": "request",
                     "method": "GET", "host": "evil.com", "port": 443, "path": "/x", "verdict": "deny",
                     "rule": "default-deny", "reason": "r"}
    assert "s3cr3t" not in path.read_text()
    assert second["rule"] == "dns" and second["port"] is None


def test_an_unwritable_log_does_not_raise(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    AuditLog(str(tmp_path / "f" / "x.jsonl")).write(audit_record(source="egress", kind="k", verdict="deny",
                                                                 rule="r", reason="r"))
    assert "cannot write" in capsys.readouterr().err
