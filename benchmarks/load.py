"""Load through the whole stack: simulated users send photos to the bot; every reply is timed.

    python -m benchmarks.load [--users 50] [--photos 10] [--workers 2] [--flood] [--redis URL]
        [--pg URL]

Each user sends a photo, waits for its reply, then sends the next (50 users in flight at once by
default). Latency is from the user's send to the bot's result edit, both seen by the Bot API
stand-in. Needs Redis and PostgreSQL (as the tests do); everything else runs here.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
from pathlib import Path

from devkit.harness import Stack, fresh_postgres_database, running_stack
from devkit.standin import FloodLimits

CELLS = sorted((Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pbc").glob("*.jpg"))


def run_user(stack: Stack, user: int, photos: int, latencies: list[float],
             lock: threading.Lock) -> None:
    data = [CELLS[(user + number) % len(CELLS)].read_bytes() for number in range(photos)]
    timed = stack.send_and_time(user, data)
    with lock:
        latencies.extend(timed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--photos", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--root", type=Path, help="keep logs and files here (default: a temp dir)")
    parser.add_argument("--flood", action="store_true",
                        help="the stand-in enforces Telegram's flood control (429s)")
    args = parser.parse_args()
    latencies: list[float] = []
    lock = threading.Lock()
    with contextlib.ExitStack() as resources:
        root = args.root or Path(resources.enter_context(tempfile.TemporaryDirectory()))
        root.mkdir(parents=True, exist_ok=True)
        url = resources.enter_context(fresh_postgres_database(args.pg))
        stack = resources.enter_context(running_stack(root, url, args.redis,
                                                      {"HV_MAX_PHOTOS_PER_MINUTE": "100"}))
        if args.flood:
            stack.standin.api.state.flood = FloodLimits()
        for extra in range(1, args.workers):
            stack.start_worker(f"worker{extra + 1}")
        users = [stack.new_user() for _ in range(args.users)]
        started = time.monotonic()
        threads = [threading.Thread(target=run_user, args=(stack, u, args.photos, latencies,
                                                           lock)) for u in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        time.sleep(2)  # any duplicate reply would arrive now
        answered = {u: len(stack.results(u)) for u in users}
        flood = stack.standin.api.state.flood
        flood_refusals = flood.refused if flood else 0
        rows = sum(len(stack.submissions(u)) for u in users)
    expected = args.users * args.photos
    duplicates = sum(max(0, n - args.photos) for n in answered.values())
    ordered = sorted(latencies)
    print(f"{args.users} users x {args.photos} photos, {args.workers} workers, "
          f"closed loop (each user waits for its reply)")
    print(f"answered {len(latencies)}/{expected}, duplicate replies {duplicates}, "
          f"stored submissions {rows}")
    print(f"send-to-reply latency: p50 {statistics.median(ordered):.2f} s, "
          f"p95 {ordered[int(0.95 * (len(ordered) - 1))]:.2f} s, max {ordered[-1]:.2f} s")
    print(f"throughput {len(latencies) / elapsed:.1f} photos/s over {elapsed:.0f} s")
    if args.flood:
        print(f"flood control: {flood_refusals} send(s) refused with 429 and retried")


if __name__ == "__main__":
    main()
