"""A workspace copy without secrets: which paths stay behind and why (by name, by detect-secrets), how
``--include-secret-file`` brings one back, what the plan says, and the note about work a git clone
leaves behind."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from claude_bottle import ui, workspace
from claude_bottle.backends.base import BottlePlan, BottleSpec
from claude_bottle.errors import BottleError
from claude_bottle.manifest.model import AgentDef, BottleDef
from claude_bottle.runner import SubprocessRunner
from claude_bottle.workspace import Exclusion, GitChanges
from claude_bottle_docker.provision import build_user_archive, skipped_note

AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"  # split so this file does not read as holding one
SECRET_PATHS = {".env", "id_ed25519", "config.py"}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / ".env").write_text("DATABASE_PASSWORD=hunter2\n")
    (root / ".env.example").write_text("DATABASE_PASSWORD=\n")
    (root / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n")
    (root / "id_ed25519.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI t@t\n")
    (root / "config.py").write_text(f'REGION = "eu-west-1"\nAWS_ACCESS_KEY_ID = "{AWS_KEY}"\n')
    (root / "README.md").write_text("# project\n\nRun `make`.\n")
    (root / "src" / "main.py").write_text("def main() -> None:\n    print('hello')\n")
    (root / "logo.bin").write_bytes(b"\0\1\2" + AWS_KEY.encode())  # binary: not read
    return root


def spec(cwd: Path, **kw: object) -> BottleSpec:
    return BottleSpec(slug="claude-ab1cd", agent=AgentDef(name="claude", source="<t>"),
                      bottle=BottleDef(name="default", source="<t>"), cwd=cwd, state_dir=cwd / ".state",
                      **kw)


def test_exclusions_name_exactly_the_secret_files_with_reasons(folder: Path):
    found = {e.path: e.reason for e in workspace.secret_exclusions(folder)}
    assert set(found) == SECRET_PATHS
    assert found[".env"] == "environment file"
    assert found["id_ed25519"] == "SSH private key"
    assert found["config.py"] == "AWS Access Key on line 2"  # detect-secrets, by content


@pytest.mark.parametrize(("rel", "is_dir", "reason"), [
    (".env.production", False, "environment file"),
    (".env.example", False, None),
    (".env.sample", False, None),
    (".env.template", False, None),
    ("deploy/server.key", False, "private key file"),
    ("id_rsa", False, "SSH private key"),
    ("id_rsa.pub", False, None),
    ("certs/client.p12", False, "PKCS#12 key store"),
    ("home/.aws/credentials", False, "AWS credentials"),
    ("credentials", False, None),
    (".kube/config", False, "kubeconfig"),
    (".docker/config.json", False, "docker registry credentials"),
    (".config/gcloud", True, "gcloud credentials"),
    (".config", True, None),
    (".git-credentials", False, "git credentials"),
    (".netrc", False, "netrc credentials"),
    ("infra/terraform.tfstate", False, "terraform state"),
    ("infra/terraform.tfstate.backup", False, "terraform state"),
    ("src/main.py", False, None),
])
def test_name_rules(rel: str, is_dir: bool, reason: str | None):
    assert workspace.name_reason(rel, is_dir=is_dir) == reason


def test_rc_files_and_pem_files_stay_behind_only_with_a_token_or_key(tmp_path: Path):
    (tmp_path / ".npmrc").write_text("//registry.npmjs.org/:_authToken=npm_abc\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".npmrc").write_text("save-exact=true\n")
    (tmp_path / ".pypirc").write_text("[pypi]\nusername = __token__\npassword = pypi-abc\n")
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (tmp_path / "tls.pem").write_text("-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n")
    found = {e.path: e.reason for e in workspace.secret_exclusions(tmp_path)}
    assert found == {".npmrc": "npm auth token", ".pypirc": "PyPI password", "tls.pem": "private key (PEM)"}


def test_include_brings_a_path_back_and_is_checked(folder: Path):
    scan = workspace.scan_workspace(folder, include=[".env", str(folder / "config.py")])
    assert [e.path for e in scan.exclusions] == ["id_ed25519"]
    assert scan.included == (".env", "config.py")
    with pytest.raises(BottleError, match="not inside the workspace"):
        workspace.scan_workspace(folder, include=["../elsewhere"])
    with pytest.raises(BottleError, match="--include-secret-file nope: no such file"):
        workspace.scan_workspace(folder, include=["nope"])


def test_include_inside_a_left_out_folder_opens_it_for_that_file_only(tmp_path: Path):
    gcloud = tmp_path / ".config" / "gcloud"
    gcloud.mkdir(parents=True)
    (gcloud / "configurations").mkdir()
    (gcloud / "configurations" / "config_default").write_text("[core]\nproject = p\n")
    (gcloud / "credentials.db").write_text("x")
    assert [e.path for e in workspace.secret_exclusions(tmp_path)] == [".config/gcloud"]
    scan = workspace.scan_workspace(tmp_path, include=[".config/gcloud/configurations/config_default"])
    assert scan.exclusions == (Exclusion(".config/gcloud/credentials.db", "gcloud credentials"),)


def test_scan_is_bounded(folder: Path):
    big = folder / "dump.sql"
    big.write_text(f"-- {AWS_KEY}\n" + "x" * workspace.MAX_FILE_BYTES)
    for n in range(3):
        (folder / "src" / f"m{n}.py").write_text(f'KEY = "{AWS_KEY}"\n')
    deps = folder / "node_modules" / "pkg"
    deps.mkdir(parents=True)
    (deps / "fixture.js").write_text(f'const k = "{AWS_KEY}"\n')
    (deps / ".env").write_text("A=1\n")  # names are still checked in dependency folders
    # Just enough for the text files at the top (walked before src/): src/ is past the budget.
    budget = sum(len((folder / p).read_bytes()) for p in (".env.example", "README.md", "config.py",
                                                           "id_ed25519.pub"))
    scan = workspace.scan_workspace(folder, budget=budget)
    assert {e.path for e in scan.exclusions} == {*SECRET_PATHS, "node_modules/pkg/.env"}
    assert scan.unscanned == 5  # dump.sql (over 1 MiB), and src/'s four files past the budget
    assert "5 file(s) copied without a content scan" in workspace.left_out_note(scan)


def test_a_large_scan_is_spread_over_processes_with_the_same_answer(folder: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    for n in range(4):
        (folder / "src" / f"m{n}.py").write_text(f'KEY = "{AWS_KEY}"\n' if n % 2 else "x = 1\n")
    alone = workspace.secret_exclusions(folder)
    monkeypatch.setattr(workspace, "PARALLEL_FROM_BYTES", 0)
    monkeypatch.setattr(workspace, "_workers", lambda: 2)
    assert workspace.secret_exclusions(folder) == alone
    assert {e.path for e in alone} == {*SECRET_PATHS, "src/m1.py", "src/m3.py"}


def test_left_out_note_counts_names_the_first_and_the_flag():
    scan = workspace.SecretScan(exclusions=tuple(Exclusion(f"f{i}", "environment file") for i in range(5)))
    note = workspace.left_out_note(scan)
    assert note.startswith("5 paths that may hold secrets: f0 (environment file), f1")
    assert "+2 more" in note and "--include-secret-file PATH" in note
    assert workspace.left_out_note(workspace.SecretScan()) == ""


def test_plan_rows_mention_the_count_and_the_flag(folder: Path):
    notes = workspace.workspace_notes(runner=SubprocessRunner(), spec=spec(folder), repo=None)
    assert set(notes.exclude) == SECRET_PATHS
    plan = BottlePlan(spec=spec(folder), backend="fake", details=(("workspace", "copy"), *notes.rows))
    rows = dict(ui.plan_rows(plan))
    assert rows["not copied"].startswith("3 paths that may hold secrets: ")
    assert "--include-secret-file PATH" in rows["not copied"]
    asked = spec(folder, include_secret_files=(".env",))
    again = workspace.workspace_notes(runner=SubprocessRunner(), spec=asked, repo=None)
    assert set(again.exclude) == SECRET_PATHS - {".env"}
    assert "copied as asked: .env" in dict(again.rows)["not copied"]
    none = workspace.workspace_notes(runner=SubprocessRunner(), spec=spec(folder, workspace=False), repo=None)
    assert none == workspace.WorkspaceNotes()


def _names(data: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {n.removeprefix("workspace/") for n in tar.getnames() if n.startswith("workspace/")}


def test_the_archive_lacks_the_secret_files_and_says_so(folder: Path):
    notes = workspace.workspace_notes(runner=SubprocessRunner(), spec=spec(folder), repo=None)
    archive = build_user_archive(prompt="", workspace=folder, exclude=notes.exclude)
    names = _names(archive.data)
    assert not names & SECRET_PATHS
    assert {"README.md", "src/main.py", ".env.example", "id_ed25519.pub", "logo.bin"} <= names
    assert archive.left_out == 3 and ".env (environment file)" in archive.skipped
    assert skipped_note(archive).endswith("; copy one anyway with --include-secret-file PATH")
    # Without exclusions the copy is whole, and the note has no flag to suggest.
    whole = build_user_archive(prompt="", workspace=folder)
    assert _names(whole.data) >= SECRET_PATHS and skipped_note(whole) == ""


def test_include_secret_file_brings_one_back_into_the_archive(folder: Path):
    asked = spec(folder, include_secret_files=("config.py",))
    notes = workspace.workspace_notes(runner=SubprocessRunner(), spec=asked, repo=None)
    names = _names(build_user_archive(prompt="", workspace=folder, exclude=notes.exclude).data)
    assert "config.py" in names and not names & {".env", "id_ed25519"}


def test_a_left_out_folder_is_not_walked_into(tmp_path: Path):
    (tmp_path / ".config" / "gcloud").mkdir(parents=True)
    (tmp_path / ".config" / "gcloud" / "credentials.db").write_text("x")
    (tmp_path / ".config" / "app.toml").write_text("a = 1\n")
    archive = build_user_archive(prompt="", workspace=tmp_path,
                                 exclude=dict.fromkeys([".config/gcloud"], "gcloud credentials"))
    assert _names(archive.data) == {".config", ".config/app.toml"}
    assert archive.skipped == (".config/gcloud (gcloud credentials)",)


def _git(*args: str, cwd: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


def test_git_folder_note_names_what_stays_behind_and_the_flag(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git("init", "--quiet", cwd=repo)
    (repo / "a.txt").write_text("a\n")
    (repo / "b.txt").write_text("b\n")
    _git("add", ".", cwd=repo)
    _git("commit", "--quiet", "-m", "init", cwd=repo)
    runner = SubprocessRunner()
    clean = workspace.workspace_notes(runner=runner, spec=spec(repo), repo=repo)
    assert clean.rows == () and not clean.exclude
    (repo / "notes.txt").write_text("todo\n")
    notes = workspace.workspace_notes(runner=runner, spec=spec(repo), repo=repo)
    assert notes.rows == (("not cloned", "1 untracked file (only commits are cloned); carry them with "
                                         "--with-uncommitted"),)
    (repo / "a.txt").write_text("changed\n")
    _git("mv", "b.txt", "c.txt", cwd=repo)
    assert workspace.git_changes(runner, repo) == GitChanges(changed=2, untracked=1)
    carried = workspace.workspace_notes(runner=runner, spec=spec(repo, with_uncommitted=True), repo=repo)
    assert carried.rows == ()
    asked = spec(repo, include_secret_files=("x",))
    flagged = workspace.workspace_notes(runner=runner, spec=asked, repo=repo)
    assert dict(flagged.rows)["--include-secret-file"].startswith("no effect")


def test_exclusions_survive_the_plans_json_data():
    data = {"workspace_exclude": {".env": "environment file"}}
    assert workspace.exclusions_from_data(data["workspace_exclude"]) == {".env": "environment file"}
    assert workspace.exclusions_from_data(None) == {}
