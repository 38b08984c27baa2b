"""Importable targets for entry points in discovery tests (``tests.fakes:GoodBackend`` and so on)."""

from __future__ import annotations

from claude_bottle.testing import FakeBackend


class GoodBackend(FakeBackend):
    NAME = "good"


class OtherBackend(FakeBackend):
    NAME = "other"


class NotABackend:
    NAME = "notabackend"


class MisnamedBackend(FakeBackend):
    NAME = "something-else"
