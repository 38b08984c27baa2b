"""Finding the ``smolvm`` CLI and running it through the core's runner.

Two sources, in order: a ``smolvm`` on ``PATH`` (a system install brings its own libraries and agent
rootfs), else the CLI shipped in the ``smolmachines`` wheel as ``smol/smol-vmm``. The wheel's copy
does not know where its siblings are, so it runs with ``SMOLVM_LIB_DIR`` (the package dir holding
``libkrun.so`` and ``libkrunfw.so.5``) and ``SMOLVM_AGENT_ROOTFS_TAR`` (``agent-rootfs.tar.zst``).
As root, a VM boot refuses to drop privileges unless smolvm lives in ``/opt/smolvm``, so
``SMOLVM_VM_UID_DROP=off`` is set then. A variable the user already exported always wins.

Every call passes ``--error-format json`` so failures carry smolvm's stable code (``NOT_FOUND`` is
"already gone" for cleanup), and ``--state-dir`` when ``CLAUDE_BOTTLE_SMOLVM_STATE_DIR`` is set, which
is how tests keep their machines away from the user's.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from claude_bottle.errors import BottleError
from claude_bottle.runner import Command, Result

if TYPE_CHECKING:
    from claude_bottle.runner import Runner

__all__ = ["STATE_DIR_ENV", "Engine", "Smolvm", "SmolvmError", "find_engine", "wheel_assets"]

STATE_DIR_ENV = "CLAUDE_BOTTLE_SMOLVM_STATE_DIR"
WHEEL = "smolmachines"
_WHEEL_CLI = "smol-vmm"
_WHEEL_ROOTFS = ("agent-rootfs.tar.zst", "agent-rootfs.tar")


@dataclass(frozen=True)
class WheelAssets:
    cli: Path
    lib_dir: Path
    rootfs_tar: Path | None


@dataclass(frozen=True)
class Engine:
    """Which smolvm binary runs, where it came from, and the environment it needs."""

    binary: Path
    source: str  # "PATH" or "smolmachines wheel"
    env: Mapping[str, str] = field(default_factory=dict)
    state_dir: Path | None = None

    def argv(self, *args: str) -> tuple[str, ...]:
        state = ("--state-dir", str(self.state_dir)) if self.state_dir else ()
        return (str(self.binary), "--error-format", "json", *state, *args)


def wheel_assets() -> WheelAssets | None:
    """The smolvm CLI, libraries and agent rootfs inside the installed ``smolmachines`` wheel."""
    try:
        dist = metadata.distribution(WHEEL)
    except metadata.PackageNotFoundError:
        return None
    cli = next((f for f in dist.files or () if f.name == _WHEEL_CLI and f.parent.name == "smol"), None)
    if cli is None:
        return None
    cli_path = Path(str(dist.locate_file(cli))).resolve()
    if not cli_path.is_file():
        return None
    pkg = cli_path.parent
    rootfs = next((pkg / n for n in _WHEEL_ROOTFS if (pkg / n).is_file()), None)
    return WheelAssets(cli=cli_path, lib_dir=pkg, rootfs_tar=rootfs)


def find_engine(environ: Mapping[str, str] | None = None, *, is_root: bool | None = None) -> Engine | None:
    """``smolvm`` on PATH, else the wheel's CLI; None when neither exists."""
    env = os.environ if environ is None else environ
    root = (os.geteuid() == 0) if is_root is None else is_root
    state = Path(env[STATE_DIR_ENV]) if env.get(STATE_DIR_ENV) else None
    extra: dict[str, str] = {}
    if root:
        extra["SMOLVM_VM_UID_DROP"] = "off"
    on_path = shutil.which("smolvm", path=env.get("PATH"))
    if on_path:
        binary, source = Path(on_path), "PATH"
    else:
        assets = wheel_assets()
        if assets is None:
            return None
        binary, source = assets.cli, f"{WHEEL} wheel"
        extra["SMOLVM_LIB_DIR"] = str(assets.lib_dir)
        if assets.rootfs_tar is not None:
            extra["SMOLVM_AGENT_ROOTFS_TAR"] = str(assets.rootfs_tar)
    return Engine(binary=binary, source=source, env={k: v for k, v in extra.items() if k not in env},
                  state_dir=state)


class SmolvmError(BottleError):
    """A smolvm call failed; ``code`` is smolvm's stable error code (``NOT_FOUND``, ...)."""

    def __init__(self, message: str, *, code: str) -> None:
        self.code = code
        super().__init__(message)


def _error_of(result: Result) -> tuple[str, str]:
    for raw in reversed(result.stderr.splitlines()):
        line = raw.strip()
        if line.startswith("{"):
            try:
                err = json.loads(line)["error"]
                return str(err.get("code", "SMOLVM_ERROR")), str(err.get("message", ""))
            except (ValueError, KeyError, TypeError):
                continue
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith("note:")]
    return "SMOLVM_ERROR", (lines[-1].strip() if lines else f"exit status {result.returncode}")


class Smolvm:
    """The smolvm verbs this backend uses, each one runner call."""

    def __init__(self, *, engine: Engine, runner: Runner) -> None:
        self.engine = engine
        self.runner = runner

    def run(self, *args: str, timeout: float | None = 120, input: bytes | None = None,
            secret_env: Mapping[str, str] | None = None) -> Result:
        cmd = Command(argv=self.engine.argv(*args), env=self.engine.env, secret_env=dict(secret_env or {}),
                      timeout=timeout, input=input, check=False)
        try:
            result = self.runner.run(cmd)
        except OSError as exc:  # not executable, wrong architecture: the runner only maps "not found"
            raise SmolvmError(f"cannot run {self.engine.binary}: {exc.strerror or exc}",
                              code="NOT_RUNNABLE") from exc
        if not result.ok:
            code, message = _error_of(result)
            raise SmolvmError(f"`smolvm {' '.join(args[:2])}` failed: {message}", code=code)
        return result

    def version(self) -> str:
        out = self.run("--version", timeout=30).stdout.strip()
        return out.removeprefix("smolvm").strip() or out

    def ls(self) -> list[dict[str, object]]:
        out = self.run("machine", "ls", "--json", timeout=60).stdout
        try:
            data = json.loads(out or "[]")
        except ValueError as exc:
            raise BottleError(f"`smolvm machine ls --json` did not print JSON: {exc}") from exc
        return [m for m in data if isinstance(m, dict)]

    def create(self, *, name: str, smolfile: Path, labels: Mapping[str, str], extra: Sequence[str] = (),
               secret_env: Mapping[str, str] | None = None) -> None:
        label_args = [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
        self.run("machine", "create", "--name", name, "--smolfile", str(smolfile), *label_args, *extra,
                 timeout=600, secret_env=secret_env)

    def start(self, *, name: str, secret_env: Mapping[str, str] | None = None) -> None:
        # ``--secret-env`` references are resolved from this process's environment at every start.
        self.run("machine", "start", "--name", name, timeout=300, secret_env=secret_env)

    def stop(self, *, name: str) -> None:
        self.run("machine", "stop", "--name", name, timeout=120)

    def delete(self, *, name: str) -> None:
        self.run("machine", "delete", "--name", name, "--force", timeout=120)

    def exec(self, *, name: str, argv: Sequence[str], user: str | None = None,
             timeout: float | None = 600) -> Result:
        who = ("--user", user) if user else ()
        return self.run("machine", "exec", "--name", name, *who, "--", *argv, timeout=timeout)

    def cp(self, *, src: str, dst: str, mode: str | None = None) -> None:
        extra = ("--mode", mode) if mode else ()
        self.run("machine", "cp", *extra, src, dst, timeout=600)
