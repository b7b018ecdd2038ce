"""Load through the whole stack: simulated users send photos to the bot; every reply is timed.

    python -m benchmarks.load [--users 50] [--photos 10] [--workers 2] [--flood]
        [--album-users 10] [--album-size 5] [--cold] [--redis URL] [--pg URL]

Each user sends a photo, waits for its reply, then sends the next (50 users in flight at once by
default); ``--album-users`` of them send theirs as albums of ``--album-size`` instead, each album
answered as one result. Latency is from the user's send to the bot's result, both seen by the
Bot API stand-in (for an album, every photo in it counts that album's latency). An untimed
album reaches every worker first (not with ``--cold``: a deployment's first photos). Needs
Redis and PostgreSQL (as the tests do); everything else runs here.
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


def run_user(stack: Stack, user: int, photos: int, album_size: int,
             latencies: dict[str, list[float]], lock: threading.Lock) -> None:
    data = [CELLS[(user + number) % len(CELLS)].read_bytes() for number in range(photos)]
    timed = (stack.send_albums_and_time(user, data, album_size) if album_size > 1
             else stack.send_and_time(user, data))
    with lock:
        latencies["album" if album_size > 1 else "single"].extend(timed)


def _summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    if not ordered:
        return "none"
    return (f"p50 {statistics.median(ordered):.2f} s, "
            f"p95 {ordered[int(0.95 * (len(ordered) - 1))]:.2f} s, max {ordered[-1]:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--photos", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--album-users", type=int, default=10,
                        help="how many of the users send their photos as albums")
    parser.add_argument("--album-size", type=int, default=5)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--root", type=Path, help="keep logs and files here (default: a temp dir)")
    parser.add_argument("--cold", action="store_true",
                        help="time the first photos too, sent as soon as the workers are up")
    parser.add_argument("--flood", action="store_true",
                        help="the stand-in enforces Telegram's flood control (429s)")
    args = parser.parse_args()
    latencies: dict[str, list[float]] = {"single": [], "album": []}
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
        if not args.cold:
            # A worker warms its model up as it starts (seconds): a first album, untimed,
            # reaches them all before the clock starts.
            warm = stack.new_user()
            stack.send_albums_and_time(warm, [CELLS[0].read_bytes()] * (2 * args.workers),
                                       2 * args.workers)
        users = [stack.new_user() for _ in range(args.users)]
        # Album users are spread among the others, not all started first.
        step = max(1, args.users // max(1, args.album_users))
        senders = set(users[::step][:args.album_users])
        albums = {u: args.album_size if u in senders else 1 for u in users}
        started = time.monotonic()
        threads = [threading.Thread(target=run_user, args=(stack, u, args.photos, albums[u],
                                                           latencies, lock)) for u in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        time.sleep(2)  # any duplicate reply would arrive now
        answered = {u: len(stack.results(u)) for u in users}
        owed = {u: -(-args.photos // albums[u]) for u in users}  # results each user is owed
        flood = stack.standin.api.state.flood
        flood_refusals = flood.refused if flood else 0
        rows = sum(len(stack.submissions(u)) for u in users)
    expected = args.users * args.photos
    duplicates = sum(max(0, answered[u] - owed[u]) for u in answered)
    album_users = sum(1 for size in albums.values() if size > 1)
    every = latencies["single"] + latencies["album"]
    print(f"{args.users} users x {args.photos} photos ({album_users} of them as albums of "
          f"{args.album_size}), {args.workers} workers, closed loop (each user waits for its "
          "reply)")
    print(f"answered {len(every)}/{expected}, duplicate replies {duplicates}, "
          f"stored submissions {rows}")
    print(f"send-to-reply latency: {_summary(every)}")
    print(f"   photos sent one by one: {_summary(latencies['single'])}")
    print(f"   photos sent in albums:  {_summary(latencies['album'])}")
    print(f"throughput {len(every) / elapsed:.1f} photos/s over {elapsed:.0f} s")
    if args.flood:
        print(f"flood control: {flood_refusals} send(s) refused with 429 and retried")


if __name__ == "__main__":
    main()
