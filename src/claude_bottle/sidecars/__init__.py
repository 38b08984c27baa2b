"""Programs that run inside the sidecar bundle container (init, egress proxy addon, DNS).

This package is copied alone into the sidecars image (under an empty ``claude_bottle`` package), so its
modules import only the standard library, each other, PyYAML and, in the addon only, mitmproxy. The
decision logic (``policy``, ``netcheck``, ``hosts``) stays importable on the host's Python for unit tests.
"""
