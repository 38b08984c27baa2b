"""bundle.yaml: the pure renderer (golden), and the bundle-side parser that must read it back."""

from __future__ import annotations

from pathlib import Path

import pytest

from claude_bottle.backends.base import BottleSpec
from claude_bottle.bundle_config import bottle_file_for, render_bundle_config
from claude_bottle.manifest.model import AgentDef, AllowRule, BottleDef, EgressDef
from claude_bottle.sidecars.config import (
    BundleConfig,
    ConfigError,
    DaemonEntry,
    Rule,
    dump_bundle_config,
    parse_bundle_config,
)

DEV_MD = "/home/u/.claude-bottle/bottles/dev.md"


def spec(*rules: AllowRule, source: str = DEV_MD) -> BottleSpec:
    bottle = BottleDef(name="dev", source=source, egress=EgressDef(allow=rules))
    return BottleSpec(slug="claude-m3hxd", agent=AgentDef(name="claude", source="<test>"), bottle=bottle,
                      cwd=Path("/w"), state_dir=Path("/s"))


GOLDEN = """\
# claude-bottle sidecar bundle configuration: rendered by claude-bottle, do not edit.
version: 1
slug: claude-m3hxd
bottle: dev
bottle_file: /home/u/.claude-bottle/bottles/dev.md
daemons:
- egress
- dns
egress:
  port: 3128
  audit_log: /var/log/claude-bottle/egress.jsonl
  own_networks: []
  allow:
  - host: api.anthropic.com
    methods: []
    paths: []
    passthrough: false
    private: false
    dlp_exempt: false
  - host: '*.pypi.org'
    methods:
    - GET
    - HEAD
    paths:
    - /simple/
    passthrough: false
    private: false
    dlp_exempt: false
  - host: xn--bcher-kva.example
    methods: []
    paths: []
    passthrough: true
    private: true
    dlp_exempt: true
dns:
  port: 53
  names:
  - egress
  - git-gate
  - supervise
"""


def golden_spec() -> BottleSpec:
    return spec(
        AllowRule(host="api.anthropic.com"),
        AllowRule(host="*.PyPI.org.", methods=("get", "HEAD"), paths=("/simple/",)),
        AllowRule(host="Bücher.example", passthrough=True, private=True, dlp_exempt=True),
    )


def test_render_is_golden():
    assert render_bundle_config(spec=golden_spec()) == GOLDEN


def test_render_round_trips_through_the_bundle_parser():
    text = render_bundle_config(spec=golden_spec(), daemons=("egress", "dns", "git-gate"),
                                own_networks=("10.9.0.0/24",), extra={"credentials": {"x": 1}})
    cfg = parse_bundle_config(text)
    assert cfg.slug == "claude-m3hxd" and cfg.bottle == "dev"
    assert [d.name for d in cfg.daemons] == ["egress", "dns", "git-gate"]
    assert cfg.rules[1] == Rule(host="*.pypi.org", methods=("GET", "HEAD"), paths=("/simple/",))
    assert cfg.rules[2].host == "xn--bcher-kva.example" and cfg.rules[2].private
    assert cfg.own_networks == ("10.9.0.0/24",)
    assert cfg.extra == {"credentials": {"x": 1}}


def test_bottle_file_names_the_definition_that_applies(tmp_path):
    """The 403's "to allow it" names the bottle's own file, or for the built-in bottle the file a user
    would create under their (resolved) home; a config from before the field reads as unknown."""
    assert parse_bundle_config(render_bundle_config(spec=golden_spec())).bottle_file == DEV_MD
    builtin = BottleDef(name="default", source="<built-in>")
    assert bottle_file_for(builtin, tmp_path / "bottles") == str(tmp_path / "bottles" / "default.md")
    assert bottle_file_for(BottleDef(name="dev", source=DEV_MD), tmp_path / "bottles") == DEV_MD
    text = render_bundle_config(spec=spec(source="<built-in>"), bottle_file="/h/bottles/dev.md")
    assert parse_bundle_config(text).bottle_file == "/h/bottles/dev.md"
    no_file = render_bundle_config(spec=spec(source="<built-in>"))
    assert "bottle_file" not in no_file and parse_bundle_config(no_file).bottle_file == ""


def test_custom_daemon_argv_round_trips():
    cfg = BundleConfig(slug="a-bcdef", bottle="b", daemons=(DaemonEntry("x", ("sleep", "1")),))
    assert parse_bundle_config(dump_bundle_config(cfg)).daemons == cfg.daemons


def test_an_ip_literal_or_bad_pattern_cannot_be_rendered():
    with pytest.raises(ValueError, match="IP address"):
        render_bundle_config(spec=spec(AllowRule(host="10.0.0.1")))
    with pytest.raises(ValueError, match=r"leading '\*\.'"):
        render_bundle_config(spec=spec(AllowRule(host="api.*.com")))


def test_extra_cannot_replace_builtin_sections():
    with pytest.raises(ValueError, match="egress"):
        render_bundle_config(spec=spec(), extra={"egress": {}})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n", "mapping at the top level"),
        ("version: 2\nslug: a\nbottle: b\n", "version 2"),
        ("version: 1\nbottle: b\n", "missing 'slug'"),
        ("version: 1\nslug: a\nbottle: b\negress: {allow: [{host: x, colour: red}]}\n",
         "unknown key 'colour'"),
        ("version: 1\nslug: a\nbottle: b\negress: {port: '3128'}\n", "egress.port: expected int"),
        ("version: 1\nslug: a\nbottle: b\negress: {allow: [{host: x, private: 'yes'}]}\n", "expected bool"),
        ("version: 1\nslug: a\nbottle: b\ndaemons: [3]\n", "expected a name"),
        ("version: 1\nslug: a\nbottle: b\ndns: {port: true}\n", "dns.port: expected int"),
        (": : :\n", "not YAML"),
    ],
)
def test_parser_refuses_malformed_configs(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_bundle_config(text)
