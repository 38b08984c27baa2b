"""A throw-away test CA and one server certificate for some names (host openssl), for the local HTTPS
servers the integration tests run in containers. The proxy trusts it through the extra-CA setting,
as a user behind TLS inspection would configure it."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.integration.dockerkit import HOST_CA

__all__ = ["make_certs", "trust_bundle"]


def make_certs(directory: Path, names: Sequence[str], *, label: str = "claude-bottle test") -> None:
    """``ca.pem``, ``server.pem`` and ``server.key`` (readable by a container's server) in
    ``directory``, the server certificate naming every one of ``names``."""

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={label} CA",
        "-keyout", "ca.key", "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={names[0]}", "-keyout", "server.key",
        "-out", "server.csr")
    (directory / "ext.cnf").write_text("subjectAltName=" + ",".join(f"DNS:{n}" for n in names)
                                       + "\nextendedKeyUsage=serverAuth\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-out", "server.pem", "-extfile", "ext.cnf")
    for name in ("server.key", "server.pem", "ca.pem"):
        (directory / name).chmod(0o644)
    directory.chmod(0o755)


def trust_bundle(directory: Path) -> bytes:
    """The host's CA bundle (this machine's TLS inspection) plus the test CA made in ``directory``."""
    host = HOST_CA.read_bytes() if HOST_CA.is_file() else b""
    return host + b"\n" + (directory / "ca.pem").read_bytes()
