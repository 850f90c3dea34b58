"""Ports `redrive dev` needs: free, or it refuses to start, naming the port and (on Linux) who holds it.

Without this check a dev server left behind by an earlier `redrive dev` that was killed answered on
the port, the new one failed to bind, and `redrive dev` carried on against the old one."""

from __future__ import annotations

import os
import socket
from pathlib import Path


class PortsBusy(Exception):
    """A port `redrive dev` needs is taken; the message says which, by whom, and what to set."""


def check_free(host: str, ports: dict[str, tuple[int, str]]) -> None:
    """`PortsBusy` naming the first of `ports` (what: (port, setting)) that cannot be bound."""
    for what, (port, setting) in ports.items():
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                holder = listener(port)
                by = f" by {holder}" if holder else ""
                raise PortsBusy(  # one line: the person reads it on the terminal
                    f"redrive dev: port {port} ({what}) is in use{by}; "
                    f"stop that, or set {setting} to a free port"
                ) from None


def listener(port: int) -> str | None:
    """`pid 123 (temporal server start-dev …)` for the process listening on TCP `port`, if this is
    Linux and the process is ours to see."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in (Path("/proc") / pid / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    command = (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    return f"pid {pid} ({command.strip()[:80]})"
        except OSError:  # gone, or not ours
            continue
    return None


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(inode)
    return inodes
