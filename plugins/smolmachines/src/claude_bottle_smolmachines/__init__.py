"""claude-bottle's smolmachines backend."""

from __future__ import annotations

from claude_bottle_smolmachines.backend import SmolmachinesBackend

__all__ = ["SmolmachinesBackend"]
