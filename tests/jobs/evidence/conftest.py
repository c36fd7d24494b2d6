"""A real OpenSSH server (Debian openssh-server) on 127.0.0.1 for the sftp:// tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


@dataclass
class Server:
    port: int
    host_pub: str  # "ssh-ed25519 AAAA..."
    user_key: Path
    known_hosts: Path
    proc: subprocess.Popen[bytes]

    def master(self, name: str, directory: Path, **extra: object) -> dict[str, object]:
        return {
            "name": name,
            "source": f"sftp://{_user()}@127.0.0.1:{self.port}{directory}",
            "key_file": str(self.user_key),
            "known_hosts": str(self.known_hosts),
            "retries": 1,
            "timeout": 10,
            **extra,
        }


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def sshd(tmp_path_factory):
    """sshd(): start a server with its own host key; every server is stopped after the test."""
    if not os.path.exists(SSHD) or os.getuid() != 0:
        pytest.skip("needs /usr/sbin/sshd (apt-get install openssh-server) and root")
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    started: list[Server] = []

    def start() -> Server:
        d = tmp_path_factory.mktemp("sshd")
        host = d / "host_key"
        user = d / "user_key"
        host_pub = keygen(host)
        keygen(user)
        auth = d / "authorized_keys"
        shutil.copy(user.with_suffix(".pub"), auth)
        port = free_port()
        cfg = d / "sshd_config"
        cfg.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\n"
            f"AuthorizedKeysFile {auth}\nStrictModes no\nPidFile {d / 'sshd.pid'}\n"
            "UsePAM no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\n"
            "Subsystem sftp internal-sftp\n"
        )
        known = d / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {host_pub}\n")
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=open(d / "sshd.log", "wb"),  # noqa: SIM115 - lives as long as the server
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            proc.kill()
            raise RuntimeError((d / "sshd.log").read_text())
        server = Server(port, host_pub, user, known, proc)
        started.append(server)
        return server

    yield start
    for s in started:
        s.proc.terminate()
        s.proc.wait(timeout=10)
