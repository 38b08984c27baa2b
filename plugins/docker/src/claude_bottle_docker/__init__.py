"""claude-bottle's docker backend."""

from __future__ import annotations

from claude_bottle_docker.backend import DockerBackend

__all__ = ["DockerBackend"]
