"""claude-bottle: run AI coding agents in bottles that reach only what they are granted."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
