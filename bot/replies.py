"""Replies longer than one Telegram message go out as several, the buttons on the last."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Message

from . import messages


async def reply_pages(message: Message, text: str,
                      markup: InlineKeyboardMarkup | None = None) -> Message:
    """Send ``text`` below ``message`` in as many messages as Telegram's limit needs; returns
    the last (the one with the buttons)."""
    *first, last = messages.pages(text)
    for page in first:
        await message.reply_text(page)
    return await message.reply_text(last, reply_markup=markup)
