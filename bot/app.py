"""Assemble the python-telegram-bot Application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

from telegram import BotCommand, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from core.db.notify import ResultListener, libpq_url
from core.settings import Settings

from .callbacks import Callbacks
from .delivery import delivery_loop
from .handlers import Handlers
from .pacing import ChatPacer
from .services import BotServices

log = logging.getLogger(__name__)
BotApplication = Application[Any, Any, Any, Any, Any, Any]

# Each command once: the menu Telegram shows and the handlers registered come from this list.
COMMANDS = [
    BotCommand("start", "introduction and access request"),
    BotCommand("help", "how to send a photo"),
    BotCommand("case", "open or show a case: /case REF"),
    BotCommand("history", "recent cases of your laboratory"),
    BotCommand("export", "CSV and PDF of a case: /export REF"),
    BotCommand("wbc", "the analyser's white-cell count for the open case: /wbc 7.2"),
    BotCommand("models", "model versions (admins)"),
    BotCommand("stats", "your laboratory's agreement with the bot, and its trust (admins)"),
    BotCommand("retrain", "retrain with the experts' corrections (admins)"),
    BotCommand("adapt", "a model version for your laboratory, from its experts' cells (admins)"),
    BotCommand("promote", "make a model version active (admins)"),
    BotCommand("rollback", "go back to the previous model (admins)"),
    BotCommand("group", "put a user in a laboratory group (admins)"),
    BotCommand("labname", "your laboratory's name on its reports (admins)"),
]


def build_application(settings: Settings, services: BotServices | None = None) -> BotApplication:
    if settings.bot_token is None:
        raise ValueError("HV_BOT_TOKEN is not set")
    services = services or BotServices.from_settings(settings)
    handlers = Handlers(services)
    delivery_task: dict[str, asyncio.Task[None]] = {}
    listener: dict[str, ResultListener] = {}

    async def post_init(app: BotApplication) -> None:
        await app.bot.set_my_commands(COMMANDS)
        delivery_task["task"] = asyncio.create_task(delivery_loop(app.bot, services))
        if libpq_url(settings.resolved_database_url) is not None:
            loop = asyncio.get_running_loop()

            def wake() -> None:
                loop.call_soon_threadsafe(services.wake_delivery.set)

            listener["thread"] = ResultListener(settings.resolved_database_url, wake).start()

    async def post_stop(_app: BotApplication) -> None:
        task = delivery_task.pop("task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if (thread := listener.pop("thread", None)) is not None:
            await asyncio.to_thread(thread.stop)
        services.queue.close()
        services.decoder.shutdown(wait=False, cancel_futures=True)

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("handler failed for update %s", getattr(update, "update_id", "?"),
                  exc_info=context.error)

    application = (
        Application.builder()
        .token(settings.bot_token.get_secret_value())
        .base_url(settings.bot_api_base_url)
        .base_file_url(settings.bot_api_file_url)
        .post_init(post_init)
        .post_stop(post_stop)
        # Photos from different users are independent; let them be handled side by side.
        .concurrent_updates(True)
        # Every send paced per chat and overall, a 429 waited out by its own chat only.
        .rate_limiter(ChatPacer())
        .build()
    )
    # New messages only: an edited photo or command is not analysed or run a second time.
    new = filters.UpdateType.MESSAGE
    for command in COMMANDS:
        application.add_handler(CommandHandler(command.command, getattr(handlers, command.command),
                                               filters=new))
    application.add_handler(CallbackQueryHandler(Callbacks(handlers).dispatch))
    application.add_handler(MessageHandler(new & (filters.PHOTO | filters.Document.ALL),
                                           handlers.image))
    # Joins, leaves, pins and title changes in a group are not messages to answer.
    application.add_handler(MessageHandler(new & ~filters.StatusUpdate.ALL, handlers.other))
    application.add_error_handler(on_error)
    return application


def run_bot(settings: Settings) -> None:
    application = build_application(settings)
    if settings.webhook_url is None:
        application.run_polling(allowed_updates=Update.ALL_TYPES)
        return
    if settings.webhook_secret is None:
        raise SystemExit("HV_WEBHOOK_URL needs HV_WEBHOOK_SECRET: without it anybody could post "
                         "updates to the bot")
    application.run_webhook(
        listen=settings.webhook_listen, port=settings.webhook_port,
        # The path is the URL's, so a proxy can forward it unchanged.
        url_path=urlsplit(settings.webhook_url).path.lstrip("/"),
        webhook_url=settings.webhook_url,
        secret_token=settings.webhook_secret.get_secret_value(),
        allowed_updates=Update.ALL_TYPES)
