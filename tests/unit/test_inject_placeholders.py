"""Placeholders (host side): same shape as the real value, random, fresh, never the value itself."""

from __future__ import annotations

import json
import re
import string

import pytest

from claude_bottle.errors import BottleError
from claude_bottle.manifest.model import EnvKind, EnvValue, SecretDef
from claude_bottle.secrets import CREDENTIALS_FILE, delivery_command, make_placeholder, plan_credentials

B64URL = string.ascii_letters + string.digits + "-_"
API_KEY = "sk-ant-api03-" + "Ab3_x-9QzP" * 9 + "wXyZ1AA"
OAUTH = "sk-ant-oat01-" + "q1W2e3R4t5-_" * 8 + "Yz9AA"


def _secret(name: str, header: str = "x-api-key", fmt: str = "{value}") -> SecretDef:
    return SecretDef(name=name, source=EnvValue(EnvKind.HOST, name), hosts=("api.anthropic.com",),
                     header=header, format=fmt)


@pytest.mark.parametrize(("value", "prefix", "alphabet"), [
    (API_KEY, "sk-ant-api03-", B64URL),
    (OAUTH, "sk-ant-oat01-", B64URL),
    ("ghp_" + "aB1" * 12, "ghp_", string.ascii_letters + string.digits),
    ("AKIA" + "ABCDEFGHIJ234567", "AKIA", string.ascii_uppercase + string.digits),
    ("xoxb-" + "1234567890", "xoxb-", string.digits),
    ("0123456789abcdef0123456789abcdef", "", "0123456789abcdef"),
    ("DEADBEEF0123456789ABCDEF", "", "0123456789ABCDEF"),
    ("mytool-v2_" + "k" * 30 + "Q9", "mytool-v2_", string.ascii_letters + string.digits),
])
def test_placeholder_keeps_prefix_length_and_alphabet(value: str, prefix: str, alphabet: str) -> None:
    placeholder = make_placeholder(value)
    assert placeholder != value
    assert len(placeholder) == len(value)
    assert placeholder.startswith(prefix)
    assert set(placeholder[len(prefix):]) <= set(alphabet)


def test_placeholder_is_fresh_each_time() -> None:
    seen = {make_placeholder(API_KEY) for _ in range(50)}
    assert len(seen) == 50


def test_placeholder_body_is_random_not_derived() -> None:
    """Positions of '-' and '_' in the real body must not show through (they are alphabet members)."""
    value = "sk-ant-api03-" + "-" * 40 + "a" * 40
    bodies = [make_placeholder(value)[13:] for _ in range(20)]
    assert not all(b[:40] == "-" * 40 for b in bodies)


def test_jwt_like_and_padded_values_keep_their_dots_and_padding() -> None:
    value = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlc2lnbmF0dXJl=="
    placeholder = make_placeholder(value)
    assert [len(s) for s in placeholder.split(".")] == [len(s) for s in value.split(".")]
    assert placeholder.endswith("==")
    assert placeholder != value


def test_password_like_value_keeps_character_classes() -> None:
    value = "Tr0ub4dor&3!horse"
    placeholder = make_placeholder(value)
    assert len(placeholder) == len(value)
    for a, b in zip(value, placeholder, strict=True):
        assert (a.isupper(), a.islower(), a.isdigit()) == (b.isupper(), b.islower(), b.isdigit())
        if not a.isalnum():
            assert a == b


def test_too_short_secret_is_one_clear_error() -> None:
    with pytest.raises(BottleError, match="at least 8 characters"):
        plan_credentials([_secret("TOKEN")], {"TOKEN": "abc"})


def test_plan_skips_unset_optional_secrets_and_builds_agent_env() -> None:
    creds = plan_credentials([_secret("ANTHROPIC_API_KEY"), _secret("CLAUDE_CODE_OAUTH_TOKEN")],
                             {"ANTHROPIC_API_KEY": API_KEY})
    assert [c.name for c in creds.credentials] == ["ANTHROPIC_API_KEY"]
    env = creds.agent_env
    assert set(env) == {"ANTHROPIC_API_KEY"}
    assert env["ANTHROPIC_API_KEY"] != API_KEY
    assert API_KEY not in repr(creds)


def test_delivery_keeps_values_off_argv_and_in_stdin_only() -> None:
    creds = plan_credentials([_secret("ANTHROPIC_API_KEY")], {"ANTHROPIC_API_KEY": API_KEY})
    cmd = delivery_command(container="claude-bottle-sidecars-x-abcde", creds=creds)
    assert not any(API_KEY in arg for arg in cmd.argv)
    assert not cmd.secret_env and not any(API_KEY in v for v in cmd.env.values())
    assert API_KEY not in repr(cmd)
    assert cmd.argv[:3] == ("docker", "exec", "-i")
    assert CREDENTIALS_FILE in cmd.argv[-1] and "tmpfs" in cmd.argv[-1]
    payload = json.loads(cmd.input or b"")
    (cred,) = payload["credentials"]
    assert cred["value"] == API_KEY and cred["placeholder"] == creds.agent_env["ANTHROPIC_API_KEY"]
    assert re.fullmatch(r"sk-ant-api03-[A-Za-z0-9_-]+", cred["placeholder"])
