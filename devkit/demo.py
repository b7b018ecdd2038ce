"""``python -m devkit demo`` (``make demo``): the whole stack on embedded defaults, with a
sample conversation.

SQLite, a broker that needs no server (kombu's filesystem transport) unless ``HV_BROKER_URL``
names one, a real worker process, a real bot process, and, with no bot token configured, the Bot
API stand-in with a simulated technician who sends the bundled sample image.
"""

from __future__ import annotations

import time
from pathlib import Path

from core.db import migrate
from core.settings import Settings, without_password
from devkit.processes import start_child
from devkit.standin import BotAction, StandInThread

SAMPLE = Path(__file__).parent / "samples" / "neutrophil_SNE_113678.jpg"
DEMO_USER = 4242


def _print_action(action: BotAction) -> None:
    verb = "edits its reply" if action.method == "editMessageText" else "replies"
    body = action.text or action.caption or ""
    print(f"\n🤖 bot {verb}:\n    " + body.replace("\n", "\n    "), flush=True)


def run_demo(settings: Settings, image: Path | None = None) -> int:
    settings.ensure_dirs()
    print(f"database: {without_password(settings.resolved_database_url)}")
    print(f"broker:   {without_password(settings.resolved_broker_url)}")
    migrate.upgrade(settings.resolved_database_url)
    standin = None
    env = {"HV_DATA_DIR": str(settings.data_dir.resolve())}
    if settings.bot_token is None:
        # Telegram never reuses a chat's message ids; a stand-in counting from 1 again would
        # have this run's photo taken for a message the database already holds from the last.
        standin = StandInThread(first_message_id=int(time.time())).start()
        # The simulated technician is the laboratory's admin, so no approval step is needed.
        env |= {"HV_BOT_TOKEN": standin.token, "HV_BOT_API_BASE_URL": standin.base_url,
                "HV_BOT_API_FILE_URL": standin.file_url, "HV_ADMIN_IDS": str(DEMO_USER)}
        print(f"Telegram: local Bot API stand-in at {standin.base_url}; the simulated "
              f"technician (id {DEMO_USER}) is configured as admin")
    logs = settings.data_dir / "logs"
    worker = start_child("worker", ["worker"], env, logs)
    bot = start_child("bot", ["bot"], env, logs)
    try:
        worker.wait_for_log("ready.", timeout=120)
        if standin is None:
            print("Bot and worker are running against Telegram; press Ctrl-C to stop.")
            bot.process.wait()
            return 0
        bot.wait_for_log("Application started", timeout=60)
        return _converse(standin, image or SAMPLE)
    except KeyboardInterrupt:
        return 130
    finally:
        bot.stop()
        worker.stop()
        if standin is not None:
            standin.stop()
        print(f"\nlogs: {logs}")


def _converse(standin: StandInThread, image: Path) -> int:
    print("\n👩‍🔬 technician: /start", flush=True)
    standin.send_text(DEMO_USER, "/start")
    _print_action(standin.wait_for(DEMO_USER, 1, timeout=30)[0])

    print("\n👩‍🔬 technician: /case DEMO-001", flush=True)
    standin.send_text(DEMO_USER, "/case DEMO-001")
    _print_action(standin.wait_for(DEMO_USER, 2, timeout=30)[1])

    print(f"\n👩‍🔬 technician sends {image.name} as a file", flush=True)
    started = time.monotonic()
    standin.send_document(DEMO_USER, image.read_bytes(), image.name, "image/jpeg")
    ack = standin.wait_for(DEMO_USER, 3, timeout=30)
    _print_action(ack[2])
    result = standin.wait_for(
        DEMO_USER, 1, timeout=120, predicate=lambda a: a.method == "editMessageText"
    )
    if not result:
        print("no result arrived within 120 s: see the logs")
        return 1
    _print_action(result[0])
    print(f"\n(send to result: {time.monotonic() - started:.1f} s)")
    return 0
