"""``check`` and ``up --check``: the probe's output parsed into classes, the table and JSON, the exit
status, and ``up`` taking a bottle down that fails (or cannot be probed)."""

from __future__ import annotations

import json
from pathlib import Path

from claude_bottle import check, ui
from claude_bottle.backends.base import ProbeTargets
from claude_bottle.check import CLASSES, CheckReport, CheckResult, parse_results, probe_config
from claude_bottle.testing import fake_backend


def line(cls: str, probe: str, result: str, ok: bool) -> str:
    return json.dumps({"cls": cls, "probe": probe, "result": result, "ok": ok})


def passing(*, skip: str = "") -> str:
    lines = [line(name, f"{name} attempt", "refused", True) for name in CLASSES if name != skip]
    return "\n".join([*lines, json.dumps({"done": True})]) + "\n"


def up(cli, *args: str) -> str:
    result = cli("up", "--backend", "fake", "--detach", "--yes", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["slug"]


def records(home: Path) -> list[str]:
    return sorted(p.stem for p in (home / "fake-backends" / "fake").glob("*.json"))


# -- parse_results ---------------------------------------------------------------------------------
def test_every_class_passing_is_ok_in_class_order():
    report = parse_results(passing())
    assert report.ok and report.complete
    assert [r.name for r in report.results] == list(CLASSES)
    assert report.results[0] == CheckResult("direct-tcp", True, f"{CLASSES['direct-tcp']} (1 probes)")


def test_a_leak_fails_its_class_naming_what_got_through():
    out = passing() + "\n".join([
        line("direct-tcp", "tcp 10.0.0.1:80", "open", False),
        line("direct-tcp", "tcp 1.1.1.1:443", "EHOSTUNREACH", True),
        line("dns", "A example.com via 8.8.8.8", "answered [\"93.184.215.14\"]", False),
    ])
    report = parse_results(out)
    assert not report.ok
    assert [r.name for r in report.failed] == ["direct-tcp", "dns"]
    tcp = report.results[0]
    assert tcp.detail == "tcp 10.0.0.1:80: open"
    assert len([o for o in report.observations if o.cls == "direct-tcp"]) == 3


def test_only_the_first_few_leaks_are_named():
    out = passing() + "\n".join(line("ipv6", f"tcp [2001:db8::{i}]:443", "open", False) for i in range(5))
    (ipv6,) = parse_results(out).failed
    assert ipv6.detail.endswith("(and 2 more)") and ipv6.detail.count(": open") == 3


def test_a_class_the_probe_never_reached_fails():
    cut = passing(skip="proxy-bypass").replace(json.dumps({"done": True}), "")
    report = parse_results(cut)
    assert not report.complete and [r.name for r in report.failed] == ["proxy-bypass"]
    assert "stopped before reporting" in report.failed[0].detail
    silent = parse_results(passing(skip="ipv6"))
    assert silent.complete and "reported nothing" in silent.failed[0].detail


def test_noise_and_unknown_classes_are_ignored():
    out = "(node:12) Warning: something\n[1, 2]\n{\"cls\": 3}\n" + line("other", "x", "open", False) + "\n"
    report = parse_results(out + passing())
    assert report.ok and len(report.observations) == len(CLASSES) + 1


def test_nothing_at_all_fails_every_class():
    report = parse_results("")
    assert not report.ok and len(report.failed) == len(CLASSES) and not report.observations


def test_probe_config_carries_the_backends_targets():
    targets = ProbeTargets(host=("172.17.0.1",), siblings=("172.20.0.3",), far_side=("192.168.1.2",))
    cfg = probe_config(targets, allowed_host="api.anthropic.com")
    assert cfg["host_addresses"] == ["172.17.0.1"] and cfg["siblings"] == ["172.20.0.3"]
    assert cfg["far_side"] == ["192.168.1.2"] and cfg["allowed_host"] == "api.anthropic.com"
    assert "10.0.0.1:80" in cfg["direct_tcp"]  # the integration test opens a hole right there
    json.dumps(cfg)


def test_the_allowed_host_is_an_exact_inspected_name(tmp_path):
    assert check.allowed_host(tmp_path) == ""  # no bundle.yaml: no tunnel probes
    (tmp_path / "bundle.yaml").write_text(
        "version: 1\nslug: s\nbottle: b\negress:\n  allow:\n"
        "  - {host: '*.example.org'}\n  - {host: raw.example.org, passthrough: true}\n"
        "  - {host: ssh.example.org, ports: [22]}\n  - {host: api.example.org}\n")
    assert check.allowed_host(tmp_path) == "api.example.org"


def test_the_probe_script_is_packaged():
    assert b"process.argv" in check._probe_script()


# -- rendering --------------------------------------------------------------------------------------
def test_table_and_json():
    results = (CheckResult("direct-tcp", True, "held (3 probes)"),
               CheckResult("dns", False, "A x via 8.8.8.8: answered \x1b[31m"))
    report = CheckReport(results, slug="claude-abcde")
    ui.out().print(ui.check_table(report))
    data = ui.check_json(report)
    assert data["ok"] is False and data["slug"] == "claude-abcde"
    assert data["classes"][1] == {"name": "dns", "ok": False, "detail": "A x via 8.8.8.8: answered \x1b[31m"}


def test_table_escapes_control_characters(capsys):
    report = CheckReport((CheckResult("dns", False, "answered \x1b[2J"),), slug="s")
    ui.out().print(ui.check_table(report))
    out = capsys.readouterr().out
    assert "\x1b" not in out and "FAIL" in out and "\\x1b[2J" in out


# -- the CLI ----------------------------------------------------------------------------------------
def test_check_passes_and_exits_zero(cli, cb_home):
    with fake_backend("fake", AGENT_OUTPUT=passing()):
        slug = up(cli)
        result = cli("check", slug)
    assert result.exit_code == 0, result.output
    assert f"containment of {slug}" in result.stdout
    assert result.stdout.count("PASS") == len(CLASSES) and "FAIL" not in result.stdout
    # the probe ran in the agent: node reading the script from stdin, its config as the last argument
    log = (cb_home / "fake-backends" / "fake" / "exec.log").read_text()
    logged = [json.loads(ln) for ln in log.splitlines()]
    argv = logged[-1]["argv"]
    assert argv[:2] == ["node", "-"] and json.loads(argv[2])["proxy"] == {"host": "egress", "port": 3128}


def test_check_fails_a_leaking_class_and_exits_one(cli):
    leak = passing() + line("direct-udp", "udp 8.8.8.8:53", "reply: rcode 0, 1 answer(s)", False) + "\n"
    with fake_backend("fake", AGENT_OUTPUT=leak):
        slug = up(cli)
        result = cli("check", slug, "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert [c["name"] for c in data["classes"] if not c["ok"]] == ["direct-udp"]
    assert {"class": "direct-udp", "probe": "udp 8.8.8.8:53", "result": "reply: rcode 0, 1 answer(s)",
            "ok": False} in data["probes"]
    assert result.stderr == f"error: bottle {slug} failed 1 of {len(CLASSES)} classes: direct-udp\n"


def test_a_probe_that_cannot_run_is_an_error(cli):
    with fake_backend("fake", AGENT_OUTPUT="", EXEC_STATUS=127):
        slug = up(cli)
        result = cli("check", slug)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"error: the containment probe did not run in bottle {slug}: exit status 127\n"


def test_check_of_an_unknown_bottle(cli, fake):
    result = cli("check", "claude-zzzzz")
    assert result.exit_code == 1 and "no bottle claude-zzzzz" in result.stderr


def test_a_backend_without_run_in_agent_says_so(cli):
    from claude_bottle.backends.base import Backend  # noqa: PLC0415

    with fake_backend("fake", run_in_agent=Backend.run_in_agent):
        slug = up(cli)
        result = cli("check", slug)
    assert result.exit_code == 1
    assert "the fake backend cannot run a command in a bottle and read its output" in result.stderr


# -- up --check -------------------------------------------------------------------------------------
def test_up_check_hands_over_a_bottle_that_passes(cli, cb_home):
    with fake_backend("fake", AGENT_OUTPUT=passing()):
        result = cli("up", "--backend", "fake", "--detach", "--yes", "--json", "--check")
    assert result.exit_code == 0, result.output
    assert f"containment check: all {len(CLASSES)} classes pass" in result.stderr
    slug = json.loads(result.stdout)["slug"]
    assert f"claude-bottle-{slug}" in records(cb_home)


def test_up_check_takes_down_a_bottle_that_fails(cli, cb_home):
    leak = passing() + line("sibling-bottles", "tcp 172.20.0.3:3128", "open", False) + "\n"
    with fake_backend("fake", AGENT_OUTPUT=leak):
        result = cli("up", "--backend", "fake", "--detach", "--yes", "--json", "--check")
    assert result.exit_code == 1 and result.stdout == ""  # never handed over: no plan JSON
    assert "containment check FAIL sibling-bottles: tcp 172.20.0.3:3128: open" in result.stderr
    assert "failed its containment check (sibling-bottles) and was taken down" in result.stderr
    assert records(cb_home) == [] and not list((cb_home / "state").glob("claude-*"))


def test_up_check_takes_down_a_bottle_it_cannot_probe(cli, cb_home):
    with fake_backend("fake", AGENT_OUTPUT="node: not found\n", EXEC_STATUS=127):
        result = cli("up", "--backend", "fake", "--detach", "--yes", "--check")
    assert result.exit_code == 1
    assert "the containment probe did not run" in result.stderr
    assert records(cb_home) == []
