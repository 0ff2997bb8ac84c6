"""The emulated ARM64 board (tests/board/board.sh): an arm64 Debian userland under qemu-user with its own sshd on
127.0.0.1, reached through the system OpenSSH client with a pinned host key. These tests prove the test bed
itself (a login lands on aarch64 with the pinned runtime) and `verify --target` over it: every check runs on the
board, and the float files built here compute there what they compute here, within their precision's
tolerance. Where the machine cannot host the board (not root, no binfmt_misc, no registry), they skip with the
reason the script gives."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

BOARD = Path(__file__).resolve().parent / "board" / "board.sh"
#: Kept between runs on one machine (the build takes a minute or two); keyed inside by the script's recipe.
CACHE = Path(os.environ.get("EXPORTKIT_BOARD_DIR", "/var/cache/exportkit-board"))


class Board:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = env["URL"].rsplit(":", 1)[1]
        self.key, self.known_hosts = env["KEY"], env["KNOWN_HOSTS"]
        self.ssh = ["ssh", "-p", self.port, "-i", env["KEY"], "-o", f"UserKnownHostsFile={env['KNOWN_HOSTS']}",
                    "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=20",
                    "root@127.0.0.1"]

    def run(self, command: str, stdin: bytes = b"", timeout: int = 300) -> bytes:
        done = subprocess.run([*self.ssh, command], input=stdin, capture_output=True, timeout=timeout)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
        return done.stdout

    def target(self, tmp_path: Path) -> str:
        """The board as a verify target: an ssh config file carries the key and the pinned host key, as a
        user's ~/.ssh/config would."""
        config = tmp_path / "ssh_config"
        config.write_text(f"Host 127.0.0.1\n  Port {self.port}\n  User root\n  IdentityFile {self.key}\n"
                          f"  UserKnownHostsFile {self.known_hosts}\n  StrictHostKeyChecking yes\n")
        return f"ssh://root@127.0.0.1:{self.port}?python=/opt/agent/bin/python&ssh_config={config}"


@pytest.fixture(scope="session")
def board():
    done = subprocess.run([str(BOARD), "up", str(CACHE)], capture_output=True, text=True, timeout=1200)
    if done.returncode == 4:
        pytest.skip(done.stderr.strip().splitlines()[-1])
    assert done.returncode == 0, done.stderr[-3000:]
    env = dict(line.split("=", 1) for line in (CACHE / "board.env").read_text().splitlines())
    yield Board(env)
    subprocess.run([str(BOARD), "down", str(CACHE)], capture_output=True, timeout=120)


@pytest.mark.slow
def test_a_login_lands_on_aarch64_with_the_pinned_runtime(board):
    import numpy
    import onnxruntime

    seen = board.run('/opt/agent/bin/python -c "import platform, numpy, onnxruntime; '
                     'print(platform.machine(), numpy.__version__, onnxruntime.__version__)"').decode().split()
    assert seen == ["aarch64", numpy.__version__, onnxruntime.__version__]


@pytest.mark.slow
def test_verify_runs_every_check_on_the_board_through_its_ssh_target(board, built_copy, tmp_path):
    """`verify --target arm=ssh://...` on the shared build: the agent reaches the board through the system ssh
    client (a config file with the pinned host key), says it is an emulated aarch64, and every check runs there.
    The float files pass their tolerance on the board. The int8 files run too; they are not held to pass here: on
    this emulated board the dynamic int8 seed CNN's outputs are far off (see the README's "The emulated ARM64
    board"), and whether the emulator or the arm64 kernels cause it is still open."""
    from export_kit import api

    report = api.verify(built_copy, targets=[f"arm={board.target(tmp_path)}"], explain=False, log=lambda _: 0)
    fingerprint = report.targets["arm"]
    assert fingerprint["machine"] == "aarch64" and fingerprint["emulated"] is True
    rows = [r for r in report.verify_rows() if r.target == "arm" and r.status != "skipped"]
    assert {r.device for r in rows} == {"arm (aarch64, emulated)"}
    floats = [r for r in rows if r.precision != "int8"]
    assert {r.artifact for r in floats} >= {"onnx"}
    assert all(r.status == "passed" for r in floats), [(r.artifact, r.reason) for r in floats]
    assert all(r.checks and r.max_abs_err is not None for r in rows)  # the int8 rows ran their checks too
