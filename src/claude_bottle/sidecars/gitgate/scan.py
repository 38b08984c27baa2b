"""Secret scan of the commits a push adds, with detect-secrets (pinned in the sidecars image).

Only *new* commits are scanned: those not reachable from any ref the gate already holds (the user's
refs at ``up`` and pushes already accepted) nor from the remote caches the agent fetched. For each new
commit the lines it adds (its diff against its first parent) are scanned, so a secret that is added in
one commit and removed in the next is still found: both commits would leave the bottle.

detect-secrets filters that the pushed content itself controls are switched off, because the agent
could use them to hide a secret: the inline ``pragma: allowlist secret`` comment and the file-name
based skips (lock files, swagger files, "non-text" extensions). ``is_invalid_file`` goes too: it
checks the path on disk, which is meaningless for a diff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = ["Finding", "as_added_file", "new_commits", "scan_commits", "scan_diff_text"]

Git = Callable[..., str]  # git(*args, input=None) -> stdout

_EVADABLE_FILTERS = (
    "detect_secrets.filters.allowlist.is_line_allowlisted",
    "detect_secrets.filters.common.is_invalid_file",
    "detect_secrets.filters.heuristic.is_lock_file",
    "detect_secrets.filters.heuristic.is_swagger_file",
    "detect_secrets.filters.heuristic.is_non_text_file",
)


@dataclass(frozen=True)
class Finding:
    commit: str
    path: str
    line: int
    kind: str

    def line_text(self) -> str:
        return f"{self.path}:{self.line}: {self.kind} (commit {self.commit[:12]})"


def new_commits(git: Git, tips: Iterable[str], exclude: Sequence[str] = ()) -> list[str]:
    """Commits reachable from ``tips`` but from no existing ref (nor from ``exclude``, ``^<sha>`` lines)."""
    tips = [t for t in tips if set(t) != {"0"}]
    if not tips:
        return []
    # git 2.39 takes no options on --stdin, so "--not --all" is spelled out as ^<each ref>.
    refs = [f"^{sha}" for sha in git("for-each-ref", "--format=%(objectname)").split()]
    stdin = "\n".join([*tips, *refs, *exclude]) + "\n"
    out = git("rev-list", "--ignore-missing", "--stdin", input=stdin)
    return [line for line in out.split() if line]


def scan_diff_text(diff: str) -> Iterator[tuple[str, int, str]]:
    """(path, line, kind) for each secret-shaped string among the added lines of ``diff``."""
    # Imported here: only the hook needs detect-secrets, the host-side users of this package do not.
    from detect_secrets.core.scan import scan_diff  # noqa: PLC0415
    from detect_secrets.settings import default_settings  # noqa: PLC0415

    with default_settings() as settings:
        settings.disable_filters(*_EVADABLE_FILTERS)
        for secret in scan_diff(diff):
            yield secret.filename, int(secret.line_number), str(secret.type)


def as_added_file(name: str, text: str) -> str:
    """``text`` as a diff adding file ``name``, so the scanner reads metadata like file content."""
    lines = text.splitlines() or [""]
    body = "".join(f"+{line}\n" for line in lines)
    return f"diff --git a/{name} b/{name}\n--- /dev/null\n+++ b/{name}\n@@ -0,0 +1,{len(lines)} @@\n{body}"


def scan_commits(git: Git, commits: Sequence[str], tags: Sequence[str] = ()) -> list[Finding]:
    """Findings in the lines each commit adds, in its message and in the paths it touches (a key can
    travel in any of them), and in the messages of annotated ``tags``."""
    findings: list[Finding] = []
    for commit in commits:
        # --text: a NUL byte must not turn a file into "Binary files differ" that nobody reads
        diff = git("diff-tree", "-p", "-U0", "--text", "--no-renames", "--no-ext-diff", "--no-textconv",
                   "--no-color", "--root", "--diff-merges=first-parent", "--no-commit-id", commit)
        paths = git("diff-tree", "-r", "--name-only", "--no-renames", "--root", "--diff-merges=first-parent",
                    "--no-commit-id", commit)
        meta = as_added_file("(commit message)", git("log", "-1", "--format=%B", commit)) + \
            as_added_file("(file names)", paths)
        for path, line, kind in scan_diff_text(diff + meta):
            findings.append(Finding(commit, path, line, kind))
    for tag in tags:
        for path, line, kind in scan_diff_text(as_added_file("(tag message)", git("cat-file", "tag", tag))):
            findings.append(Finding(tag, path, line, kind))
    return findings
