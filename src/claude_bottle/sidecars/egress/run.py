"""The ``egress`` daemon: make this bottle's CA, export it, build the upstream trust store, then run
``mitmdump`` with our addon. Run by the bundle's init as ``python3 -m claude_bottle.sidecars.egress.run``.

The CA is generated here, fresh, in a tmpfs confdir, and exported *before* mitmdump listens: by the
time the proxy answers, ``/run/claude-bottle/ca/ca.pem`` is complete (written then renamed).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from claude_bottle.sidecars.config import (
    CA_EXPORT,
    CONFIG_PATH,
    UPSTREAM_CA,
    BundleConfig,
    load_bundle_config,
)

__all__ = ["main", "mitmdump_argv"]

RUN_DIR = Path("/run/claude-bottle")
CONFDIR = RUN_DIR / "mitmproxy"
TRUST = RUN_DIR / "upstream-trust.pem"
SYSTEM_STORE = Path("/etc/ssl/certs/ca-certificates.crt")
SCRIPT = Path(__file__).with_name("mitm_script.py")


def make_ca(cfg: BundleConfig, confdir: Path = CONFDIR, export: Path = Path(CA_EXPORT)) -> Path:
    from mitmproxy.certs import CertStore  # noqa: PLC0415 - bundle-only dependency

    if confdir.exists():
        shutil.rmtree(confdir)  # never reuse a CA, not even across a restart of this container
    confdir.mkdir(parents=True, mode=0o700)
    CertStore.create_store(confdir, "mitmproxy", 2048, organization="claude-bottle",
                           cn=f"claude-bottle {cfg.slug} CA")
    export.parent.mkdir(parents=True, exist_ok=True)
    tmp = export.with_suffix(".tmp")
    shutil.copyfile(confdir / "mitmproxy-ca-cert.pem", tmp)
    tmp.chmod(0o644)
    tmp.replace(export)
    return export


def trust_store(extra: Path = Path(UPSTREAM_CA), system: Path = SYSTEM_STORE, out: Path = TRUST) -> Path:
    """The system store plus the extra CA mounted at run time (corporate TLS inspection)."""
    parts = [system.read_bytes()]
    if extra.is_file():
        parts.append(extra.read_bytes())
    out.write_bytes(b"\n".join(parts))
    return out


def mitmdump_argv(cfg: BundleConfig, *, trust: Path, confdir: Path = CONFDIR) -> list[str]:
    return [
        "mitmdump",
        "--listen-port", str(cfg.proxy_port),
        "--set", f"confdir={confdir}",
        "--set", "connection_strategy=lazy",      # no upstream socket before our checks have run
        "--set", f"ssl_verify_upstream_trusted_ca={trust}",
        "--set", "flow_detail=0",                  # the audit log is the record; keep docker logs quiet
        "--set", "termlog_verbosity=warn",
        "--set", "http3=false",
        "--set", "rawtcp=false",                   # never relay bytes that are not HTTP(S) (decision 0010)
        # Responses past 1 MiB stream to the agent in bounded memory; request bodies never stream
        # (guard.install_body_cap scans them whole), nor do responses the credential checks must read.
        "--set", "stream_large_bodies=1m",
        "-s", str(SCRIPT),
    ]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else CONFIG_PATH
    cfg = load_bundle_config(path)
    make_ca(cfg)
    trust = trust_store()
    os.environ["CLAUDE_BOTTLE_BUNDLE_CONFIG"] = path
    # mitmdump's own entry point, in this process: no second interpreter start-up and import of
    # mitmproxy (half of the bundle's time to readiness).
    from mitmproxy.tools.main import mitmdump  # noqa: PLC0415 - bundle-only dependency

    return mitmdump(mitmdump_argv(cfg, trust=trust)[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
