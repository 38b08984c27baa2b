"""Parse one bottle or agent file into its definition, refusing anything the schema does not know."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from yaml import Mark
from yaml.nodes import MappingNode, Node, ScalarNode

from claude_bottle.manifest import checks
from claude_bottle.manifest.model import (
    AgentDef,
    AllowRule,
    BottleDef,
    EgressDef,
    EnvKind,
    EnvValue,
    GitDef,
    GitRemote,
    ResourcesDef,
    SecretDef,
)
from claude_bottle.manifest.nodes import Doc, split_front_matter
from claude_bottle.resources import parse_memory

__all__ = ["ParsedAgent", "env_value", "parse_agent", "parse_bottle"]

BOTTLE_KEYS = ("egress", "env", "secrets", "git", "supervise", "resources")
RESOURCE_KEYS = ("memory", "cpus", "pids", "disk")
AGENT_KEYS = ("bottle", "skills", "env", "claude_config")
EGRESS_KEYS = ("allow",)
ALLOW_KEYS = ("host", "methods", "paths", "passthrough", "dlp_exempt", "private", "ports")
SECRET_KEYS = ("from", "hosts", "header", "format", "optional")
GIT_KEYS = ("push", "remotes")
REMOTE_KEYS = ("name", "url", "ssh_key", "host_key", "token", "branches")

# An absent optional key reads as YAML null: an empty list or mapping.
_NOWHERE = Mark("", 0, 0, 0, None, None)  # type: ignore[arg-type]  # PyYAML itself builds marks without a buffer
_ABSENT = ScalarNode("tag:yaml.org,2002:null", "", _NOWHERE, _NOWHERE)

_HOST_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def env_value(text: str) -> EnvValue | str:
    """``"?prompt"``, ``"${HOST_VAR}"`` or a literal; a string return is the reason it is refused."""
    if text.startswith("?"):
        return EnvValue(EnvKind.PROMPT, text[1:].strip())
    match = _HOST_REF.match(text)
    if match:
        return EnvValue(EnvKind.HOST, match.group(1))
    if "${" in text:
        return "uses '${...}' inside a longer value; write exactly '${HOST_VAR}' (no interpolation)"
    return EnvValue(EnvKind.LITERAL, text)


@dataclass(frozen=True)
class ParsedAgent:
    """An agent and the lines of the keys the loader checks against other files."""

    agent: AgentDef
    lines: dict[str, int] = field(default_factory=dict)


def _front(path: str, text: str, kind: str, keys: tuple[str, ...]) -> tuple[Doc, dict[str, Node], str]:
    doc = Doc(path=path)
    yaml_text, body = split_front_matter(path, text)
    root = doc.compose(yaml_text)
    if root is None:
        return doc, {}, body
    if not isinstance(root, MappingNode):
        raise doc.error(
            root, "front matter must be a mapping of keys", hint=f"{kind} keys: {', '.join(keys)}"
        )
    return doc, doc.mapping(root, kind, keys), body


def _check(doc: Doc, node: Node, where: str, value: str, problem: str | None) -> str:
    if problem:
        raise doc.error(node, f"{where} {value!r} {problem}")
    return value


def _env(doc: Doc, node: Node, *, host_allowed: bool = True) -> dict[str, EnvValue]:
    result: dict[str, EnvValue] = {}
    for name, value_node in doc.mapping(node, "env").items():
        _check(doc, value_node, "env name", name, checks.env_name_problem(name))
        parsed = env_value(doc.scalar_text(value_node, f"env.{name}"))
        if isinstance(parsed, str):
            raise doc.error(value_node, f"env.{name} {parsed}")
        if parsed.kind is EnvKind.HOST and not host_allowed:
            raise doc.error(
                value_node,
                f"env.{name} reads host variable {parsed.raw!r}, which an agent from the project may not do",
                hint="a cloned repository must not choose which host secrets enter the bottle; "
                "move the agent to $CLAUDE_BOTTLE_HOME/agents/ or use '?prompt'",
            )
        result[name] = parsed
    return result


def _allow_rule(doc: Doc, node: Node, where: str) -> AllowRule:
    if not isinstance(node, MappingNode):
        if not (isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:str"):
            raise doc.error(node, f"{where} must be a string or a mapping")
        host = node.value
        return AllowRule(host=_check(doc, node, where, host, checks.host_problem(host)))
    keys = doc.mapping(node, where, ALLOW_KEYS)
    if "host" not in keys:
        raise doc.error(node, f"{where} needs a 'host'")
    host = doc.string(keys["host"], f"{where}.host")
    _check(doc, keys["host"], f"{where}.host", host, checks.host_problem(host))
    methods = [
        _check(doc, n, f"{where}.methods", m.upper(), checks.method_problem(m))
        for m, n in doc.strings(keys.get("methods", _ABSENT), f"{where}.methods")
    ]
    paths = [
        _check(doc, n, f"{where}.paths", p, checks.path_problem(p))
        for p, n in doc.strings(keys.get("paths", _ABSENT), f"{where}.paths")
    ]
    flags: dict[str, Any] = {
        k: doc.boolean(keys[k], f"{where}.{k}") for k in ("passthrough", "dlp_exempt", "private") if k in keys
    }
    if "ports" in keys:
        ports = doc.sequence(keys["ports"], f"{where}.ports")
        flags["ports"] = tuple(_port(doc, n, f"{where}.ports") for n in ports)
    if flags.get("passthrough") and (methods or paths):
        raise doc.error(
            node, f"{where}: methods and paths cannot be checked on a passthrough host (TLS is not opened)"
        )
    return AllowRule(host=host, methods=tuple(methods), paths=tuple(paths), **flags)


def _port(doc: Doc, node: Node, where: str) -> int:
    text = doc.scalar_text(node, where)
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise doc.error(node, f"{where}: {text!r} is not a port number (1-65535)")
    return int(text)


def _egress(doc: Doc, node: Node) -> EgressDef:
    keys = doc.mapping(node, "egress", EGRESS_KEYS)
    rules: list[AllowRule] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(doc.sequence(keys.get("allow", _ABSENT), "egress.allow")):
        rule = _allow_rule(doc, item, f"egress.allow[{index}]")
        if rule.host in seen:
            raise doc.error(
                item, f"egress.allow[{index}] repeats host {rule.host!r} (first on line {seen[rule.host]})"
            )
        seen[rule.host] = doc.line(item)
        rules.append(rule)
    return EgressDef(allow=tuple(rules))


def _secret(doc: Doc, name: str, node: Node, egress: EgressDef) -> SecretDef:
    where = f"secrets.{name}"
    keys = doc.mapping(node, where, SECRET_KEYS)
    for required in ("from", "hosts"):
        if required not in keys:
            raise doc.error(node, f"{where} needs '{required}'")
    source = env_value(doc.string(keys["from"], f"{where}.from"))
    if isinstance(source, str) or source.kind is EnvKind.LITERAL:
        raise doc.error(
            keys["from"],
            f"{where}.from must be '${{HOST_VAR}}' or '?prompt text'",
            hint="secrets never live in files",
        )
    hosts = [
        _check(doc, n, f"{where}.hosts", h, checks.host_problem(h))
        for h, n in doc.strings(keys["hosts"], f"{where}.hosts")
    ]
    if not hosts:
        raise doc.error(keys["hosts"], f"{where}.hosts must name at least one host")
    for host, host_node in zip(hosts, doc.sequence(keys["hosts"], ""), strict=True):
        rule = next((r for r in egress.allow if checks.host_covered(host, r.host)), None)
        if rule is None:
            raise doc.error(
                host_node, f"{where}.hosts: {host!r} is not in egress.allow", hint="add it there too"
            )
        if rule.passthrough:
            raise doc.error(
                host_node,
                f"{where}.hosts: {host!r} is passthrough in egress.allow, so the proxy cannot inject it",
            )
    extra: dict[str, object] = {}
    if "header" in keys:
        header = doc.string(keys["header"], f"{where}.header")
        extra["header"] = _check(
            doc, keys["header"], f"{where}.header", header, checks.header_problem(header)
        )
    if "format" in keys:
        fmt = doc.string(keys["format"], f"{where}.format")
        rest = fmt.replace("{value}", "", 1)
        if not fmt.isprintable():
            # A line break in a header value would let the value smuggle extra headers.
            raise doc.error(keys["format"], f"{where}.format must be one line of printable text")
        if "{value}" not in fmt or "{" in rest or "}" in rest:
            raise doc.error(
                keys["format"], f"{where}.format must contain '{{value}}' once and no other braces"
            )
        extra["format"] = fmt
    if "optional" in keys:
        extra["optional"] = doc.boolean(keys["optional"], f"{where}.optional")
    return SecretDef(name=name, source=source, hosts=tuple(hosts), **extra)  # type: ignore[arg-type]


def _remote(doc: Doc, node: Node, where: str) -> GitRemote:
    keys = doc.mapping(node, where, REMOTE_KEYS)
    for required in ("name", "url"):
        if required not in keys:
            raise doc.error(node, f"{where} needs '{required}'")
    name = doc.string(keys["name"], f"{where}.name")
    _check(doc, keys["name"], f"{where}.name", name, checks.remote_name_problem(name))
    url = doc.string(keys["url"], f"{where}.url")
    _check(doc, keys["url"], f"{where}.url", url, checks.remote_url_problem(url))
    ssh = checks.is_ssh_url(url)
    opt = {k: doc.string(keys[k], f"{where}.{k}") for k in ("ssh_key", "host_key", "token") if k in keys}
    token_env = None
    if "token" in opt:
        token = env_value(opt["token"])
        if isinstance(token, str) or token.kind is not EnvKind.HOST:
            raise doc.error(
                keys["token"], f"{where}.token must be '${{HOST_VAR}}'", hint="secrets never live in files"
            )
        if not url.startswith("https://"):
            raise doc.error(
                keys["token"], f"{where}.token needs an https:// URL (it would travel in clear text)"
            )
        token_env = token.raw
    if ssh:
        if "host_key" not in opt:
            raise doc.error(
                node,
                f"{where}: an ssh remote needs 'host_key' (its pinned public host key)",
                hint="ssh-keyscan HOST gives it; fail closed: an unpinned host is never trusted",
            )
        _check(doc, keys["host_key"], f"{where}.host_key", "", checks.host_key_problem(opt["host_key"]))
        if "ssh_key" not in opt:
            raise doc.error(
                node, f"{where}: an ssh remote needs 'ssh_key' (the host path of its private key)"
            )
        if not opt["ssh_key"].startswith(("/", "~")):
            raise doc.error(keys["ssh_key"], f"{where}.ssh_key must be an absolute path or start with '~'")
    else:
        for key in ("ssh_key", "host_key"):
            if key in opt:
                raise doc.error(keys[key], f"{where}.{key} is only for ssh remotes")
    branches = [
        _check(doc, n, f"{where}.branches", b, checks.git_pattern_problem(b))
        for b, n in doc.strings(keys.get("branches", _ABSENT), f"{where}.branches")
    ]
    return GitRemote(
        name=name,
        url=url,
        ssh_key=opt.get("ssh_key"),
        host_key=opt.get("host_key"),
        token_env=token_env,
        branches=tuple(branches),
    )


def _git(doc: Doc, node: Node) -> GitDef:
    keys = doc.mapping(node, "git", GIT_KEYS)
    push = [
        _check(doc, n, "git.push", p, checks.git_pattern_problem(p))
        for p, n in doc.strings(keys.get("push", _ABSENT), "git.push")
    ]
    remotes: list[GitRemote] = []
    for index, item in enumerate(doc.sequence(keys.get("remotes", _ABSENT), "git.remotes")):
        remote = _remote(doc, item, f"git.remotes[{index}]")
        if any(r.name == remote.name for r in remotes):
            raise doc.error(item, f"git.remotes[{index}] repeats remote name {remote.name!r}")
        remotes.append(remote)
    return GitDef(push=tuple(push), remotes=tuple(remotes))


def _resources(doc: Doc, node: Node) -> ResourcesDef:
    keys = doc.mapping(node, "resources")
    for key, value in keys.items():
        if key not in RESOURCE_KEYS:
            raise doc.error(value, f"resources: unknown key {key!r} (known: {', '.join(RESOURCE_KEYS)})")
    if "disk" in keys:
        raise doc.error(keys["disk"], "resources.disk is not available yet: this engine's storage cannot "
                                      "enforce a disk cap (remove it)")
    memory = None
    if "memory" in keys:
        raw = str(getattr(keys["memory"], "value", ""))
        memory = parse_memory(raw)
        if memory is None:
            raise doc.error(keys["memory"], f"resources.memory {raw!r} is not a size of 64m or more "
                                            "(e.g. 4g, 512m)")
    cpus = None
    if "cpus" in keys:
        try:
            cpus = float(keys["cpus"].value)
        except (TypeError, ValueError, AttributeError):
            cpus = -1.0
        if not 0.1 <= cpus <= 1024:
            raise doc.error(keys["cpus"], "resources.cpus must be a number of CPUs, 0.1 or more (e.g. 1.5)")
    pids = None
    if "pids" in keys:
        raw_pids = str(getattr(keys["pids"], "value", ""))
        pids = int(raw_pids) if raw_pids.isdigit() else -1
        if pids < 64:
            raise doc.error(keys["pids"], "resources.pids must be a whole number, 64 or more")
    return ResourcesDef(memory=memory, cpus=cpus, pids=pids)


def parse_bottle(*, name: str, path: str, text: str) -> BottleDef:
    doc, keys, body = _front(path, text, "bottle", BOTTLE_KEYS)
    egress = _egress(doc, keys["egress"]) if "egress" in keys else EgressDef()
    env = _env(doc, keys["env"]) if "env" in keys else {}
    secrets: list[SecretDef] = []
    for secret_name, node in doc.mapping(keys.get("secrets", _ABSENT), "secrets").items():
        _check(doc, node, "secret name", secret_name, checks.env_name_problem(secret_name))
        if secret_name in env:
            raise doc.error(
                node, f"secret {secret_name!r} is also set in env; the agent sees one placeholder there"
            )
        secrets.append(_secret(doc, secret_name, node, egress))
    git = _git(doc, keys["git"]) if "git" in keys else GitDef()
    supervise = doc.boolean(keys["supervise"], "supervise") if "supervise" in keys else False
    if supervise:
        # The key is reserved for the supervise sidecar, which this version does not ship: accepting it
        # would promise a service no bundle runs.
        raise doc.error(keys["supervise"], "supervise is not available in this version "
                                           "(remove it or set it to false)")
    return BottleDef(
        name=name,
        source=path,
        egress=egress,
        env=env,
        secrets=tuple(secrets),
        git=git,
        supervise=supervise,
        resources=_resources(doc, keys["resources"]) if "resources" in keys else ResourcesDef(),
        notes=body.strip(),
    )


def parse_agent(*, name: str, path: str, text: str, project: bool) -> ParsedAgent:
    """``project``: the file came from ``./.claude-bottle/agents/`` (a repository the user may not
    have written), so it may not read host variables."""
    doc, keys, body = _front(path, text, "agent", AGENT_KEYS)
    lines: dict[str, int] = {}
    bottle = "default"
    if "bottle" in keys:
        bottle = doc.string(keys["bottle"], "bottle")
        _check(doc, keys["bottle"], "bottle", bottle, checks.name_problem(bottle))
        lines["bottle"] = doc.line(keys["bottle"])
    skills: list[str] = []
    for skill, node in doc.strings(keys.get("skills", _ABSENT), "skills"):
        skills.append(_check(doc, node, "skill", skill, checks.skill_problem(skill)))
    carry: list[str] = []
    for part, node in doc.strings(keys.get("claude_config", _ABSENT), "claude_config"):
        carry.append(_check(doc, node, "claude_config entry", part, checks.claude_config_problem(part)))
    env: dict[str, EnvValue] = {}
    if "env" in keys:
        env = _env(doc, keys["env"], host_allowed=not project)
        lines.update({f"env.{k}": doc.line(v) for k, v in doc.mapping(keys["env"], "env").items()})
    agent = AgentDef(
        name=name, source=path, bottle=bottle, skills=tuple(skills), prompt=body.strip(), env=env,
        claude_config=tuple(dict.fromkeys(carry)),
    )
    return ParsedAgent(agent=agent, lines=lines)
