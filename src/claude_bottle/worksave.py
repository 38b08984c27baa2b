"""Nothing the agent did is lost when a bottle ends, unless the user says so (issue 9).

Before ``down`` (and the end of an ``up`` session, and ``down --all``) removes an agent whose workspace
is a git clone, :data:`SAVE_SCRIPT` runs in it as the agent user:

* every local branch with commits the gate lacks is pushed: the agent's own ``claude/<slug>`` and
  ``claude/<slug>/*`` under their names, any other local branch ``b`` as ``claude/<slug>/b``; one that
  cannot go there (it diverged from the gate's branch of that name) goes to ``claude/<slug>-saved/b``;
* uncommitted and untracked changes (not ignored files) become one commit on ``claude/<slug>-wip``,
  built with a scratch index so the agent's own index and HEAD are untouched.

The pushes go through git-gate like any other (its scope, history and secret checks apply), land in
the bottle's mirror, and ``down`` keeps the state dir until ``fetch`` brings them home. If a push is
refused, the script says which and exits non-zero, and ``down`` keeps the bottle: ``--discard`` is
the only way to drop the work.
"""

from __future__ import annotations

__all__ = ["CHANGED", "CHANGED_ARGV", "KEPT_WORKSPACE", "SAVE_SCRIPT", "save_argv"]

# A copied workspace has no gate: ``down`` keeps a copy of it in the state dir under this name when the
# agent changed a file in it, which CHANGED_ARGV (run in the agent) answers with exit status CHANGED.
KEPT_WORKSPACE = "workspace"
CHANGED = 10
CHANGED_ARGV = ("sh", "-c", 'find /workspace -newer "$HOME/.claude/CLAUDE.md" \\( -type f -o -type l \\) '
                            f'-print 2>/dev/null | grep -q . && exit {CHANGED}; exit 0')

SAVE_SCRIPT = r"""
set -u
slug=$1
own="claude/$slug"
say() { printf 'claude-bottle: %s\n' "$*" >&2; }
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || exit 0
gate=
for r in $(git remote); do
  case "$(git remote get-url "$r" 2>/dev/null)" in */workspace.git) gate=$r ;; esac
done
[ -n "$gate" ] || { say "no git-gate remote in /workspace: nothing to save there"; exit 0; }
failed=0 saved=
for b in $(git for-each-ref --format='%(refname:short)' refs/heads/); do
  case "$b" in
    "$own"|"$own"/*|"$own-wip") target=$b ;;
    claude-bottle-start/*) continue ;;
    *) target="$own/$b" ;;
  esac
  [ "$(git rev-list --count "$b" --not --remotes="$gate" 2>/dev/null || echo 1)" = 0 ] && continue
  if git push --quiet "$gate" "refs/heads/$b:refs/heads/$target" 2>/tmp/.claude-bottle-push.err; then
    saved="$saved $target"
  elif git push --quiet --force "$gate" "refs/heads/$b:refs/heads/$own-saved/$b" \
       2>>/tmp/.claude-bottle-push.err; then
    saved="$saved $own-saved/$b"  # diverged from what the gate holds under that name: kept beside it
  else
    failed=1; say "could not push $b to $target: $(tail -n 3 /tmp/.claude-bottle-push.err | tr '\n' ' ')"
  fi
done
if [ -n "$(git status --porcelain --untracked-files=all 2>/dev/null)" ]; then
  idx=$(mktemp)
  if GIT_INDEX_FILE=$idx git read-tree HEAD && GIT_INDEX_FILE=$idx git add -A . \
     && tree=$(GIT_INDEX_FILE=$idx git write-tree) \
     && commit=$(git commit-tree "$tree" -p HEAD \
                 -m "Work in progress in bottle $slug (uncommitted when it ended)") \
     && git push --quiet --force "$gate" "$commit:refs/heads/$own-wip" 2>/tmp/.claude-bottle-push.err; then
    saved="$saved $own-wip(uncommitted)"
  else
    failed=1
    say "could not save uncommitted work to $own-wip: $(tail -n 3 /tmp/.claude-bottle-push.err | tr '\n' ' ')"
  fi
  rm -f "$idx"
fi
[ -n "$saved" ] && say "saved to the bottle's mirror:$saved"
exit $failed
"""


def save_argv(slug: str) -> list[str]:
    """The argv that runs :data:`SAVE_SCRIPT` in the agent (as the agent user, in /workspace)."""
    return ["sh", "-c", SAVE_SCRIPT, "claude-bottle-save", slug]
