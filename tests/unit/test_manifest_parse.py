"""Parsing bottle and agent files: the schema, and every error naming the file and line to fix."""

from __future__ import annotations

import textwrap

import pytest

from claude_bottle.errors import BottleError
from claude_bottle.manifest.model import AllowRule, EnvKind, EnvValue
from claude_bottle.manifest.parse import env_value, parse_agent, parse_bottle

PATH = "/home/u/.claude-bottle/bottles/dev.md"
HOST_KEY = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def bottle(front: str, body: str = "") -> str:
    return "---\n" + textwrap.dedent(front).lstrip("\n") + "---\n" + body


def test_full_bottle_parses() -> None:
    text = bottle(
        f"""
        egress:
          allow:
            - api.anthropic.com
            - "*.pypi.org"
            - host: api.github.com
              methods: [get, POST]
              paths: [/repos/]
              dlp_exempt: true
            - {{host: intranet.corp, private: true}}
            - {{host: files.example.com, passthrough: true}}
        env: {{GIT_AUTHOR_NAME: me, DEBUG: no, RETRIES: 3, TOKEN: "${{MY_TOKEN}}", PIN: "?your pin"}}
        secrets:
          GH_TOKEN: {{from: "${{GH}}", hosts: [api.github.com], optional: true}}
          PYPI: {{from: "?pypi token", hosts: ["*.pypi.org"], header: X-Token, format: "{{value}}"}}
        git:
          push: ["feature/{{slug}}/*"]
          remotes:
            - {{name: origin, url: "git@github.com:me/x.git", ssh_key: ~/.ssh/k, host_key: "{HOST_KEY}"}}
            - {{name: up, url: "https://example.com/x.git", token: "${{UP_TOKEN}}", branches: [main]}}
        supervise: false
        """,
        body="\nNotes for humans.\n",
    )
    b = parse_bottle(name="dev", path=PATH, text=text)
    assert b.name == "dev" and b.source == PATH and b.notes == "Notes for humans."
    assert b.egress.hosts == (
        "api.anthropic.com",
        "*.pypi.org",
        "api.github.com",
        "intranet.corp",
        "files.example.com",
    )
    assert b.egress.allow[2] == AllowRule(
        host="api.github.com", methods=("GET", "POST"), paths=("/repos/",), dlp_exempt=True
    )
    assert b.egress.allow[3].private and b.egress.allow[4].passthrough
    # numbers and YAML 1.1 booleans are taken as written, never as True/False
    assert b.env == {
        "GIT_AUTHOR_NAME": EnvValue(EnvKind.LITERAL, "me"),
        "DEBUG": EnvValue(EnvKind.LITERAL, "no"),
        "RETRIES": EnvValue(EnvKind.LITERAL, "3"),
        "TOKEN": EnvValue(EnvKind.HOST, "MY_TOKEN"),
        "PIN": EnvValue(EnvKind.PROMPT, "your pin"),
    }
    gh, pypi = b.secrets
    assert (gh.name, gh.source, gh.hosts, gh.header, gh.format, gh.optional) == (
        "GH_TOKEN",
        EnvValue(EnvKind.HOST, "GH"),
        ("api.github.com",),
        "Authorization",
        "Bearer {value}",
        True,
    )
    assert (pypi.source.kind, pypi.header, pypi.format, pypi.optional) == (
        EnvKind.PROMPT,
        "X-Token",
        "{value}",
        False,
    )
    assert b.git.push == ("feature/{slug}/*",)
    origin, up = b.git.remotes
    assert (origin.ssh_key, origin.host_key, origin.token_env) == ("~/.ssh/k", HOST_KEY, None)
    assert (up.token_env, up.branches) == ("UP_TOKEN", ("main",))
    assert b.supervise is False


def test_supervise_true_is_refused_in_one_line() -> None:
    """No supervise service ships yet: the whole message is the one line the brief promises."""
    with pytest.raises(BottleError) as info:
        parse_bottle(name="dev", path=PATH, text="---\negress: {}\nsupervise: true\n---\n")
    expected = "supervise is not available in this version (remove it or set it to false)"
    assert str(info.value) == f"{PATH}:3: {expected}"
    assert info.value.hint is None


def test_empty_front_matter_is_an_empty_bottle() -> None:
    b = parse_bottle(name="x", path=PATH, text="---\n---\n")
    assert b.egress.allow == () and b.env == {} and b.secrets == () and b.supervise is False


def test_null_values_read_as_empty() -> None:
    b = parse_bottle(name="x", path=PATH, text=bottle("egress:\n  allow:\nenv:\nsecrets:\ngit:\n"))
    assert b.egress.allow == () and b.env == {} and b.secrets == ()


def test_crlf_and_bom_are_accepted() -> None:
    b = parse_bottle(name="x", path=PATH, text="\ufeff---\r\negress: {allow: [a.example]}\r\n---\r\n")
    assert b.egress.hosts == ("a.example",)


def test_agent_parses_with_prompt_body() -> None:
    text = (
        '---\nbottle: dev\nskills: [web-research, a.b_c]\nenv: {X: "1", Y: "?why"}\n---\n\nYou are careful.\n'
    )
    parsed = parse_agent(name="researcher", path="/p/a.md", text=text, project=True)
    a = parsed.agent
    assert (a.name, a.bottle, a.skills, a.prompt) == (
        "researcher",
        "dev",
        ("web-research", "a.b_c"),
        "You are careful.",
    )
    assert a.env == {"X": EnvValue(EnvKind.LITERAL, "1"), "Y": EnvValue(EnvKind.PROMPT, "why")}
    assert parsed.lines == {"bottle": 2, "env.X": 4, "env.Y": 4}


def test_agent_defaults() -> None:
    a = parse_agent(name="a", path="/p/a.md", text="---\n---\n", project=False).agent
    assert (a.bottle, a.skills, a.prompt, a.env) == ("default", (), "", {})


def test_home_agent_may_read_host_variables() -> None:
    a = parse_agent(name="a", path="/p/a.md", text='---\nenv: {T: "${TOK}"}\n---\n', project=False).agent
    assert a.env["T"] == EnvValue(EnvKind.HOST, "TOK")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("?", EnvValue(EnvKind.PROMPT, "")),
        ("? your token ", EnvValue(EnvKind.PROMPT, "your token")),
        ("${A_1}", EnvValue(EnvKind.HOST, "A_1")),
        ("plain $HOME text", EnvValue(EnvKind.LITERAL, "plain $HOME text")),
        ("", EnvValue(EnvKind.LITERAL, "")),
    ],
)
def test_env_value_modes(text: str, expected: EnvValue) -> None:
    assert env_value(text) == expected


@pytest.mark.parametrize("text", ["${HOME}/bin", "${1X}", "${A", "x${A}"])
def test_env_value_refuses_interpolation(text: str) -> None:
    assert isinstance(env_value(text), str)


# (front matter, line of the problem, text the one-line message must contain)
BOTTLE_ERRORS = [
    # -- structure -------------------------------------------------------------------------------
    ("egres: {}\n", 2, "unknown key 'egres' in bottle (did you mean 'egress'?)"),
    ("zzz: 1\n", 2,
     "unknown key 'zzz' in bottle (known keys: egress, env, git, resources, secrets, supervise)"),
    ("egress: {}\negress: {}\n", 3, "duplicate key 'egress' in bottle"),
    ("[a, b]\n", 2, "front matter must be a mapping of keys"),
    ("? [a]\n: b\n", 2, "keys of bottle must be strings"),
    ("egress: {allow: [a.example}\n", 2, "invalid YAML: "),
    ("env:\n  A: 1\n\tB: 2\n", 4, "invalid YAML: "),
    ("egress: [a.example]\n", 2, "egress must be a mapping"),
    ("egress: {alow: []}\n", 2, "unknown key 'alow' in egress (did you mean 'allow'?)"),
    ("egress: {allow: a.example}\n", 2, "egress.allow must be a list"),
    ("supervise: maybe\n", 2, "supervise must be true or false"),
    # no supervise service ships yet: asking for it is refused, in full, on its own line
    ("supervise: true\n", 2, "supervise is not available in this version (remove it or set it to false)"),
    ("egress: {}\nsupervise: yes\n", 3, "supervise is not available in this version"),
    # -- egress ----------------------------------------------------------------------------------
    (
        "egress:\n  allow:\n    - a.example\n    - b.example\n    - [c]\n",
        6,
        "egress.allow[2] must be a string or a mapping",
    ),
    ("egress:\n  allow:\n    - 3\n", 4, "egress.allow[0] must be a string or a mapping"),
    ("egress:\n  allow:\n    -\n", 4, "egress.allow[0] must be a string or a mapping"),
    ("egress: {allow: ['https://a.example']}\n", 2, "without a scheme"),
    ("egress: {allow: ['a.example:443']}\n", 2, "without a port"),
    ("egress: {allow: ['a.example/x']}\n", 2, "without a path"),
    ("egress: {allow: ['10.0.0.1']}\n", 2, "is an IP address"),
    ("egress: {allow: ['::1']}\n", 2, "is an IP address"),
    ("egress: {allow: ['[::1]']}\n", 2, "is an IP address"),
    ("egress: {allow: ['127.1']}\n", 2, "is an IP address"),
    ("egress: {allow: ['2130706433']}\n", 2, "is an IP address"),
    ("egress: {allow: ['0x7f.1']}\n", 2, "is an IP address"),
    ("egress: {allow: ['A.example']}\n", 2, "must be lowercase"),
    ("egress: {allow: ['bücher.example']}\n", 2, "xn--"),
    ("egress: {allow: ['a*.example']}\n", 2, "whole first label"),
    ("egress: {allow: ['*.*.example']}\n", 2, "whole first label"),
    ("egress: {allow: ['*']}\n", 2, "whole first label"),
    ("egress: {allow: ['a.example.']}\n", 2, "must not end with a dot"),
    ("egress: {allow: ['a_b.example']}\n", 2, "not a valid hostname"),
    ("egress: {allow: ['-a.example']}\n", 2, "not a valid hostname"),
    ("egress: {allow: ['']}\n", 2, "is empty"),
    ("egress:\n  allow:\n    - {methods: [GET]}\n", 4, "egress.allow[0] needs a 'host'"),
    (
        "egress:\n  allow:\n    - {host: a.example, hots: x}\n",
        4,
        "unknown key 'hots' in egress.allow[0] (did you mean 'host'?)",
    ),
    ("egress:\n  allow:\n    - {host: 5}\n", 4, "egress.allow[0].host must be a string"),
    (
        "egress:\n  allow:\n    - {host: a.example, methods: GET}\n",
        4,
        "egress.allow[0].methods must be a list",
    ),
    ("egress:\n  allow:\n    - host: a.example\n      methods: ['GE T']\n", 5, "not a valid HTTP method"),
    ("egress:\n  allow:\n    - host: a.example\n      paths: [v1/]\n", 5, "must start with '/'"),
    ("egress:\n  allow:\n    - host: a.example\n      paths: ['/v1?x=1']\n", 5, "plain path prefix"),
    (
        "egress:\n  allow:\n    - host: a.example\n      private: 1\n",
        5,
        "egress.allow[0].private must be true or false",
    ),
    (
        "egress:\n  allow:\n    - {host: a.example, passthrough: true, paths: [/x]}\n",
        4,
        "methods and paths cannot be checked on a passthrough host",
    ),
    (
        "egress:\n  allow:\n    - a.example\n    - {host: a.example}\n",
        5,
        "repeats host 'a.example' (first on line 4)",
    ),
    # -- env -------------------------------------------------------------------------------------
    ("env: {1A: x}\n", 2, "env name '1A' is not a valid variable name"),
    ("env: {A-B: x}\n", 2, "env name 'A-B' is not a valid variable name"),
    ("env: {https_proxy: x}\n", 2, "is set by claude-bottle"),
    ("env:\n  A: [x]\n", 3, "env.A must be a string"),
    ("env:\n  A:\n", 3, "env.A must be a string"),
    ("env:\n  A: '${HOME}/bin'\n", 3, "env.A uses '${...}' inside a longer value"),
    ("env: [A]\n", 2, "env must be a mapping"),
    # -- secrets ---------------------------------------------------------------------------------
    ("egress: {allow: [a.example]}\nsecrets:\n  T: {hosts: [a.example]}\n", 4, "secrets.T needs 'from'"),
    ("egress: {allow: [a.example]}\nsecrets:\n  T: {from: '${X}'}\n", 4, "secrets.T needs 'hosts'"),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  T:\n    from: hunter2\n    hosts: [a.example]\n",
        5,
        "secrets.T.from must be '${HOST_VAR}' or '?prompt text' (secrets never live in files)",
    ),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  T: {from: '${X}y', hosts: [a.example]}\n",
        4,
        "secrets.T.from must be",
    ),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  T: {from: 5, hosts: [a.example]}\n",
        4,
        "secrets.T.from must be a string",
    ),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  T: {from: '${X}', hosts: []}\n",
        4,
        "must name at least one host",
    ),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  T: {from: '${X}', hosts: a.example}\n",
        4,
        "secrets.T.hosts must be a list",
    ),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  T:\n    from: '${X}'\n    hosts: [a.example, b.example]\n",
        6,
        "secrets.T.hosts: 'b.example' is not in egress.allow (add it there too)",
    ),
    (
        "egress: {allow: ['a.example']}\nsecrets:\n  T:\n    from: '${X}'\n    hosts: ['*.a.example']\n",
        6,
        "'*.a.example' is not in egress.allow",
    ),
    (
        "egress: {allow: [{host: a.example, passthrough: true}]}\nsecrets:\n  T:\n    from: '${X}'\n"
        "    hosts: [a.example]\n",
        6,
        "is passthrough in egress.allow, so the proxy cannot inject it",
    ),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  T:\n    from: '${X}'\n    hosts: ['a.example:443']\n",
        6,
        "without a port",
    ),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  T: {from: '${X}', hosts: [a.example], header: 'X Y'}\n",
        4,
        "not a valid HTTP header name",
    ),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  T: {from: '${X}', hosts: [a.example], header: Host}\n",
        4,
        "frames or routes the request",
    ),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  T: {from: '${X}', hosts: [a.example], format: Bearer}\n",
        4,
        "must contain '{value}' once",
    ),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  T: {from: '${X}', hosts: [a.example], format: '{value}{value}'}\n",  # noqa: E501
        4,
        "must contain '{value}' once",
    ),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  T: {from: '${X}', hosts: [a.example], format: '{value} {x}'}\n",  # noqa: E501
        4,
        "no other braces",
    ),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  T: {from: '${X}', hosts: [a.example], format: \"{value}\\r\\nX: y\"}\n",  # noqa: E501
        4,
        "must be one line of printable text",
    ),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  T: {from: '${X}', hosts: [a.example], optional: sure}\n",
        4,
        "secrets.T.optional must be true or false",
    ),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  T: {from: '${X}', host: [a.example]}\n",
        4,
        "unknown key 'host' in secrets.T (did you mean 'hosts'?)",
    ),
    (
        "egress: {allow: [a.example]}\nsecrets:\n  bad-name: {from: '${X}', hosts: [a.example]}\n",
        4,
        "secret name 'bad-name' is not a valid variable name",
    ),
    ("egress: {allow: [a.example]}\nsecrets:\n  T: hello\n", 4, "secrets.T must be a mapping"),
    (
        "egress: {allow: [a.example]}\nenv: {T: x}\nsecrets:\n  T: {from: '${X}', hosts: [a.example]}\n",
        5,
        "secret 'T' is also set in env",
    ),
    # -- git -------------------------------------------------------------------------------------
    ("git: {puhs: []}\n", 2, "unknown key 'puhs' in git (did you mean 'push'?)"),
    ("git:\n  push: ['refs/heads/x']\n", 3, "without 'refs/heads/'"),
    ("git:\n  push: ['a..b']\n", 3, "not a valid branch pattern"),
    ("git:\n  push: ['a b']\n", 3, "not a valid branch pattern"),
    ("git:\n  push: ['x/']\n", 3, "not a valid branch pattern"),
    ("git:\n  push: ['x.lock']\n", 3, "not a valid branch pattern"),
    ("git:\n  push: ['{user}/x']\n", 3, "only specials"),
    ("git:\n  push: ['a:b']\n", 3, "not a valid branch pattern"),
    ("git:\n  push: [7]\n", 3, "git.push[0] must be a string"),
    ("git:\n  remotes:\n    - {url: 'https://h.example/x'}\n", 4, "git.remotes[0] needs 'name'"),
    ("git:\n  remotes:\n    - {name: o}\n", 4, "git.remotes[0] needs 'url'"),
    ("git:\n  remotes:\n    - {name: 'o p', url: 'https://h.example/x'}\n", 4, "not a valid remote name"),
    ("git:\n  remotes:\n    - {name: o, url: 'file:///srv/x'}\n", 4, "must be an https://"),
    ("git:\n  remotes:\n    - {name: o, url: '/srv/x.git'}\n", 4, "must be an https://"),
    ("git:\n  remotes:\n    - {name: o, url: 'https:///x'}\n", 4, "has no host"),
    ("git:\n  remotes:\n    - {name: o, url: 'https://u:p@h.example/x'}\n", 4, "must not carry a password"),
    ("git:\n  remotes:\n    - {name: o, url: 'https://u@h.example/x'}\n", 4, "must not carry a user name"),
    (
        "git:\n  remotes:\n    - name: o\n      url: 'https://h.example/x'\n      token: abc\n",
        6,
        "git.remotes[0].token must be '${HOST_VAR}' (secrets never live in files)",
    ),
    (
        "git:\n  remotes:\n    - name: o\n      url: 'http://h.example/x'\n      token: '${T}'\n",
        6,
        "token needs an https:// URL",
    ),
    (
        "git:\n  remotes:\n    - name: o\n      url: 'ssh://git@h.example/x'\n      ssh_key: /k\n",
        4,
        "an ssh remote needs 'host_key'",
    ),
    (
        "git:\n  remotes:\n    - name: o\n      url: 'git@h.example:x.git'\n      ssh_key: /k\n",
        4,
        "an ssh remote needs 'host_key'",
    ),
    (
        "git:\n  remotes:\n    - name: o\n      url: 'git@h.example:x.git'\n      host_key: 'ssh-dss AAAA'\n",
        6,
        "unknown key type 'ssh-dss'",
    ),
    (
        "git:\n  remotes:\n    - name: o\n      url: 'git@h.example:x.git'\n      host_key: 'ssh-ed25519 !!'\n",  # noqa: E501
        6,
        "not valid base64",
    ),
    (
        "git:\n  remotes:\n    - name: o\n      url: 'git@h.example:x.git'\n      host_key: 'a b c d'\n",
        6,
        "must be one known_hosts line",
    ),
    (
        f"git:\n  remotes:\n    - name: o\n      url: 'git@h.example:x.git'\n      host_key: '{HOST_KEY}'\n",
        4,
        "an ssh remote needs 'ssh_key'",
    ),
    (
        f"git:\n  remotes:\n    - name: o\n      url: 'git@h.example:x.git'\n      host_key: '{HOST_KEY}'\n"
        "      ssh_key: id_rsa\n",
        7,
        "must be an absolute path or start with '~'",
    ),
    (
        "git:\n  remotes:\n    - name: o\n      url: 'git@h.example:x.git'\n      token: '${T}'\n",
        6,
        "token needs an https:// URL",
    ),
    (
        "git:\n  remotes:\n    - name: o\n      url: 'https://h.example/x'\n      ssh_key: /k\n",
        6,
        "ssh_key is only for ssh remotes",
    ),
    (
        f"git:\n  remotes:\n    - name: o\n      url: 'https://h.example/x'\n      host_key: '{HOST_KEY}'\n",
        6,
        "host_key is only for ssh remotes",
    ),
    (
        "git:\n  remotes:\n    - name: o\n      url: 'https://h.example/x'\n      branches: ['a..b']\n",
        6,
        "not a valid branch pattern",
    ),
    (
        "git:\n  remotes:\n    - {name: o, url: 'https://h.example/x'}\n    - {name: o, url: 'https://h.example/y'}\n",
        5,
        "git.remotes[1] repeats remote name 'o'",
    ),
    (
        "git:\n  remotes:\n    - {name: o, url: 'https://h.example/x', brances: []}\n",
        4,
        "unknown key 'brances' in git.remotes[0] (did you mean 'branches'?)",
    ),
]


@pytest.mark.parametrize(("front", "line", "message"), BOTTLE_ERRORS)
def test_bottle_errors_name_file_and_line(front: str, line: int, message: str) -> None:
    with pytest.raises(BottleError) as info:
        parse_bottle(name="dev", path=PATH, text="---\n" + front + "---\n")
    text = str(info.value)
    assert text.startswith(f"{PATH}:{line}: "), text
    assert message in text
    assert "\n" not in text


AGENT_ERRORS = [
    ("bottel: dev\n", 2, "unknown key 'bottel' in agent (did you mean 'bottle'?)"),
    ("bottle: [dev]\n", 2, "bottle must be a string"),
    ("bottle: Dev\n", 2, "bottle 'Dev' must be lowercase letters"),
    ("skills: web\n", 2, "skills must be a list"),
    ("skills:\n  - ok\n  - 'no way'\n", 4, "skill 'no way' is not a valid skill name"),
    ("skills:\n  - {a: 1}\n", 3, "skills[0] must be a string"),
    (
        "env:\n  TOKEN: '${GITHUB_TOKEN}'\n",
        3,
        "env.TOKEN reads host variable 'GITHUB_TOKEN', which an agent from the project may not do",
    ),
    ("env: {A: [1]}\n", 2, "env.A must be a string"),
    ("- a\n", 2, "front matter must be a mapping of keys"),
]


@pytest.mark.parametrize(("front", "line", "message"), AGENT_ERRORS)
def test_agent_errors_name_file_and_line(front: str, line: int, message: str) -> None:
    path = "/proj/.claude-bottle/agents/a.md"
    with pytest.raises(BottleError) as info:
        parse_agent(name="a", path=path, text="---\n" + front + "---\nprompt\n", project=True)
    text = str(info.value)
    assert text.startswith(f"{path}:{line}: "), text
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "/f.md:1: empty file"),
        ("  \n\n", "/f.md:1: empty file"),
        ("egress: {}\n", "/f.md:1: missing front matter"),
        ("\n---\negress: {}\n---\n", "/f.md:1: missing front matter"),
        ("---\negress: {}\n", "/f.md:1: front matter is not closed"),
    ],
)
def test_front_matter_errors(text: str, message: str) -> None:
    with pytest.raises(BottleError) as info:
        parse_bottle(name="x", path="/f.md", text=text)
    assert str(info.value).startswith(message)


def test_invalid_yaml_message_is_one_line_and_hides_file_content() -> None:
    text = "---\nenv:\n  A: 'sk-secret-looking\n---\n"
    with pytest.raises(BottleError) as info:
        parse_bottle(name="x", path="/f.md", text=text)
    assert str(info.value).startswith("/f.md:")
    assert "invalid YAML" in str(info.value) and "sk-secret-looking" not in str(info.value)
    assert "\n" not in str(info.value)


def test_alias_bomb_is_bounded_by_the_schema() -> None:
    """Aliases compose into shared nodes; the schema stops at the first wrong type, so a
    billion-laughs document costs nothing."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 12)]
    text = "---\n" + "\n".join(lines) + "\n---\n"
    with pytest.raises(BottleError, match="unknown key 'a0' in bottle"):
        parse_bottle(name="x", path="/f.md", text=text)
    text = "---\nenv: &e {A: x}\nskills: [*e]\n---\n"
    with pytest.raises(BottleError, match="skills\\[0\\] must be a string"):
        parse_agent(name="a", path="/f.md", text=text, project=False)


def test_merge_keys_are_unknown_keys() -> None:
    text = "---\nbase: &b {supervise: true}\n<<: *b\n---\n"
    with pytest.raises(BottleError, match="unknown key 'base'"):
        parse_bottle(name="x", path="/f.md", text=text)


def test_wildcard_secret_host_covered_by_wider_wildcard() -> None:
    text = bottle(
        """
        egress: {allow: ["*.example.com"]}
        secrets:
          T: {from: "${X}", hosts: ["*.api.example.com", a.example.com]}
        """
    )
    assert parse_bottle(name="x", path=PATH, text=text).secrets[0].hosts == (
        "*.api.example.com",
        "a.example.com",
    )


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    text = "---\nskills: " + "[" * 20000 + "]" * 20000 + "\n---\n"
    with pytest.raises(BottleError, match=r"^/f\.md:1: invalid YAML: nested too deeply$"):
        parse_agent(name="a", path="/f.md", text=text, project=True)


def test_unclosed_bracket_points_at_where_it_opened() -> None:
    text = "---\negress:\n  allow: [a.example,\n    b.example\nenv: {}\n---\n"
    with pytest.raises(BottleError) as info:
        parse_bottle(name="x", path="/f.md", text=text)
    assert str(info.value) == (
        "/f.md:5: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence started on line 3)"
    )
