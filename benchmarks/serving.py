"""Serving speed through the whole stack: send-to-reply latency, throughput, CPU and memory.

    python -m benchmarks.serving [--users 1 10 50] [--photos 5] [--workers 2]
                                 [--worker-env KEY=VALUE ...] [--root DIR]

For each number of concurrent users and each kind of photo (a single-cell close-up from PBC; a
whole field: a BCCD field upscaled to 1280 px, as Telegram delivers a photo), every user sends a
photo, waits for its reply, then sends the next. Latency is from the send to the result edit,
both seen by the Bot API stand-in. It also reports worker throughput (classified cells per
second of wall time), the CPU seconds each process spent per photo (the harness, the simulated
users and stand-in, apart; "all" is the whole machine, databases included), and each worker's
memory.
Needs Redis and PostgreSQL (as the tests do).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

from devkit.harness import Stack, fresh_postgres_database, running_stack

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
TICKS = os.sysconf("SC_CLK_TCK")


def photos(kind: str) -> list[bytes]:
    if kind == "cell":
        return [p.read_bytes() for p in sorted((FIXTURES / "pbc").glob("*.jpg"))]
    out = []
    for path in sorted((FIXTURES / "bccd").glob("*.jpg")):
        with Image.open(path) as field:
            big = field.convert("RGB").resize((1280, 960), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        big.save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy_seconds() -> float:
    """CPU time all processes of this machine spent busy (user, system, interrupts, steal)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def scenario(stack: Stack, users: int, per_user: int, kind: str) -> dict[str, float]:
    data = photos(kind)
    people = [stack.new_user() for _ in range(users)]
    latencies: list[float] = []
    lock = threading.Lock()
    before = {name: cpu_seconds(c.process.pid) for name, c in stack.children.items()}
    # The simulated users and the Bot API stand-in run in this process; in production they are
    # Telegram's and the users' machines, so their share of the cores is reported apart.
    before["harness"] = cpu_seconds(os.getpid())
    before["all"] = machine_busy_seconds()
    cells_before = _cells(stack)

    def session(user: int) -> None:
        timed = stack.send_and_time(user, [data[(user + n) % len(data)] for n in range(per_user)])
        with lock:
            latencies.extend(timed)

    started = time.monotonic()
    threads = [threading.Thread(target=session, args=(u,)) for u in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    ordered = sorted(latencies)
    cpu = {name: cpu_seconds(c.process.pid) - before[name] for name, c in stack.children.items()}
    cpu["harness"] = cpu_seconds(os.getpid()) - before["harness"]
    cpu["all"] = machine_busy_seconds() - before["all"]
    return {
        "photos": len(ordered), "p50": statistics.median(ordered),
        "p95": ordered[round(0.95 * (len(ordered) - 1))],
        "photos_per_s": len(ordered) / elapsed,
        "cells_per_s": (_cells(stack) - cells_before) / elapsed,
        **{f"cpu_ms_per_photo_{name}": 1000 * seconds / len(ordered)
           for name, seconds in cpu.items()},
    }


def _cells(stack: Stack) -> int:
    from sqlalchemy import func, select

    from core.db.models import CellResult

    with stack.sessions() as session:
        return session.scalar(select(func.count(CellResult.id)).where(
            CellResult.label.is_not(None))) or 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--photos", type=int, default=5, help="photos per user and scenario")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=["cell", "field"])
    parser.add_argument("--worker-env", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--root", type=Path)
    args = parser.parse_args()
    env = {"HV_MAX_PHOTOS_PER_MINUTE": "1000", "HV_MAX_MESSAGES_PER_MINUTE": "1000",
           **dict(item.split("=", 1) for item in args.worker_env)}
    with contextlib.ExitStack() as resources:
        root = args.root or Path(resources.enter_context(tempfile.TemporaryDirectory()))
        root.mkdir(parents=True, exist_ok=True)
        url = resources.enter_context(fresh_postgres_database(args.pg))
        stack = resources.enter_context(running_stack(root, url, args.redis, env))
        for extra in range(1, args.workers):
            stack.start_worker(f"worker{extra + 1}")
        # Warm up: every worker loads its model before anything is timed.
        scenario(stack, args.workers * 2, 1, "cell")
        print(f"{args.workers} workers, env {args.worker_env or 'default'}; closed loop, "
              f"{args.photos} photos per user", flush=True)
        for kind in args.kinds:
            for users in args.users:
                result = scenario(stack, users, args.photos, kind)
                cpu = ", ".join(f"{k.removeprefix('cpu_ms_per_photo_')} {v:.0f}"
                                for k, v in result.items() if k.startswith("cpu_ms"))
                print(f"{kind:5s} users {users:3d}: p50 {result['p50']:.2f} s, p95 "
                      f"{result['p95']:.2f} s, {result['photos_per_s']:.1f} photos/s, "
                      f"{result['cells_per_s']:.1f} classified cells/s; CPU ms/photo: {cpu}",
                      flush=True)
        workers = {n: c for n, c in stack.children.items() if n.startswith("worker")}
        print("memory (RSS): " + ", ".join(f"{n} {rss_mb(c.process.pid):.0f} MB"
                                           for n, c in workers.items()))


if __name__ == "__main__":
    main()
