"""The real Claude Code in a real bottle, in a real terminal (tmux), against stand-ins for every host it
might contact (issue 9).

The bottle allows exactly :data:`claude_code.REQUIRED_HOSTS` (marked ``private`` only because the
stand-ins live on a local network) with the built-in bottle's environment and secrets. The session must
open at Claude Code's prompt with no dialog, answer a message through the proxy with the credential
injected, and end with ``/exit``. What Claude Code contacted is the measurement: every refused host
must be one of :data:`claude_code.OPTIONAL_HOSTS`, so a newer Claude Code that needs another host fails
here, and so does one that shows a dialog the seeded config does not answer.
"""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
import string
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from tests.integration.dockerkit import TEST_LABEL, AgentBottle, Env, connect, docker
from tests.integration.standin import REPLY, StandIns

from claude_bottle.claude_code import CLAUDE_CODE_VERSION, OPTIONAL_HOSTS, QUIET_ENV, REQUIRED_HOSTS

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (the CI installs it)")]

ALNUM = string.ascii_letters + string.digits
CREDENTIALS = {
    "api-key": ("ANTHROPIC_API_KEY", "x-api-key", "{value}",
                "sk-ant-api03-" + "".join(secrets.choice(ALNUM) for _ in range(80)) + "AA"),
    "oauth-token": ("CLAUDE_CODE_OAUTH_TOKEN", "Authorization", "Bearer {value}",
                    "sk-ant-oat01-" + "".join(secrets.choice(ALNUM) for _ in range(95)) + "AA"),
}
DIALOGS = ("Choose the text style", "Detected a custom API key", "Do you trust", "Select login method",
           "Unable to connect", "Press Enter to continue", "Yes, I trust this folder")


def _bottle_file() -> str:
    allow = "".join(f"    - {{host: {host}, private: true}}\n" for host in REQUIRED_HOSTS)
    env = "".join(f'  {k}: "{v}"\n' for k, v in QUIET_ENV.items())
    secrets_ = "".join(
        f'  {name}:\n    from: "${{{name}}}"\n    hosts: [api.anthropic.com]\n    header: {header}\n'
        f'    format: "{fmt}"\n    optional: true\n' for name, header, fmt, _ in CREDENTIALS.values())
    return f"---\negress:\n  allow:\n{allow}env:\n{env}secrets:\n{secrets_}---\n"


class Terminal:
    """One tmux server of our own (its own socket), running one command in a 160x50 window."""

    def __init__(self, command: list[str], environ: dict[str, str]) -> None:
        self.socket = f"cb-test-{uuid.uuid4().hex[:8]}"
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in environ.items())
        line = f"env {env} {shlex.join(command)}; echo SESSION-ENDED $?; sleep 30"
        self._tmux("new-session", "-d", "-s", "t", "-x", "160", "-y", "50", line)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              timeout=30, check=False).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)
        time.sleep(0.3)
        self._tmux("send-keys", "-t", "t", "Enter")

    def wait_for(self, *needles: str, timeout: float = 60, refuse: tuple[str, ...] = ()) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            shown = [d for d in refuse if d in screen]
            assert not shown, f"unexpected {shown[0]!r} on the screen:\n{screen}"
            if all(n in screen for n in needles):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout}s for {needles}; the screen:\n{screen}")
            time.sleep(0.5)

    def close(self) -> None:
        self._tmux("kill-server")


@pytest.fixture(scope="module")
def standins(env: Env, images: None) -> Iterator[StandIns]:
    with StandIns(home=env.home, label=TEST_LABEL) as s:
        yield s


@pytest.mark.parametrize("credential", sorted(CREDENTIALS))
def test_claude_code_opens_at_its_prompt_answers_and_exits(env: Env, standins: StandIns,
                                                           credential: str) -> None:
    name, _, _, value = CREDENTIALS[credential]
    (env.home / "bottles").mkdir(exist_ok=True)
    (env.home / "agents").mkdir(exist_ok=True)
    (env.home / "bottles" / "cc-measure.md").write_text(_bottle_file())
    (env.home / "agents" / "cc.md").write_text("---\nbottle: cc-measure\n---\n")
    (env.home / "upstream-ca.pem").write_bytes(standins.trust_bundle())
    before = len(standins.received())
    up = env.cli("up", "cc", "--no-workspace", "--detach", "--yes", "--json", env_extra={name: value})
    bottle = AgentBottle(json.loads(up.stdout)["slug"], env)
    term = None
    try:
        connect(standins.network, bottle.bundle, REQUIRED_HOSTS)
        version = bottle.sh("claude --version").stdout
        assert CLAUDE_CODE_VERSION in version, version
        term = Terminal([sys.executable, "-m", "claude_bottle", "attach", bottle.slug],
                        {k: v for k, v in env.environ.items() if k.startswith(("CLAUDE_BOTTLE_", "PATH"))})
        term.wait_for("❯", refuse=DIALOGS, timeout=90)
        term.type("hello there")
        term.wait_for(REPLY, refuse=DIALOGS, timeout=60)
        term.type("/exit")
        term.wait_for("SESSION-ENDED 0", timeout=30)
        audit = bottle.audit()
        refused = {str(r["host"]) for r in audit if r.get("verdict") == "deny"}
        unknown = refused - set(OPTIONAL_HOSTS)
        assert not unknown, (f"Claude Code {CLAUDE_CODE_VERSION} contacted hosts the bottle lists neither "
                             f"as required nor optional: {sorted(unknown)}")
        got = standins.received()[before:]
        assert {str(r["host"]).split(":")[0] for r in got} <= set(REQUIRED_HOSTS), got
        messages = [r for r in got if str(r["path"]).startswith("/v1/messages")]
        assert messages, got
        # the proxy put the real value in; the agent only ever held a placeholder
        assert all(value[-6:] in json.dumps(r["auth"]) for r in messages), messages
        assert value not in bottle.sh(f"env; cat ~/.claude.json; printenv {name}").stdout
    finally:
        if term is not None:
            term.close()
        docker("network", "disconnect", "--force", standins.network, bottle.bundle, check=False)
        env.cli("down", bottle.slug, "--yes", "--discard", check=False)
