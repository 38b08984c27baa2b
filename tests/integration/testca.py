"""A throw-away test CA and one server certificate for some names (host openssl), for the local HTTPS
servers the integration tests run in containers. The proxy trusts it through the extra-CA setting,
as a user behind TLS inspection would configure it."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from tests.integration.dockerkit import HOST_CA, docker
from tests.integration.upstream import _sidecars_image

__all__ = ["TlsService", "make_certs", "trust_bundle"]


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


class TlsService:
    """A local HTTPS service for a test: one labelled network holding one labelled container that runs
    ``script`` (``python3 -c``, in the sidecars image) with a certificate for every name in ``names``
    (reachable under each as a network alias), from a throw-away CA. Subclasses name the script, the
    names and what to read back; a bottle reaches it once its bundle joins ``network``."""

    names: tuple[str, ...] = ()
    script = ""
    prefix = "cb-service"

    def __init__(self, home: Path, *, label: str, names: Sequence[str] | None = None) -> None:
        if names is not None:
            self.names = tuple(names)
        self.id = uuid.uuid4().hex[:8]
        self.name = self.network = f"{self.prefix}-{self.id}"
        self.labels = ["--label", f"{label}={home}"]
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))

    def __enter__(self) -> Self:
        try:
            make_certs(self.dir, self.names)
            docker("network", "create", *self.labels, self.network)
            aliases = [arg for n in self.names for arg in ("--network-alias", n)]
            docker("run", "-d", "--name", self.name, *self.labels, "--network", self.network, *aliases,
                   "--mount", f"type=bind,source={self.dir},target=/certs,readonly",
                   "--entrypoint", "python3", _sidecars_image(), "-c", self.script)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        docker("rm", "-f", self.name, check=False)
        docker("network", "rm", self.network, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def ca(self) -> str:
        return (self.dir / "ca.pem").read_text()

    def trust_bundle(self) -> bytes:
        return trust_bundle(self.dir)

    def records(self, path: str = "/tmp/requests.jsonl") -> list[dict[str, object]]:
        """The JSON lines the service wrote to ``path`` (what it received)."""
        out = docker("exec", self.name, "sh", "-c", f"cat {path} 2>/dev/null || true")
        return [json.loads(line) for line in out.splitlines() if line.strip()]
