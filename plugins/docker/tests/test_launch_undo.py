"""launch with a recording runner: the order of steps, and that a failure at any step removes
everything labelled with the slug before raising one line."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from claude_bottle.backends.base import NullProgress
from claude_bottle.errors import BottleError
from claude_bottle.runner import Result
from claude_bottle_docker import bundle as bundle_mod
from claude_bottle_docker.launch import LaunchInputs, run_launch

SLUG = "claude-abcde"


def inputs(tmp_path: Path) -> LaunchInputs:
    return LaunchInputs(slug=SLUG, agent_name="claude", home=str(tmp_path), agent_image="a:1",
                        sidecars_image="s:1", stage_dir=tmp_path / "stage", logs_dir=tmp_path / "logs",
                        env={"HTTP_PROXY": "http://egress:3128"}, secret_env_names=(), prompt="hi",
                        workspace=None)


def _id(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def fake_engine(fail_at: str | None = None, exc: BaseException | None = None):
    made: list[tuple[str, str]] = []

    def answer(cmd):
        argv = cmd.argv
        verb = " ".join(argv[1:3])
        if fail_at and fail_at in " ".join(argv):
            if exc is not None:
                raise exc
            return Result(argv, 1, stderr=f"Error response from daemon: simulated failure of {fail_at}")
        if verb == "network create":
            made.append(("network", argv[-1]))
        elif argv[1] in ("create", "run"):
            made.append(("container", argv[argv.index("--name") + 1]))
        elif verb == "container inspect":
            nets = {"claude-bottle-egress-" + SLUG: {"IPAddress": "127.0.0.1"},
                    "claude-bottle-net-" + SLUG: {"IPAddress": "172.30.0.2"}}
            info = {"State": {"Running": True}, "NetworkSettings": {"Networks": nets}}
            return Result(argv, 0, stdout=json.dumps([info]))
        elif argv[1] == "exec" and "cat" in argv:
            return Result(argv, 0, stdout="-----BEGIN CERTIFICATE-----\nx\n")
        elif "--format" in argv:  # inventory by label
            kind = {"ps": "container", "network": "network", "volume": "volume"}[argv[1]]
            rows = [json.dumps({"id": _id(n), "name": n, "slug": SLUG, "role": "r"})
                    for k, n in made if k == kind]
            return Result(argv, 0, stdout="\n".join(rows))
        return None

    return answer, made


def _removed(recorder) -> set[str]:
    out: set[str] = set()
    for c in recorder.calls:
        if c.argv[1:4] == ("rm", "--force", "--volumes"):
            out.update(c.argv[4:])
        elif c.argv[1:3] == ("network", "rm"):
            out.update(c.argv[3:])
    return out


@pytest.fixture(autouse=True)
def proxy_answers(monkeypatch):
    monkeypatch.setattr(bundle_mod, "_connects", lambda host, port, timeout: True)
    monkeypatch.setattr(bundle_mod.wait_ready, "__kwdefaults__",
                        {**bundle_mod.wait_ready.__kwdefaults__, "connects": lambda *a: True})


def test_steps_in_order(recorder, tmp_path):
    recorder.answer, _ = fake_engine()
    services = run_launch(recorder, inputs(tmp_path), secret_env={}, progress=NullProgress())
    assert services == ("egress",)  # what runs, not every name the bundle answers to
    with_gate = replace(inputs(tmp_path), services=("egress", "git-gate"))
    assert run_launch(recorder, with_gate, secret_env={}, progress=NullProgress()) == ("egress", "git-gate")
    verbs = [" ".join(c.argv[1:3]) for c in recorder.calls]
    assert verbs.index("network create") < verbs.index("create --name") < verbs.index("run --detach")
    run = next(c.argv for c in recorder.calls if c.argv[1] == "run")
    assert run[run.index("--dns") + 1] == "172.30.0.2"  # the bundle's address on the internal network
    assert not any(c.argv[1] == "rm" for c in recorder.calls)


@pytest.mark.parametrize("fail_at", ["network create", "network connect", "start", "run --detach",
                                     "cat /run/claude-bottle/ca/ca.pem", "--extract"])
def test_failure_at_any_step_removes_everything_of_the_slug(recorder, tmp_path, fail_at):
    recorder.answer, made = fake_engine(fail_at)
    with pytest.raises(BottleError) as info:
        run_launch(recorder, inputs(tmp_path), secret_env={}, progress=NullProgress())
    assert "removed everything this up had made" in str(info.value)
    removed = _removed(recorder)
    assert {_id(name)[:12] for _, name in made} <= removed  # removal goes by (short) ID


def test_ctrl_c_undoes_then_propagates(recorder, tmp_path):
    recorder.answer, made = fake_engine("run --detach", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run_launch(recorder, inputs(tmp_path), secret_env={}, progress=NullProgress())
    removed = _removed(recorder)
    assert made and {_id(name)[:12] for _, name in made} <= removed


def test_exhausted_address_pools_say_what_to_do(recorder, tmp_path):
    def answer(cmd):
        if cmd.argv[1:3] == ("network", "create"):
            return Result(cmd.argv, 1, stderr="Error response from daemon: could not find an available, "
                                              "non-overlapping IPv4 address pool among the defaults")
        return fake_engine()[0](cmd)

    recorder.answer = answer
    with pytest.raises(BottleError, match="no free address range") as info:
        run_launch(recorder, inputs(tmp_path), secret_env={}, progress=NullProgress())
    assert "default-address-pools" in str(info.value)


def test_the_copy_leaves_out_what_prepare_excluded_and_says_how_to_copy_it(recorder, tmp_path):
    """``prepare`` decided which paths hold secrets (claude_bottle.workspace); launch's copy leaves them
    out, names them with their reason and points at --include-secret-file."""
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text("TOKEN=x\n")
    (project / "main.py").write_text("print(1)\n")
    notes: list[str] = []

    class Notes(NullProgress):
        def note(self, text: str) -> None:
            notes.append(text)

    recorder.answer, _ = fake_engine()
    inp = replace(inputs(tmp_path), workspace=project, workspace_exclude={".env": "environment file"})
    run_launch(recorder, inp, secret_env={}, progress=Notes())
    unpack = next(c for c in recorder.calls if "--extract" in c.argv)
    with tarfile.open(fileobj=io.BytesIO(unpack.input or b"")) as tar:
        names = set(tar.getnames())
    assert "workspace/main.py" in names and "workspace/.env" not in names
    assert notes == ["not copied to /workspace (1): .env (environment file); copy one anyway with "
                     "--include-secret-file PATH"]
