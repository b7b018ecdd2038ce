"""Telegram adapter: thin python-telegram-bot handlers over ``core``."""
