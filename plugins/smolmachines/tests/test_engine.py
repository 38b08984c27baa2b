"""Finding smolvm: PATH first, else the wheel's CLI with the environment it needs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from claude_bottle.runner import SubprocessRunner
from claude_bottle_smolmachines.engine import STATE_DIR_ENV, Smolvm, SmolvmError, find_engine, wheel_assets


def test_wheel_assets_found_through_metadata() -> None:
    assets = wheel_assets()
    assert assets is not None
    assert assets.cli.name == "smol-vmm" and os.access(assets.cli, os.X_OK)
    assert (assets.lib_dir / "libkrun.so").is_file()
    assert assets.rootfs_tar is not None and assets.rootfs_tar.name.startswith("agent-rootfs.tar")


def test_wheel_engine_environment() -> None:
    engine = find_engine({"PATH": "/nonexistent"}, is_root=True)
    assert engine is not None and engine.source == "smolmachines wheel"
    assets = wheel_assets()
    assert assets is not None
    assert engine.env["SMOLVM_LIB_DIR"] == str(assets.lib_dir)
    assert engine.env["SMOLVM_AGENT_ROOTFS_TAR"] == str(assets.rootfs_tar)
    assert engine.env["SMOLVM_VM_UID_DROP"] == "off"


def test_not_root_keeps_uid_drop() -> None:
    engine = find_engine({"PATH": "/nonexistent"}, is_root=False)
    assert engine is not None and "SMOLVM_VM_UID_DROP" not in engine.env


def test_user_exported_values_win() -> None:
    engine = find_engine({"PATH": "/nonexistent", "SMOLVM_LIB_DIR": "/opt/mine"}, is_root=True)
    assert engine is not None and "SMOLVM_LIB_DIR" not in engine.env


def test_path_wins(tmp_path: Path) -> None:
    exe = tmp_path / "smolvm"
    exe.write_text("#!/bin/sh\necho smolvm 9.9.9\n")
    exe.chmod(0o755)
    engine = find_engine({"PATH": str(tmp_path)}, is_root=False)
    assert engine is not None and engine.binary == exe and engine.source == "PATH"
    assert "SMOLVM_LIB_DIR" not in engine.env
    assert Smolvm(engine=engine, runner=SubprocessRunner()).version() == "9.9.9"


def test_state_dir_flag(tmp_path: Path) -> None:
    engine = find_engine({"PATH": "/nonexistent", STATE_DIR_ENV: str(tmp_path)})
    assert engine is not None
    assert engine.argv("machine", "ls")[1:] == ("--error-format", "json", "--state-dir", str(tmp_path),
                                                "machine", "ls")


def test_real_version_and_structured_errors(tmp_path: Path) -> None:
    engine = find_engine({"PATH": "/nonexistent", STATE_DIR_ENV: str(tmp_path)})
    assert engine is not None
    smolvm = Smolvm(engine=engine, runner=SubprocessRunner())
    assert smolvm.version().startswith("1.32")
    assert smolvm.ls() == []
    with pytest.raises(SmolvmError) as err:
        smolvm.delete(name="claude-bottle-nothing-here")
    assert err.value.code == "NOT_FOUND"
    assert "vm not found" in str(err.value)
