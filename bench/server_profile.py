"""Where the Temporal server spends its CPU in a round, by what it was doing.

`perf record` samples the server's stacks (cpu-clock, 997 Hz, so a sample is about a millisecond of
CPU) while a round runs. The `temporal` binary is stripped, but a Go binary keeps its function
table (`.gopclntab`) for its own tracebacks, and `GoSymbols` reads the names from there. Each
sample is then put under one heading, the innermost that its stack shows:

    rpc <Service>.<Method>      the server's handler of one RPC (frontend, history, matching)
    task <queue>.<kind>         one history task: a transfer, timer or visibility task
    gc background               the Go runtime's background marking, sweeping and scavenging
    sqlite                      the embedded database outside those (its own connection goroutines)
    grpc transport              gRPC's reading and writing outside a handler
    history queues              the history service's task queues: loading, tracking, scheduling
    stack growth                a goroutine's stack being copied (perf cannot unwind past it)
    other: <function>           anything else, by its stack's outermost Go function

The machine's speed moves every heading in proportion: a slower hour makes each one slower. What the
table shows is whether one side spends more than another under one heading.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import re
import shutil
import signal
import statistics
import struct
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

HZ = 997
"""Samples a second: about one a millisecond, prime so that no periodic work aligns with it."""

_PCLNTAB_MAGIC = b"\xf1\xff\xff\xff\x00\x00\x01\x08"
"""Go 1.20+'s pclntab header: magic 0xfffffff1, two pad bytes, instruction size 1, pointer size 8."""
_HANDLER = re.compile(r"_(\w+?)Service_(\w+)_Handler$")
_TASK = re.compile(r"(\w*Executor)\)\.(?:execute|process)(\w+)$")
_EXECUTOR = re.compile(r"Queue(?:Active|Standby)?TaskExecutor$")
_BY_PART = (
    ("gc background", ("runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge")),
    ("sqlite", ("sqlite",)),
    ("grpc transport", ("google.golang.org/grpc.",)),
    ("history queues", ("go.temporal.io/server/service/history/queues.",)),
)
"""Headings for a stack with neither handler nor task in it, by a part of a function's name."""


class GoSymbols:
    """Function names of a stripped Go (1.20+, amd64) executable, from its pclntab."""

    def __init__(self, binary: Path) -> None:
        self.path = str(binary.resolve())
        data = binary.read_bytes()
        header = data.find(_PCLNTAB_MAGIC)
        if header < 0:
            raise ValueError(f"{binary}: no Go 1.20+ function table")
        count, _, text, names, *_, functions = struct.unpack_from("<qQQQQQQQ", data, header + 8)
        text = text or _section_address(data, b".text")  # recent linkers leave it to the runtime
        self.entries: list[int] = []
        self.names: list[str] = []
        table = header + functions
        for index in range(count):
            entry, offset = struct.unpack_from("<II", data, table + 8 * index)
            (name,) = struct.unpack_from("<i", data, table + offset + 4)
            start = header + names + name
            self.entries.append(text + entry)
            self.names.append(data[start : data.index(b"\0", start)].decode(errors="replace"))
        self.end = text + struct.unpack_from("<I", data, table + 8 * count)[0]
        self.load_base = _load_base(data)

    def name(self, address: int) -> str | None:
        """The function holding `address` (a virtual address), or None outside the binary's code."""
        if not self.entries[0] <= address < self.end:
            return None
        return self.names[bisect.bisect_right(self.entries, address) - 1]


def _section_address(data: bytes, wanted: bytes) -> int:
    """The virtual address of ELF section `wanted`."""
    (offset,) = struct.unpack_from("<Q", data, 0x28)
    size, count, names_index = struct.unpack_from("<HHH", data, 0x3A)
    names_offset = struct.unpack_from("<Q", data, offset + names_index * size + 0x18)[0]
    for index in range(count):
        name, _, _, address = struct.unpack_from("<IIQQ", data, offset + index * size)
        if data.startswith(wanted + b"\0", names_offset + name):
            return int(address)
    raise ValueError(f"no {wanted.decode()} section")


def _load_base(data: bytes) -> int:
    """What perf's addresses, relative to the executable's mapping, are offset by: the first
    loadable segment's virtual address less its file offset."""
    (offset,) = struct.unpack_from("<Q", data, 0x20)
    size, count = struct.unpack_from("<HH", data, 0x36)
    for index in range(count):
        kind, _, file_offset, address = struct.unpack_from("<IIQQ", data, offset + index * size)
        if kind == 1:  # PT_LOAD
            return int(address - file_offset)
    raise ValueError("no loadable segment")


def heading(stack: list[str]) -> str:
    """The heading of one sample, its stack's function names from the innermost out."""
    for function in stack:
        if match := _HANDLER.search(function):
            return f"rpc {match[1]}.{match[2]}"
        if match := _TASK.search(function):
            return f"task {_EXECUTOR.sub('', match[1])}.{match[2]}"
    for name, parts in _BY_PART:
        if any(part in function for function in stack for part in parts):
            return name
    if not stack:
        return "outside the server's code (kernel)"
    return "stack growth" if stack[-1] == "runtime.morestack" else f"other: {stack[-1]}"


def headings(script: str, symbols: GoSymbols) -> Counter[str]:
    """Samples per heading from `perf script -F ip,dso` output: one block of frames per sample,
    innermost first, each `<address> (<file>)` with the address relative to the file's mapping;
    frames in other files (the kernel's, the vDSO's) are left out of the stack."""
    counts: Counter[str] = Counter()
    ours = f"({symbols.path})"
    for block in script.split("\n\n"):
        stack: list[str] = []
        for line in block.splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[1] == ours:
                name = symbols.name(int(fields[0], 16) + symbols.load_base)
                stack.append(name or "outside the binary's functions")
        if block.strip():
            counts[heading(stack)] += 1
    return counts


def available() -> str | None:
    """Why `--profile` cannot run here, or None."""
    if shutil.which("perf") is None:
        return "--profile needs perf (Debian: apt-get install linux-perf)"
    return None


@contextlib.asynccontextmanager
async def perf_attached(*arguments: str) -> AsyncIterator[None]:
    """`perf <arguments>` (attached to a process by them) while the block runs; stopped as by ^C."""
    perf = await asyncio.create_subprocess_exec(
        "perf", *arguments, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    await asyncio.sleep(0.3)  # perf attaches to every thread before the round starts
    if perf.returncode is not None:
        error = (await perf.communicate())[1].decode(errors="replace").strip()
        raise RuntimeError(f"perf {arguments[0]} failed: {error}")
    try:
        yield
    finally:
        perf.send_signal(signal.SIGINT)
        await perf.wait()


def recording(pid: int, output: Path) -> contextlib.AbstractAsyncContextManager[None]:
    """Sample process `pid`'s stacks into `output` while the block runs."""
    return perf_attached("record", "-q", "-F", str(HZ), "-g", "-p", str(pid), "-o", str(output))


async def read(output: Path, symbols: GoSymbols) -> Counter[str]:
    """Samples per heading in one recording."""
    perf = await asyncio.create_subprocess_exec(
        "perf", "script", "-i", str(output), "-F", "ip,dso",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    script, _ = await perf.communicate()
    return headings(script.decode(errors="replace"), symbols)


def per_job(counts: Counter[str], jobs: int) -> dict[str, float]:
    """Milliseconds of server CPU per job under each heading, from one round's samples."""
    return {name: count * 1000 / HZ / jobs for name, count in counts.items()}


def table(
    sides: Mapping[str, Sequence[Mapping[str, float]]],
    against: str,
    rows: int = 14,
    unit: str = "ms of server CPU per job",
    total: bool = True,
) -> list[str]:
    """Each side's median over its rounds (`per_job` figures) under each heading, and (with `total`)
    of the rounds' totals; the headings where a side differs most from side `against` first."""

    def median(side: str, name: str | None) -> float:
        return statistics.median(
            sum(figures.values()) if name is None else figures.get(name, 0.0) for figures in sides[side]
        )

    names = set().union(*(figures for rounds in sides.values() for figures in rounds))
    spread = {name: max(abs(median(side, name) - median(against, name)) for side in sides) for name in names}
    width = max(12, *(len(side) + 2 for side in sides))
    lines = [f"{unit:44s}" + "".join(f"{side:>{width}s}" for side in sides)]
    for name in [*([None] if total else []), *sorted(names, key=lambda name: -spread[name])[:rows]]:
        label = "all (median of the rounds' totals)" if name is None else name
        lines.append(f"{label[:44]:44s}" + "".join(f"{median(side, name):{width}.2f}" for side in sides))
    return lines
