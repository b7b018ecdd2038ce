"""The large-documents attack: one approved user sends 50 documents of 59 MP at once.

    python -m benchmarks.document_flood [--documents 50] [--megapixels 59]

Reports the bot process's resident memory (before, and the peak while the flood is taken in)
and how long another user waits for the answer to /help, sent every two seconds meanwhile.
Needs Redis and PostgreSQL (as the tests do); the stand-in, the bot and one worker run here.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from devkit.harness import Stack, fresh_postgres_database, running_stack

FIELD = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "bccd"


def _document(megapixels: float) -> bytes:
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(width * 3 / 4)
    with Image.open(sorted(FIELD.glob("*.jpg"))[0]) as field:
        big = np.asarray(field.convert("RGB").resize((width, height)), np.float32)
    noisy = np.clip(big + np.random.default_rng(0).normal(0, 2, big.shape), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(noisy.astype(np.uint8)).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _help_latencies(stack: Stack, user: int, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        before = len(stack.standin.wait_for(user, 0, 0))
        sent = time.monotonic()
        stack.standin.send_text(user, "/help")
        replies = stack.standin.wait_for(user, before + 1, 60)
        if len(replies) > before:
            out.append(replies[before].at - sent)
        time.sleep(1.6)  # under the per-user limit of 40 messages a minute


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=50)
    parser.add_argument("--megapixels", type=float, default=59)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    document = _document(args.megapixels)
    print(f"document: {args.megapixels:.0f} MP JPEG, {len(document) / 1e6:.1f} MB", flush=True)
    with contextlib.ExitStack() as resources:
        root = Path(resources.enter_context(tempfile.TemporaryDirectory()))
        url = resources.enter_context(fresh_postgres_database(args.pg))
        # The per-user limits would drop most of the flood before it costs anything: lifted,
        # so the bot takes all of it in.
        stack = resources.enter_context(running_stack(
            root, url, args.redis, {"HV_MAX_PHOTOS_PER_MINUTE": str(args.documents * 2),
                                    "HV_MAX_MESSAGES_PER_MINUTE": str(args.documents * 2 + 60)}))
        bot_pid = stack.children["bot"].process.pid
        attacker, other = stack.new_user(), stack.new_user()
        time.sleep(2)
        baseline = _rss_mb(bot_pid)
        stop, latencies, peak = threading.Event(), [], baseline
        helper = threading.Thread(target=_help_latencies, args=(stack, other, stop, latencies))
        helper.start()
        started = time.monotonic()
        for number in range(args.documents):
            stack.standin.send_document(attacker, document, f"scan{number}.jpg", "image/jpeg")
        while len(stack.submissions(attacker)) < args.documents \
                and time.monotonic() - started < 900:
            peak = max(peak, _rss_mb(bot_pid))
            time.sleep(0.1)
        taken_in = time.monotonic() - started
        stop.set()
        helper.join()
    print(f"bot resident memory: {baseline:.0f} MB before, peak {peak:.0f} MB while "
          f"{args.documents} documents were taken in ({taken_in:.0f} s)")
    ordered = sorted(latencies)
    print(f"another user's /help: {len(ordered)} answered, p50 "
          f"{statistics.median(ordered):.2f} s, p95 {ordered[int(0.95 * (len(ordered) - 1))]:.2f} s"
          f", max {ordered[-1]:.2f} s")


if __name__ == "__main__":
    main()
