"""``prepare`` on a folder outside git: the plan names what the copy leaves out (files that may hold
secrets, decided by claude_bottle.workspace) and carries the paths to ``launch`` in its JSON data."""

from __future__ import annotations

import json
from dataclasses import replace

from claude_bottle import testing
from claude_bottle.config import Settings
from claude_bottle.runner import Result
from claude_bottle_docker import DockerBackend


def test_the_plan_lists_what_the_copy_leaves_out(recorder, tmp_path):
    recorder.answer = lambda cmd: (Result(cmd.argv, 0, stdout="sha256:aaa\nsha256:bbb\n")
                                   if cmd.argv[1:3] == ("image", "inspect") else None)
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text("TOKEN=x\n")
    (project / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (project / "main.py").write_text("print(1)\n")
    settings = Settings(home=tmp_path / "home")
    backend = DockerBackend(runner=recorder, settings=settings)
    spec = testing.builtin_spec(settings=settings, cwd=project, workspace=True)
    plan = backend.prepare(spec=spec, stage_dir=tmp_path / "stage")
    rows = dict(plan.details)
    assert rows["not copied"] == ("2 paths that may hold secrets: .env (environment file), id_rsa "
                                  "(SSH private key); copy one anyway with --include-secret-file PATH")
    assert plan.data["workspace_exclude"] == {".env": "environment file", "id_rsa": "SSH private key"}
    json.dumps(dict(plan.data))
    asked = backend.prepare(spec=replace(spec, include_secret_files=("id_rsa",)), stage_dir=tmp_path / "s2")
    assert asked.data["workspace_exclude"] == {".env": "environment file"}
    assert "copied as asked: id_rsa" in dict(asked.details)["not copied"]
    (tmp_path / "empty").mkdir()
    plain = backend.prepare(spec=replace(spec, cwd=tmp_path / "empty"), stage_dir=tmp_path / "s3")
    assert "not copied" not in dict(plain.details) and plain.data["workspace_exclude"] == {}
