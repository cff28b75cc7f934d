"""A real network partition: two Linux network namespaces joined by a veth pair on a private /30,
whose link a test cuts and restores. Needs root (as in CI); elsewhere the tests skip, saying why,
and with CI=true they fail instead.

Names are unique per run, and the namespaces (with the veth pair inside them) are removed when
the test ends, whatever happened.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.support.optional import require


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


def _checked(*args: str) -> None:
    done = ip(*args)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class Partition:
    service_ns: str
    client_ns: str
    service_if: str
    client_if: str
    service_ip: str
    client_ip: str

    def prefix(self, ns: str) -> list[str]:
        """Run a command inside `ns`."""
        return ["ip", "netns", "exec", ns]

    def cut(self) -> None:
        """The client's link goes down (its WiFi is switched off)."""
        _checked("-n", self.client_ns, "link", "set", self.client_if, "down")

    def restore(self) -> None:
        _checked("-n", self.client_ns, "link", "set", self.client_if, "up")

    def run_in(self, ns: str, argv: Sequence[str], **popen: Any) -> subprocess.Popen[str]:
        return subprocess.Popen([*self.prefix(ns), *argv], text=True, **popen)

    def python_in(self, ns: str, code: str, *args: str, timeout: float = 30) -> str:
        """Run Python code inside `ns`; its stdout."""
        done = subprocess.run([*self.prefix(ns), sys.executable, "-c", code, *args],
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"python in {ns} failed: {done.stderr.strip()}")
        return done.stdout

    def reaches(self, host: str, port: int) -> bool:
        """Whether a TCP connection from the client's namespace to host:port opens."""
        code = ("import socket, sys\n"
                "try:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()\n"
                "except OSError:\n    sys.exit(1)\n")
        done = subprocess.run([*self.prefix(self.client_ns), sys.executable, "-c", code, host,
                               str(port)], capture_output=True, timeout=30)
        return done.returncode == 0


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces and veth pairs need root (run as root, as CI does)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"clp{secrets.token_hex(4)}"
    added = ip("netns", "add", probe)
    if added.returncode != 0:
        return f"`ip netns add` failed: {added.stderr.strip()}"
    ip("netns", "del", probe)
    return None


def require_namespaces() -> None:
    require("the partition test", unavailable_reason())


@contextmanager
def partition() -> Iterator[Partition]:
    """Two namespaces, service and client, joined by a veth pair on a random private /30."""
    tag = f"{os.getpid() % 100000}{secrets.token_hex(2)}"
    rng = random.Random(secrets.randbits(32))
    a, b, c = rng.randrange(256), rng.randrange(256), rng.randrange(64) * 4  # 10.a.b.c/30
    part = Partition(
        service_ns=f"clara-s{tag}", client_ns=f"clara-c{tag}",
        service_if=f"cs{tag}"[:15], client_if=f"cc{tag}"[:15],
        service_ip=f"10.{a}.{b}.{c + 1}", client_ip=f"10.{a}.{b}.{c + 2}",
    )
    try:
        for ns in (part.service_ns, part.client_ns):
            _checked("netns", "add", ns)
            _checked("-n", ns, "link", "set", "lo", "up")
        _checked("link", "add", part.service_if, "type", "veth", "peer", "name", part.client_if)
        _checked("link", "set", part.service_if, "netns", part.service_ns)
        _checked("link", "set", part.client_if, "netns", part.client_ns)
        for ns, link, address in ((part.service_ns, part.service_if, part.service_ip),
                                  (part.client_ns, part.client_if, part.client_ip)):
            _checked("-n", ns, "addr", "add", f"{address}/30", "dev", link)
            _checked("-n", ns, "link", "set", link, "up")
        yield part
    finally:
        for ns in (part.service_ns, part.client_ns):
            ip("netns", "del", ns)  # takes the veth end inside it along
        ip("link", "del", part.service_if)  # only if it never left this namespace
