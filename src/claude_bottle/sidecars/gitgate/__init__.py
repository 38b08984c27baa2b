"""git-gate: the bundle's only git path out of a bottle (smart HTTP server, pre-receive policy, secret
scan, forwarding to declared remotes). Stdlib and git only, plus detect-secrets for the scan."""
