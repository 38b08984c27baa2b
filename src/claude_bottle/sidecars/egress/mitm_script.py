"""Entry point ``mitmdump -s`` loads: one :class:`EgressAddon` configured from ``bundle.yaml``."""

from __future__ import annotations

import os

from claude_bottle.sidecars.config import CONFIG_PATH, load_bundle_config
from claude_bottle.sidecars.egress.addon import EgressAddon

addons = [EgressAddon(load_bundle_config(os.environ.get("CLAUDE_BOTTLE_BUNDLE_CONFIG", CONFIG_PATH)))]
