#!/usr/bin/env python3
"""A stand-in ``smolvm`` for the launch path, which cannot run here: this host's /dev/kvm cannot boot
a microVM (PVM), so ``machine start`` of the real binary always fails. It records every call's argv
(one JSON line in ``$FAKE_SMOLVM_DIR/calls.jsonl``) and keeps machines in ``machines.json`` with the
same ``machine ls --json`` fields the real one prints (name, state, labels, network), so enumerate and
cleanup run against it unchanged. ``FAKE_SMOLVM_FAIL=<verb>`` makes that verb fail.
"""

from __future__ import annotations

import json
import os
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
        machines[name] = {"name": name, "state": "created", "labels": labels, "network": True}
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
    save(machines)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
