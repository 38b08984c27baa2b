"""The egress proxy's decision logic (pure, importable on the host) and its mitmproxy addon."""
