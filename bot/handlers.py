"""Command and message handlers: each reads the update, calls ``core``, replies."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from . import messages
from .intake import receive_image
from .services import BotServices


class Handlers:
    def __init__(self, services: BotServices) -> None:
        self.services = services

    async def start(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_message:
            await update.effective_message.reply_text(messages.WELCOME)

    async def help(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_message:
            await update.effective_message.reply_text(messages.HELP)

    async def image(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_message:
            await receive_image(update.effective_message, self.services)

    async def other(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_message:
            await update.effective_message.reply_text(messages.NOT_A_PHOTO)
