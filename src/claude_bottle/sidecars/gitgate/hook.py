"""git-gate's pre-receive hook: policy, secret scan, then forwarding to declared remotes.

git-receive-pack runs it in the mirror with the pushed objects still in quarantine; a non-zero exit
rejects the whole push and nothing is kept. Everything printed on stderr reaches the agent as
``remote: git-gate: ...``. The gate installs this hook itself (see ``server.install_hooks``); the agent
speaks only the git protocol, so it can change neither hooks nor config.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from claude_bottle.sidecars.gitgate.config import GateConfig, RemoteConfig, branch_matches
from claude_bottle.sidecars.gitgate.policy import Update, check_updates
from claude_bottle.sidecars.gitgate.remotes import RemoteError, push_to
from claude_bottle.sidecars.gitgate.scan import new_commits, scan_commits
from claude_bottle.sidecars.logfile import RotatingFile

__all__ = ["CONFIG_ENV", "REMOTE_ENV", "log_event", "main"]

CONFIG_ENV = "CLAUDE_BOTTLE_GITGATE_CONFIG"
REMOTE_ENV = "CLAUDE_BOTTLE_GITGATE_REMOTE"   # set when the agent pushed to a declared remote's URL
CACHES_ENV = "CLAUDE_BOTTLE_GITGATE_CACHES"   # os.pathsep-separated remote caches (their refs are not new)


def git(*args: str, input: str | None = None) -> str:
    proc = subprocess.run(["git", *args], input=input.encode() if input is not None else None,
                          capture_output=True, check=True)
    return proc.stdout.decode(errors="replace")


def is_ancestor(old: str, new: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", old, new],
                          capture_output=True, check=False).returncode == 0


def _say(text: str) -> None:
    print(f"git-gate: {text}", file=sys.stderr, flush=True)


_LOGS: dict[str, RotatingFile] = {}


def log_event(log_path: str, /, **event: object) -> None:
    """One JSON line per decision in the bottle's log (state_dir/logs, i.e. /var/log/claude-bottle).
    The agent drives how many (one per HTTP request), so the file is capped on the host's disk."""
    line = json.dumps({"time": time.time(), "source": "git-gate", **event}) + "\n"
    with contextlib.suppress(OSError):
        _LOGS.setdefault(log_path, RotatingFile(log_path)).write(line.encode())


def _log(config: GateConfig, **event: object) -> None:
    log_event(config.log, **event)


def _cache_tips() -> list[str]:
    tips: list[str] = []
    for cache in filter(None, os.environ.get(CACHES_ENV, "").split(os.pathsep)):
        try:
            out = git(f"--git-dir={cache}", "for-each-ref", "--format=%(objectname)")
        except subprocess.CalledProcessError:
            continue
        tips.extend(f"^{sha}" for sha in out.split())
    return tips


def _targets(config: GateConfig, remote_name: str | None, up: Update) -> list[RemoteConfig]:
    if up.deletes:
        return []
    if remote_name is not None:
        remote = config.remote(remote_name)
        return [remote] if remote else []
    return [r for r in config.remotes if branch_matches(up.ref, r.branches or config.push)]


def _forward(config: GateConfig, updates: list[Update], remote_name: str | None) -> list[str]:
    plan: dict[str, tuple[RemoteConfig, list[str]]] = {}
    for up in updates:
        fast_forward = up.creates or is_ancestor(up.old, up.new)
        for remote in _targets(config, remote_name, up):
            spec = f"{'' if fast_forward else '+'}{up.new}:{up.ref}"
            plan.setdefault(remote.name, (remote, []))[1].append(spec)
    errors: list[str] = []
    for name, (remote, refspecs) in plan.items():
        try:
            push_to(config, remote, refspecs, os.environ)
            _say(f"forwarded {', '.join(s.split(':', 1)[1] for s in refspecs)} to {name}")
        except RemoteError as exc:
            errors.append(str(exc))
    return errors


def _own_values(commits: list[str]) -> list[str]:
    """This bottle's own secret values (and placeholders), raw or encoded as the egress proxy's request
    scanner knows them, in what ``commits`` add: messages, file names and added lines. A push that is
    forwarded to a declared remote is egress like any request, so it passes the same scan. Names the
    secret and the commit, never the value."""
    from claude_bottle.sidecars.config import CONFIG_PATH, load_bundle_config  # noqa: PLC0415
    from claude_bottle.sidecars.egress.dlp import RequestParts  # noqa: PLC0415 - bundle-side only
    from claude_bottle.sidecars.egress.inject import CredentialStore  # noqa: PLC0415

    # The bundle always has its config; the host's unit tests run this hook without one.
    config = Path(os.environ.get("CLAUDE_BOTTLE_BUNDLE_CONFIG", CONFIG_PATH))
    expected = load_bundle_config(config).credentials if config.is_file() else ()
    # Raises while the bottle's credentials are missing (a restarted bundle): the push is refused.
    _, scanner = CredentialStore(expected=expected).refresh()
    if not scanner.needles:
        return []
    out = []
    for commit in commits:
        shown = git("show", "--no-color", "--no-ext-diff", "--no-textconv", "--text", "--format=%an%n%ae%n%B",
                    commit)
        head, _, diff = shown.partition("\ndiff --git ")
        added = [ln for ln in diff.splitlines() if ln.startswith(("+", "rename to ", "copy to "))]
        body = "\n".join([head, *added]).encode("utf-8", "replace")
        for finding in scanner.scan(RequestParts("PUSH", "git-gate", "", body=body), patterns=False):
            out.append(f"commit {commit[:12]}: {finding.describe()}")
    return list(dict.fromkeys(out))


def main() -> int:
    try:
        return _main()
    except Exception as exc:  # fail closed: a broken check refuses the push, it never lets it through
        _say(f"refused push: rule internal-error: {type(exc).__name__}: {exc}")
        return 1


def _main() -> int:
    config = GateConfig.load(os.environ[CONFIG_ENV])
    remote_name = os.environ.get(REMOTE_ENV) or None
    updates = [Update(*line.split()) for line in sys.stdin.read().splitlines() if line.strip()]
    baseline = json.loads(Path(config.baseline).read_text()) if Path(config.baseline).is_file() else {}
    remote = config.remote(remote_name) if remote_name else None
    refusals = check_updates(
        updates, push=config.push, baseline=baseline, is_ancestor=is_ancestor,
        remote=remote_name, remote_branches=(remote.branches or config.push) if remote else (),
    )
    for refusal in refusals:
        _say(refusal.line())
        _log(config, verdict="refused", ref=refusal.ref, rule=refusal.rule, reason=refusal.reason)
    if refusals:
        return 1
    tips = [u.new for u in updates if not u.deletes]
    commits = new_commits(git, tips, _cache_tips())
    if any(_targets(config, remote_name, up) for up in updates):
        own = _own_values(commits)
        for line in own:
            _say(f"refused push: rule own-secret: {line}")
            _log(config, verdict="refused", rule="own-secret", reason=line)
        if own:
            _say("this bottle's secrets never leave it, and a declared remote is a way out like any host")
            return 1
    if config.scan:
        tags = [t for t in tips if git("cat-file", "-t", t).strip() == "tag"]
        findings = scan_commits(git, commits, tags)
        for finding in findings:
            _say(f"refused push: rule secret-scan: {finding.line_text()}")
            _log(config, verdict="refused", rule="secret-scan", path=finding.path, line=finding.line,
                 kind=finding.kind, commit=finding.commit)
        if findings:
            _say("remove the secret from every commit (rewrite your own commits), then push again")
            return 1
    errors = _forward(config, updates, remote_name)
    for error in errors:
        _say(f"refused push: rule forward: {error}")
        _log(config, verdict="refused", rule="forward", reason=error)
    if errors:
        return 1
    for up in updates:
        _log(config, verdict="accepted", ref=up.ref, old=up.old, new=up.new, remote=remote_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
