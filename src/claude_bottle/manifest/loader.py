"""Find and resolve the agent and bottle definitions ``up`` and ``info`` use.

Where definitions come from, and why:

* agents: ``./.claude-bottle/agents/<name>.md`` (the project), then ``$CLAUDE_BOTTLE_HOME/agents/``,
  then the built-in ``claude``. A project agent may pick a bottle and write a prompt, but not read
  host variables: a cloned repository must not choose which host secrets enter the bottle.
* bottles: ``$CLAUDE_BOTTLE_HOME/bottles/<name>.md`` only, then the built-in ``default``. A bottle
  says where secrets go and what the agent may reach, so a cloned repository never defines one; a
  bottle file under ``./.claude-bottle/bottles/`` is ignored with a warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from claude_bottle.errors import BottleError
from claude_bottle.manifest import checks
from claude_bottle.manifest.builtins import BUILTIN_AGENTS, BUILTIN_BOTTLES
from claude_bottle.manifest.model import AgentDef, BottleDef, Definitions
from claude_bottle.manifest.nodes import MAX_BYTES
from claude_bottle.manifest.parse import ParsedAgent, parse_agent, parse_bottle

if TYPE_CHECKING:
    from claude_bottle.config import Settings

__all__ = ["Definitions", "available_agents", "available_bottles", "resolve_definitions"]

PROJECT_DIR = ".claude-bottle"
DEFAULT_AGENT = "claude"


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_BYTES:
            raise BottleError(f"{path}: larger than {MAX_BYTES} bytes; a definition is a short file")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BottleError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise BottleError(f"{path}: cannot read ({exc.strerror})") from None


def _project_root(settings: Settings, cwd: Path) -> Path | None:
    """``./.claude-bottle``, unless it is the home itself (``up`` run from the home's parent)."""
    root = cwd / PROJECT_DIR
    if not root.is_dir() or root.resolve() == settings.home.resolve():
        return None
    return root


def _names(directory: Path | None) -> set[str]:
    if directory is None or not directory.is_dir():
        return set()
    return {p.stem for p in directory.glob("*.md") if checks.name_problem(p.stem) is None}


def available_agents(*, settings: Settings, cwd: Path) -> list[str]:
    project = _project_root(settings, cwd)
    return sorted(
        set(BUILTIN_AGENTS) | _names(settings.agents_dir) | _names(project / "agents" if project else None)
    )


def available_bottles(*, settings: Settings) -> list[str]:
    return sorted(set(BUILTIN_BOTTLES) | _names(settings.bottles_dir))


def _ignored_bottle_warnings(settings: Settings, project: Path | None) -> list[str]:
    if project is None or not (project / "bottles").is_dir():
        return []
    return [
        f"{path} is ignored: bottles come only from {settings.bottles_dir}/, because a cloned repository "
        "must never define where secrets go (copy it there if you trust it)"
        for path in sorted((project / "bottles").glob("*.md"))
    ]


def _project_file(path: Path, cwd: Path) -> Path:
    """A project file must be a file inside the project: a symlink out of it could feed any file of
    the user's (a key, a token) into the bottle as the agent's prompt."""
    real = path.resolve()
    if not real.is_relative_to(cwd.resolve()):
        raise BottleError(f"{path}: points outside the project ({real}); copy the file in instead")
    if not real.is_file():
        raise BottleError(f"{path}: not a regular file")
    return path


def _load_agent(name: str, settings: Settings, cwd: Path, warnings: list[str]) -> ParsedAgent:
    project = _project_root(settings, cwd)
    home_file = settings.agents_dir / f"{name}.md"
    if project is not None and (project / "agents" / f"{name}.md").exists():
        path = _project_file(project / "agents" / f"{name}.md", cwd)
        if home_file.is_file():
            warnings.append(f"{path} overrides {home_file}")
        elif name in BUILTIN_AGENTS:
            # A cloned repository's agent takes the built-in's name: plain `claude-bottle up` runs it.
            warnings.append(f"{path} overrides the built-in agent {name!r}")
        parsed = parse_agent(name=name, path=str(path), text=_read(path), project=True)
        if "bottle" in parsed.lines:
            # The repository picks which of your bottles (egress, secrets) its agent gets: say so.
            warnings.append(f"{path} (from this project) runs in your bottle {parsed.agent.bottle!r}")
        return parsed
    if home_file.is_file():
        return parse_agent(name=name, path=str(home_file), text=_read(home_file), project=False)
    if name in BUILTIN_AGENTS:
        return ParsedAgent(agent=BUILTIN_AGENTS[name]())
    where = f"./{PROJECT_DIR}/agents/{name}.md or {home_file}"
    available = ", ".join(available_agents(settings=settings, cwd=cwd))
    raise BottleError(f"unknown agent {name!r} (available: {available}); define it in {where}")


def _load_bottle(parsed: ParsedAgent, settings: Settings, cwd: Path) -> BottleDef:
    agent = parsed.agent
    path = settings.bottles_dir / f"{agent.bottle}.md"
    if path.is_file():
        return parse_bottle(name=agent.bottle, path=str(path), text=_read(path))
    if agent.bottle in BUILTIN_BOTTLES:
        return BUILTIN_BOTTLES[agent.bottle]()
    where = f"{agent.source}:{parsed.lines['bottle']}" if "bottle" in parsed.lines else agent.source
    available = ", ".join(available_bottles(settings=settings))
    project = _project_root(settings, cwd)
    ignored = ""
    if project is not None and (project / "bottles" / f"{agent.bottle}.md").exists():
        ignored = (
            f"; {project / 'bottles' / f'{agent.bottle}.md'} is ignored: bottles never come from a project"
        )
    raise BottleError(
        f"{where}: agent {agent.name!r} uses bottle {agent.bottle!r}, which does not exist "
        f"(available: {available}); create {path}{ignored}"
    )


def _cross_check(parsed: ParsedAgent, bottle: BottleDef) -> None:
    agent: AgentDef = parsed.agent
    for secret in bottle.secrets:
        if secret.name in agent.env:
            line = parsed.lines.get(f"env.{secret.name}", 1)
            raise BottleError(
                f"{agent.source}:{line}: env.{secret.name} would replace the placeholder of bottle "
                f"{bottle.name!r}'s secret {secret.name!r}; remove it from the agent"
            )


def resolve_definitions(*, settings: Settings, cwd: Path, agent: str | None) -> Definitions:
    """Resolve agent ``agent`` (``None``: the built-in ``claude``) and the bottle it names."""
    name = agent or DEFAULT_AGENT
    problem = checks.name_problem(name)
    if problem:
        raise BottleError(f"agent name {name!r} {problem}")
    warnings = _ignored_bottle_warnings(settings, _project_root(settings, cwd))
    parsed = _load_agent(name, settings, cwd, warnings)
    bottle = _load_bottle(parsed, settings, cwd)
    _cross_check(parsed, bottle)
    return Definitions(agent=parsed.agent, bottle=bottle, warnings=tuple(warnings))
