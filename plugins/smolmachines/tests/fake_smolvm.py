#!/usr/bin/env python3
"""A stand-in ``smolvm`` for the launch path, which cannot run here: this host's /dev/kvm cannot boot
a microVM (PVM), so ``machine start`` of the real binary always fails. It records every call's argv
(one JSON line in ``$FAKE_SMOLVM_DIR/calls.jsonl``) and keeps machines in ``machines.json`` with the
same ``machine ls --json`` fields the real one prints (name, state, labels, network, dns), so enumerate
and cleanup run against it unchanged. ``FAKE_SMOLVM_FAIL=<verb>`` makes that verb fail.

``machine exec -- getent ahostsv4 NAME`` stands in for the guest's resolver the way smolvm documents it
(the gateway relays to the ``--dns`` address given at create): it sends a real UDP query for NAME to
port 53 of that address and prints what comes back in getent's format, exit status 2 when no address
does. ``FAKE_SMOLVM_DNS_SERVER=<ip>`` makes it ask another server instead, as a smolvm that ignored
``--dns`` would.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
from pathlib import Path

STATE = Path(os.environ["FAKE_SMOLVM_DIR"])


def load() -> dict[str, dict[str, object]]:
    path = STATE / "machines.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save(machines: dict[str, dict[str, object]]) -> None:
    (STATE / "machines.json").write_text(json.dumps(machines))


def fail(code: str, message: str) -> int:
    print(json.dumps({"error": {"code": code, "message": message}}), file=sys.stderr)
    return 1


def opt(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


def resolve(server: str, name: str) -> list[str]:
    """A-record addresses for ``name`` from ``server``:53 over UDP (empty on any refusal or timeout)."""
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    query = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        try:
            sock.sendto(query, (server, 53))
            reply = sock.recv(4096)
        except OSError:
            return []
    _, flags, _, ancount, _, _ = struct.unpack("!HHHHHH", reply[:12])
    if flags & 0x000F:
        return []
    pos, out = len(query), []
    for _ in range(ancount):
        pos += 2  # the name: a compression pointer to the question
        rtype, _, _, length = struct.unpack("!HHIH", reply[pos:pos + 10])
        pos += 10
        if rtype == 1 and length == 4:
            out.append(socket.inet_ntoa(reply[pos:pos + 4]))
        pos += length
    return out


def main(argv: list[str]) -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / "calls.jsonl").open("a") as fh:
        fh.write(json.dumps(argv) + "\n")
    args = [a for a in argv]
    while args and args[0] in ("--error-format", "--state-dir"):
        args = args[2:]
    if args == ["--version"]:
        print("smolvm 1.32.2-fake")
        return 0
    if len(args) < 2 or args[0] != "machine":
        return fail("CONFIG_ERROR", f"unsupported: {args}")
    verb, rest = args[1], args[2:]
    if os.environ.get("FAKE_SMOLVM_FAIL") == verb:
        return fail("SMOLVM_ERROR", f"{verb} failed (FAKE_SMOLVM_FAIL)")
    machines = load()
    name = opt(rest, "--name")
    if verb == "ls":
        print(json.dumps(list(machines.values())))
        return 0
    if verb == "cp":
        return 0
    if name is None:
        return fail("CONFIG_ERROR", "--name is required")
    if verb == "create":
        if name in machines:
            return fail("CONFIG_ERROR", f"machine {name} already exists")
        labels = dict(v.split("=", 1) for i, v in enumerate(rest) if i and rest[i - 1] == "--label")
        smolfile = opt(rest, "--smolfile")
        if smolfile and not Path(smolfile).is_file():
            return fail("CONFIG_ERROR", f"no Smolfile at {smolfile}")
        machines[name] = {"name": name, "state": "created", "labels": labels, "network": True,
                          "dns": opt(rest, "--dns")}
    elif name not in machines:
        return fail("NOT_FOUND", f"vm not found: {name}")
    elif verb == "start":
        machines[name]["state"] = "running"
    elif verb == "stop":
        if machines[name]["state"] != "running":
            return fail("INVALID_STATE", f"Machine '{name}' is not running")
        machines[name]["state"] = "stopped"
    elif verb == "delete":
        del machines[name]
    elif verb == "exec" and machines[name]["state"] != "running":
        return fail("INVALID_STATE", f"Machine '{name}' is not running")
    elif verb == "exec" and rest[rest.index("--") + 1:][:2] == ["getent", "ahostsv4"]:
        target = rest[rest.index("--") + 3]
        server = os.environ.get("FAKE_SMOLVM_DNS_SERVER") or str(machines[name].get("dns") or "")
        addresses = resolve(server, target) if server else []
        for address in addresses:
            print(f"{address}       STREAM {target}")
        return 0 if addresses else 2
    save(machines)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
