from __future__ import annotations

import json

from claude_bottle.identity import LABEL_HOME, LABEL_SLUG
from claude_bottle_docker.docker import is_no_such, list_command, parse_list, remove_command


def test_list_filters_on_the_slug_label_key_in_the_engine():
    argv = list_command("container", filters=["label=dev.claude-bottle.backend=docker"]).argv
    assert argv[:3] == ("docker", "ps", "--all")
    filters = [argv[i + 1] for i, a in enumerate(argv) if a == "--filter"]
    assert filters == [f"label={LABEL_SLUG}", "label=dev.claude-bottle.backend=docker"]
    fmt = argv[argv.index("--format") + 1]
    assert f'(.Label "{LABEL_HOME}")' in fmt  # one label at a time: commas in values cannot split it


def test_parse_list_reads_labels_even_with_commas_and_drops_unlabelled_rows():
    rows = [
        {"id": "abc", "name": "claude-bottle-x-aaaaa", "state": "running", "slug": "x-aaaaa",
         "backend": "docker", "role": "agent", "agent": "x", "home": "/tmp/a,b"},
        {"id": "def", "name": "claude-bottle-impostor", "state": "running", "slug": "",
         "backend": "", "role": "", "agent": "", "home": ""},
    ]
    found = parse_list("container", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert [r.name for r in found] == ["claude-bottle-x-aaaaa"]
    assert found[0].home == "/tmp/a,b" and found[0].running


def test_remove_commands_force_and_never_check():
    assert remove_command("container", "abc").argv == ("docker", "rm", "--force", "--volumes", "abc")
    assert remove_command("network", "n").argv == ("docker", "network", "rm", "n")
    assert remove_command("volume", "v").argv == ("docker", "volume", "rm", "--force", "v")
    assert not remove_command("network", "n").check


def test_no_such_wording_counts_as_gone():
    assert is_no_such("Error: No such container: abc")
    assert is_no_such("Error: No such network: n")
    assert is_no_such("Error response from daemon: network n not found")
    assert not is_no_such("Error response from daemon: error while removing network: has active endpoints")
