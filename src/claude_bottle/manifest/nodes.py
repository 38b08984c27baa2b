"""Front matter splitting and typed reads of YAML nodes, every error naming ``file:line``.

We compose YAML to nodes (never construct Python objects from the whole document) so each value keeps
its position: a schema error can then point at the line the user must fix. Aliases are expanded by the
composer into shared nodes, which is harmless here because every read is bounded by the schema.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from claude_bottle.errors import BottleError

__all__ = ["Doc", "split_front_matter"]

MAX_BYTES = 1 << 20  # a definition is a few dozen lines; anything this big is a mistake

_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SCALAR_TAGS = {_STR, _BOOL, "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}


def _fence(line: str) -> bool:
    return line.rstrip("\r\n").rstrip() == "---"


def split_front_matter(path: str, text: str) -> tuple[str, str]:
    """Return ``(yaml_text, body)``. The YAML text starts on line 2 of the file."""
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise BottleError(
            f"{path}:1: empty file", hint="start it with a '---' line, the YAML keys, and '---'"
        )
    lines = text.splitlines(keepends=True)
    if not _fence(lines[0]):
        raise BottleError(
            f"{path}:1: missing front matter",
            hint="the file must start with a '---' line, then YAML keys, then '---'",
        )
    for index in range(1, len(lines)):
        if _fence(lines[index]):
            return "".join(lines[1:index]), "".join(lines[index + 1 :])
    raise BottleError(f"{path}:1: front matter is not closed", hint="add a '---' line after the YAML keys")


@dataclass(frozen=True)
class Doc:
    """One manifest file being read; its path starts every error message."""

    path: str

    # -- positions and errors -------------------------------------------------------------------
    def line(self, node: Node) -> int:
        return node.start_mark.line + 2  # +1 for 1-based lines, +1 for the opening '---'

    def error(self, node: Node, message: str, hint: str | None = None) -> BottleError:
        return BottleError(f"{self.path}:{self.line(node)}: {message}", hint=hint)

    def compose(self, yaml_text: str) -> Node | None:
        try:
            return yaml.compose(yaml_text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            if exc.context_mark is not None and mark is not None and mark.index >= len(yaml_text.rstrip()):
                # The parser ran off the end (an unclosed bracket or quote): the line where the
                # unfinished thing started is the one to fix, not the closing '---'.
                mark = exc.context_mark
            line = mark.line + 2 if mark is not None else 1
            problem = " ".join(str(exc.problem or exc.context or "unreadable").split())
            context = exc.context_mark
            if exc.context and context is not None and mark is not None and context.line != mark.line:
                problem = f"{problem} ({' '.join(exc.context.split())} started on line {context.line + 2})"
            elif exc.context and mark is context:
                problem = f"{' '.join(exc.context.split())}: {problem}"
            raise BottleError(f"{self.path}:{line}: invalid YAML: {problem}") from None
        except yaml.YAMLError as exc:
            problem = " ".join(str(exc).split())
            raise BottleError(f"{self.path}:1: invalid YAML: {problem}") from None
        except RecursionError:
            # The composer recurses per nesting level; a hostile file must not crash the CLI.
            raise BottleError(f"{self.path}:1: invalid YAML: nested too deeply") from None

    # -- typed reads ------------------------------------------------------------------------------
    def is_null(self, node: Node) -> bool:
        return isinstance(node, ScalarNode) and node.tag == _NULL

    def mapping(self, node: Node, where: str, allowed: Iterable[str] | None = None) -> dict[str, Node]:
        """Read a mapping with string keys (``null`` is an empty mapping); refuse duplicate keys and,
        when ``allowed`` is given, unknown keys with a "did you mean" hint."""
        if self.is_null(node):
            return {}
        if not isinstance(node, MappingNode):
            raise self.error(node, f"{where} must be a mapping")
        known = sorted(allowed) if allowed is not None else None
        result: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not (isinstance(key_node, ScalarNode) and key_node.tag in _SCALAR_TAGS):
                raise self.error(key_node, f"keys of {where} must be strings")
            key = key_node.value
            if key in result:
                raise self.error(key_node, f"duplicate key {key!r} in {where}")
            if known is not None and key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
                raise self.error(key_node, f"unknown key {key!r} in {where}", hint=hint)
            result[key] = value_node
        return result

    def sequence(self, node: Node, where: str) -> list[Node]:
        if self.is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            raise self.error(node, f"{where} must be a list")
        return list(node.value)

    def string(self, node: Node, where: str) -> str:
        if not (isinstance(node, ScalarNode) and node.tag == _STR):
            raise self.error(node, f"{where} must be a string")
        return node.value

    def scalar_text(self, node: Node, where: str) -> str:
        """A string, or a number/boolean taken as written (``1``, ``yes``): YAML 1.1 would turn
        ``no`` into False, which is never what an environment value means."""
        if not (isinstance(node, ScalarNode) and node.tag in _SCALAR_TAGS):
            raise self.error(node, f"{where} must be a string")
        return node.value

    def boolean(self, node: Node, where: str) -> bool:
        if not (isinstance(node, ScalarNode) and node.tag == _BOOL):
            raise self.error(node, f"{where} must be true or false")
        return bool(yaml.constructor.SafeConstructor().construct_yaml_bool(node))

    def strings(self, node: Node, where: str) -> list[tuple[str, Node]]:
        """A list of strings (a single string is not accepted: say ``[a]``)."""
        return [
            (self.string(item, f"{where}[{i}]"), item) for i, item in enumerate(self.sequence(node, where))
        ]
