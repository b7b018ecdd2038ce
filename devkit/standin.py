"""A local stand-in for the Telegram Bot API, speaking its HTTP wire format on 127.0.0.1.

python-telegram-bot runs against it unmodified (only the base URLs change). Besides the Bot API
methods the bot uses, it offers a control API to act as users (send text, commands, photos,
documents, button presses) and to read or wait for what the bot sent. Tests use it in-process
through :class:`StandInThread`; the demo and benchmarks can use the HTTP control routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import BodyPartReader, web
from PIL import Image

T = TypeVar("T")
BOT_USER = {"id": 7000000001, "is_bot": True, "first_name": "HematoVision",
            "username": "hematovision_bot", "can_join_groups": True,
            "can_read_all_group_messages": False, "supports_inline_queries": False}

INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout", "reply_to_message_id"}
JSON_FIELDS = {"reply_markup", "reply_parameters", "allowed_updates", "commands",
               "link_preview_options", "entities", "caption_entities", "media"}
PHOTO_SIDES = (90, 320, 1280)  # Telegram keeps a few downscaled JPEG renditions of a photo


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes

    @property
    def file_path(self) -> str:
        return f"files/{self.file_unique_id}"


@dataclass
class Fault:
    """A planned failure for the next call(s) of a method (for fault-injection tests)."""

    status: int = 500
    retry_after: int | None = None
    delay: float = 0.0
    times: int = 1


@dataclass
class BotAction:
    """One thing the bot did in a chat: a sent message or an edit of one."""

    method: str
    chat_id: int
    message_id: int
    text: str | None = None
    caption: str | None = None
    reply_markup: dict[str, Any] | None = None
    file: bytes | None = None
    reply_to: int | None = None
    at: float = field(default_factory=time.monotonic)


class StandInState:
    def __init__(self, token: str, first_message_id: int = 1) -> None:
        self.token = token
        self.first_message_id = first_message_id
        self.updates: list[dict[str, Any]] = []
        self.update_ids = itertools.count(1)
        self.message_ids: dict[int, itertools.count[int]] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.actions: list[BotAction] = []
        self.files: dict[str, StoredFile] = {}
        self.file_ids = itertools.count(1)
        self.media_group_ids = itertools.count(13000000000000001)
        self.faults: dict[str, list[Fault]] = {}
        self.callback_users: dict[str, int] = {}  # callback query id -> the user who pressed
        self.calls: list[str] = []
        # Users who blocked the bot (403 on every send), and groups upgraded to supergroups
        # (400 with migrate_to_chat_id), as Telegram answers them.
        self.blocked: set[int] = set()
        self.migrated: dict[int, int] = {}
        # setWebhook's URL and secret: updates are then posted there, never by getUpdates.
        self.webhook: tuple[str, str | None] | None = None
        self.webhook_sender: asyncio.Task[None] | None = None
        self.webhook_posts: list[int] = []  # HTTP status of each post, for tests
        self.flood: FloodLimits | None = None  # Telegram's flood control, when turned on
        # Privacy mode (a bot's default): group messages not addressed to the bot never reach
        # it; they are kept here for tests to see what the bot was not shown.
        self.privacy_mode = True
        self.withheld: list[dict[str, Any]] = []
        # Set as the stand-in stops: a long poll still waiting returns at once, since the
        # server's shutdown waits for every request in flight (a poll holds on for its timeout).
        self.closing = False
        self.changed = asyncio.Condition()

    # ---- helpers -------------------------------------------------------------------------
    def next_message_id(self, chat_id: int) -> int:
        return next(self.message_ids.setdefault(chat_id, itertools.count(self.first_message_id)))

    def add_file(self, data: bytes) -> StoredFile:
        number = next(self.file_ids)
        stored = StoredFile(f"FILE{number:06d}", f"U{number:06d}", data)
        self.files[stored.file_id] = stored
        return stored

    @staticmethod
    def user(user_id: int, name: str | None = None) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": name or f"User{user_id}",
                "username": f"user{user_id}"}

    @staticmethod
    def private_chat(user_id: int) -> dict[str, Any]:
        return {"id": user_id, "type": "private", "first_name": f"User{user_id}"}

    @staticmethod
    def chat(chat_id: int) -> dict[str, Any]:
        """A user's private chat (positive id), else a group (supergroups' ids: -100...)."""
        if chat_id > 0:
            return StandInState.private_chat(chat_id)
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "type": kind, "title": "Haematology"}

    async def close(self) -> None:
        async with self.changed:
            self.closing = True
            self.changed.notify_all()

    async def push_update(self, payload: dict[str, Any]) -> dict[str, Any]:
        async with self.changed:
            update = {"update_id": next(self.update_ids), **payload}
            self.updates.append(update)
            self.changed.notify_all()
        return update

    def photo_sizes(self, data: bytes) -> list[dict[str, Any]]:
        try:
            with Image.open(io.BytesIO(data)) as original:
                image = original.convert("RGB")
        except Exception:
            stored = self.add_file(data)
            return [{"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                     "width": 0, "height": 0, "file_size": len(data)}]
        sizes = []
        for side in PHOTO_SIDES:
            scale = min(1.0, side / max(image.size))
            rendition = image.resize((max(1, round(image.width * scale)),
                                      max(1, round(image.height * scale))))
            buffer = io.BytesIO()
            rendition.save(buffer, format="JPEG", quality=87)
            stored = self.add_file(buffer.getvalue())
            sizes.append({"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                          "width": rendition.width, "height": rendition.height,
                          "file_size": len(stored.data)})
            if scale == 1.0:
                break
        return sizes

    def bot_message(self, chat_id: int, **content: Any) -> dict[str, Any]:
        message = {"message_id": self.next_message_id(chat_id), "date": int(time.time()),
                   "chat": self.chat(chat_id), "from": BOT_USER, **content}
        self.messages[(chat_id, message["message_id"])] = message
        return message

    async def record(self, action: BotAction) -> None:
        async with self.changed:
            self.actions.append(action)
            self.changed.notify_all()


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None,
                 migrate_to_chat_id: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id


SENDING_METHODS = frozenset({"sendMessage", "editMessageText", "sendPhoto", "sendDocument",
                             "sendMediaGroup"})


@dataclass
class FloodLimits:
    """Telegram's flood control, as token buckets: a burst of ``chat_burst`` messages to one
    chat, then ``chat_per_second``; ``global_per_second`` over all chats. A send beyond them
    gets 429 with ``retry_after``. Off unless a test or benchmark turns it on."""

    chat_burst: float = 5.0
    chat_per_second: float = 1.0
    global_per_second: float = 30.0
    # (tokens, when last counted) per chat and overall; a new bucket starts full.
    _chats: dict[int, tuple[float, float]] = field(default_factory=dict)
    _global: tuple[float, float] | None = None
    refused: int = 0

    def _take(self, bucket: tuple[float, float], capacity: float, rate: float,
              now: float) -> tuple[float, float] | None:
        tokens, at = bucket
        tokens = min(capacity, tokens + (now - at) * rate)
        return (tokens - 1, now) if tokens >= 1 else None

    def admit(self, chat_id: int, now: float) -> int | None:
        """None if the send may go; else the seconds to wait (retry_after)."""
        chat = self._take(self._chats.get(chat_id, (self.chat_burst, now)), self.chat_burst,
                          self.chat_per_second, now)
        overall = self._take(self._global or (self.global_per_second, now),
                             self.global_per_second, self.global_per_second, now)
        if chat is None or overall is None:
            self.refused += 1
            return 1
        self._chats[chat_id], self._global = chat, overall
        return None


def _check_chat(state: StandInState, params: dict[str, Any]) -> None:
    if "chat_id" not in params:
        return
    chat_id = int(params["chat_id"])
    if chat_id in state.blocked:
        raise ApiError(403, "Forbidden: bot was blocked by the user")
    if chat_id in state.migrated:
        raise ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                       migrate_to_chat_id=state.migrated[chat_id])


def _check_flood(state: StandInState, method: str, params: dict[str, Any]) -> None:
    if state.flood is None or method not in SENDING_METHODS or "chat_id" not in params:
        return
    if (wait := state.flood.admit(int(params["chat_id"]), time.monotonic())) is not None:
        raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)


async def _params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    if request.content_type == "application/json":
        params = await request.json()
    elif request.can_read_body:
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = value.file.read()
            else:
                params[key] = value
    else:
        params = dict(request.query)
    for key in list(params):
        if key in INT_FIELDS and isinstance(params[key], str):
            params[key] = int(params[key])
        elif key in JSON_FIELDS and isinstance(params[key], str):
            params[key] = json.loads(params[key])
    return params, files


def _attached(params: dict[str, Any], files: dict[str, bytes], name: str,
              state: StandInState) -> bytes:
    value = params.get(name)
    if name in files:
        return files[name]
    if isinstance(value, str) and value.startswith("attach://"):
        return files[value.removeprefix("attach://")]
    if isinstance(value, str) and value in state.files:
        return state.files[value].data
    raise ApiError(400, f"Bad Request: there is no {name} in the request")


# Telegram's documented limits, enforced as Telegram does: texts and captions counted in UTF-16
# code units, callback data in bytes, file sizes in bytes.
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
ANSWER_LIMIT = 200
GET_FILE_LIMIT = 20 * 1024 * 1024
ALBUM_SIZES = range(2, 11)  # an album (media group) holds 2 to 10 items
DOCUMENT_UPLOAD_LIMIT = 50 * 1024 * 1024


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _check_text(text: str) -> None:
    if not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    if _utf16_length(text) > TEXT_LIMIT:
        raise ApiError(400, "Bad Request: message is too long")


def _check_album(kinds: list[str]) -> None:
    """Telegram's album rules: 2-10 items; documents only with documents, audio only with
    audio, photos and videos together."""
    if len(kinds) not in ALBUM_SIZES:
        raise ApiError(400, "Bad Request: wrong number of media in the album: 2-10 expected")
    for alone in ("document", "audio"):
        if alone in kinds and set(kinds) != {alone}:
            raise ApiError(400, f"Bad Request: {alone}s can't be mixed with other media types")
    if not set(kinds) <= {"photo", "video", "document", "audio"}:
        raise ApiError(400, "Bad Request: unsupported media type in the album")


def _check_markup(p: dict[str, Any]) -> None:
    for row in (p.get("reply_markup") or {}).get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


class BotApi:
    """Implements the Bot API methods; each returns the ``result`` of a successful call."""

    def __init__(self, state: StandInState) -> None:
        self.state = state

    async def getMe(self, _p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        return BOT_USER

    async def deleteWebhook(self, _p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        self.state.webhook = None
        return True

    async def setWebhook(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        url, secret = str(p.get("url", "")), p.get("secret_token")
        if not url:
            self.state.webhook = None
            return True
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.state.webhook = (url, None if secret is None else str(secret))
        if self.state.webhook_sender is None:
            self.state.webhook_sender = asyncio.create_task(self._post_updates())
        return True

    async def _post_updates(self) -> None:
        """Telegram's side of a webhook: post each update in order, retrying until a 2xx."""
        state = self.state
        async with aiohttp.ClientSession() as client:
            while True:
                async with state.changed:
                    while state.webhook is None or not state.updates:
                        await state.changed.wait()
                    update, (url, secret) = state.updates[0], state.webhook
                headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
                try:
                    async with client.post(url, json=update, headers=headers) as response:
                        state.webhook_posts.append(response.status)
                        delivered = response.status < 300
                except aiohttp.ClientError:
                    delivered = False
                if delivered:
                    async with state.changed:
                        if state.updates and state.updates[0] is update:
                            state.updates.pop(0)
                else:
                    await asyncio.sleep(0.5)

    async def setMyCommands(self, _p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        return True

    async def getUpdates(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        state = self.state
        if state.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        offset = int(p.get("offset", 0) or 0)
        limit = int(p.get("limit", 100) or 100)
        timeout = float(p.get("timeout", 0) or 0)
        deadline = time.monotonic() + timeout
        async with state.changed:
            # An offset confirms every earlier update, as in the real API.
            state.updates = [u for u in state.updates if u["update_id"] >= offset]
            while not state.updates and time.monotonic() < deadline and not state.closing:
                try:
                    await asyncio.wait_for(state.changed.wait(), deadline - time.monotonic())
                except TimeoutError:
                    break
            return state.updates[:limit]

    async def sendMessage(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        chat_id = int(p["chat_id"])
        text = str(p.get("text", ""))
        _check_text(text)
        _check_markup(p)
        extra = {"reply_markup": p["reply_markup"]} if p.get("reply_markup") else {}
        message = self.state.bot_message(chat_id, text=text, **extra)
        await self.state.record(BotAction("sendMessage", chat_id, message["message_id"], text=text,
                                          reply_markup=p.get("reply_markup"),
                                          reply_to=_reply_to(p)))
        return message

    async def editMessageText(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        chat_id, message_id = int(p["chat_id"]), int(p["message_id"])
        message = self.state.messages.get((chat_id, message_id))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        text = str(p.get("text", ""))
        _check_text(text)
        _check_markup(p)
        if message.get("text") == text and message.get("reply_markup") == p.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified: specified new message "
                                "content and reply markup are exactly the same")
        message["text"] = text
        message["edit_date"] = int(time.time())
        if p.get("reply_markup"):
            message["reply_markup"] = p["reply_markup"]
        await self.state.record(BotAction("editMessageText", chat_id, message_id, text=text,
                                          reply_markup=p.get("reply_markup")))
        return message

    async def _send_file(self, kind: str, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        chat_id = int(p["chat_id"])
        data = _attached(p, f, kind, self.state)
        if _utf16_length(str(p.get("caption") or "")) > CAPTION_LIMIT:
            raise ApiError(400, "Bad Request: message caption is too long")
        _check_markup(p)
        if len(data) > DOCUMENT_UPLOAD_LIMIT:
            raise ApiError(413, "Request Entity Too Large")
        if kind == "photo":
            content: dict[str, Any] = {"photo": self.state.photo_sizes(data)}
        else:
            stored = self.state.add_file(data)
            content = {"document": {"file_id": stored.file_id,
                                    "file_unique_id": stored.file_unique_id,
                                    "file_size": len(data)}}
        if p.get("caption"):
            content["caption"] = p["caption"]
        message = self.state.bot_message(chat_id, **content)
        method = "sendPhoto" if kind == "photo" else "sendDocument"
        await self.state.record(BotAction(method, chat_id, message["message_id"],
                                          caption=p.get("caption"), file=data,
                                          reply_markup=p.get("reply_markup"),
                                          reply_to=_reply_to(p)))
        return message

    async def sendPhoto(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        return await self._send_file("photo", p, f)

    async def sendDocument(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        return await self._send_file("document", p, f)

    async def sendMediaGroup(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        chat_id = int(p["chat_id"])
        media = p.get("media")
        if not isinstance(media, list):
            raise ApiError(400, "Bad Request: media must be an array of InputMedia")
        _check_album([str(item.get("type")) for item in media])
        if p.get("reply_markup"):
            raise ApiError(400, "Bad Request: media groups can't have a reply markup")
        items = []
        for item in media:
            if _utf16_length(str(item.get("caption") or "")) > CAPTION_LIMIT:
                raise ApiError(400, "Bad Request: message caption is too long")
            items.append((item, _attached({"media": item.get("media")}, f, "media", self.state)))
        group_id = str(next(self.state.media_group_ids))
        sent = []
        for item, data in items:
            content: dict[str, Any] = (
                {"photo": self.state.photo_sizes(data)} if item["type"] == "photo" else
                {item["type"]: {"file_id": self.state.add_file(data).file_id}})
            if item.get("caption"):
                content["caption"] = item["caption"]
            message = self.state.bot_message(chat_id, media_group_id=group_id, **content)
            await self.state.record(BotAction("sendMediaGroup", chat_id, message["message_id"],
                                              caption=item.get("caption"), file=data,
                                              reply_to=_reply_to(p)))
            sent.append(message)
        return sent

    async def sendChatAction(self, _p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        return True

    async def answerCallbackQuery(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        user_id = self.state.callback_users.get(str(p.get("callback_query_id")))
        if user_id is None:
            raise ApiError(400, "Bad Request: query is too old or query ID is invalid")
        if _utf16_length(str(p.get("text") or "")) > ANSWER_LIMIT:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        await self.state.record(BotAction("answerCallbackQuery", user_id, 0,
                                          text=p.get("text") or None))
        return True

    async def getFile(self, p: dict[str, Any], _f: dict[str, bytes]) -> Any:
        stored = self.state.files.get(str(p.get("file_id")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(stored.data) > GET_FILE_LIMIT:
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data), "file_path": stored.file_path}


def _reply_to(p: dict[str, Any]) -> int | None:
    if p.get("reply_parameters"):
        return int(p["reply_parameters"]["message_id"])
    return p.get("reply_to_message_id")


def _addressed_to_bot(message: dict[str, Any]) -> bool:
    """What privacy mode lets through from a group: commands not meant for another bot,
    mentions of the bot, replies to the bot's messages."""
    name = BOT_USER["username"]
    words = str(message.get("text") or message.get("caption") or "")
    if words.startswith("/"):
        _, at, bot = words.split()[0].partition("@")
        return not at or bot.lower() == name
    if f"@{name}" in words.lower():
        return True
    quoted: dict[str, Any] = message.get("reply_to_message") or {}
    return bool(quoted.get("from", {}).get("id") == BOT_USER["id"])


class StandIn:
    """The aiohttp application: Bot API routes, file downloads and the control API."""

    def __init__(self, token: str, first_message_id: int = 1) -> None:
        self.state = StandInState(token, first_message_id)
        self.api = BotApi(self.state)
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_post("/bot{token}/{method}", self._bot_method)
        self.app.router.add_get("/bot{token}/{method}", self._bot_method)
        self.app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self.app.router.add_post("/_control/users/{user_id}/{kind}", self._control_send)
        self.app.router.add_get("/_control/chats/{chat_id}/actions", self._control_actions)
        self.app.router.add_get("/_control/chats/{chat_id}/actions/{index}/file",
                                self._control_file)

    # ---- Bot API -------------------------------------------------------------------------
    async def _bot_method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.state.token:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        self.state.calls.append(method)
        handler: Callable[..., Any] | None = getattr(self.api, method, None)
        if handler is None or method.startswith("_"):
            return web.json_response({"ok": False, "error_code": 404,
                                      "description": "Not Found: method not found"}, status=404)
        try:
            await self._maybe_fail(method)
            params, files = await _params(request)
            _check_chat(self.state, params)
            _check_flood(self.state, method, params)
            result = await handler(params, files)
        except ApiError as exc:
            body: dict[str, Any] = {"ok": False, "error_code": exc.code,
                                    "description": exc.description}
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
            if exc.migrate_to_chat_id is not None:
                body["parameters"] = {"migrate_to_chat_id": exc.migrate_to_chat_id}
            return web.json_response(body, status=exc.code)
        return web.json_response({"ok": True, "result": result})

    async def _maybe_fail(self, method: str) -> None:
        planned = self.state.faults.get(method)
        if not planned:
            return
        fault = planned[0]
        fault.times -= 1
        if fault.times <= 0:
            planned.pop(0)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status == 429:
            raise ApiError(429, f"Too Many Requests: retry after {fault.retry_after or 1}",
                           retry_after=fault.retry_after or 1)
        if fault.status >= 400:
            raise ApiError(fault.status, "Internal Server Error")

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.state.token:
            return web.Response(status=401)
        unique = request.match_info["path"].removeprefix("files/")
        for stored in self.state.files.values():
            if stored.file_unique_id == unique:
                return web.Response(body=stored.data, content_type="application/octet-stream")
        return web.Response(status=404)

    # ---- users (control API) -------------------------------------------------------------
    async def send_text(self, user_id: int, text: str) -> dict[str, Any]:
        message = self._user_message(user_id, text=text)
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        await self.state.push_update({"message": message})
        return message

    async def send_photo(self, user_id: int, data: bytes,
                         caption: str | None = None) -> dict[str, Any]:
        message = self._user_message(user_id, photo=self.state.photo_sizes(data))
        if caption:
            message["caption"] = caption
        await self.state.push_update({"message": message})
        return message

    async def send_document(self, user_id: int, data: bytes, file_name: str,
                            mime_type: str | None = None,
                            declared_size: int | None = None) -> dict[str, Any]:
        stored = self.state.add_file(data)
        document = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                    "file_name": file_name, "file_size": declared_size or len(data)}
        if mime_type:
            document["mime_type"] = mime_type
        message = self._user_message(user_id, document=document)
        await self.state.push_update({"message": message})
        return message

    async def send_album(self, user_id: int,
                         items: list[tuple[str, bytes, str | None]]) -> list[dict[str, Any]]:
        """The user sends an album: ``(kind, data, file name)`` items, "photo" or "document".
        Telegram delivers it as one update per item, sharing a ``media_group_id``."""
        _check_album([kind for kind, _data, _name in items])
        group_id = str(next(self.state.media_group_ids))
        sent = []
        for kind, data, file_name in items:
            if kind == "photo":
                message = self._user_message(user_id, photo=self.state.photo_sizes(data),
                                             media_group_id=group_id)
            else:
                stored = self.state.add_file(data)
                message = self._user_message(user_id, media_group_id=group_id, document={
                    "file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                    "file_name": file_name or "file", "file_size": len(data)})
            await self.state.push_update({"message": message})
            sent.append(message)
        return sent

    async def edit_message(self, message: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """The user edits one of their messages (a caption added to a photo, a new text)."""
        edited = {**message, **changes, "edit_date": int(time.time())}
        await self.state.push_update({"edited_message": edited})
        return edited

    async def group_event(self, group_id: int, user_id: int, **event: Any) -> dict[str, Any]:
        """Something happens in a group the bot is in (``new_chat_members=[...]``, a title)."""
        message = {"message_id": self.state.next_message_id(group_id), "date": int(time.time()),
                   "chat": {"id": group_id, "type": "group", "title": "Haematology"},
                   "from": self.state.user(user_id), **event}
        await self.state.push_update({"message": message})
        return message

    async def group_message(self, group_id: int, user_id: int, *, text: str | None = None,
                            photo: bytes | None = None, caption: str | None = None,
                            reply_to: int | None = None) -> dict[str, Any] | None:
        """A member writes in a group. With privacy mode on (every bot's default) Telegram
        passes the bot only commands (to it, or to no bot in particular), messages that mention
        it and replies to its own messages; anything else never reaches it (returns None)."""
        content: dict[str, Any] = {}
        if text is not None:
            content["text"] = text
            if text.startswith("/"):
                content["entities"] = [{"type": "bot_command", "offset": 0,
                                        "length": len(text.split()[0])}]
        if photo is not None:
            content["photo"] = self.state.photo_sizes(photo)
        if caption:
            content["caption"] = caption
        if reply_to is not None and (quoted := self.state.messages.get((group_id, reply_to))):
            content["reply_to_message"] = quoted
        message = {"message_id": self.state.next_message_id(group_id), "date": int(time.time()),
                   "chat": self.state.chat(group_id), "from": self.state.user(user_id),
                   **content}
        self.state.messages[(group_id, message["message_id"])] = message
        if self.state.privacy_mode and not _addressed_to_bot(message):
            self.state.withheld.append(message)
            return None
        await self.state.push_update({"message": message})
        return message

    async def press_button(self, user_id: int, message_id: int, data: str) -> dict[str, Any]:
        message = self.state.messages.get((user_id, message_id))
        callback_id = f"CB{time.monotonic_ns()}"
        callback: dict[str, Any] = {"id": callback_id, "from": self.state.user(user_id),
                                    "chat_instance": str(user_id), "data": data}
        self.state.callback_users[callback_id] = user_id
        if message is not None:
            callback["message"] = message
        await self.state.push_update({"callback_query": callback})
        return callback

    def _user_message(self, user_id: int, **content: Any) -> dict[str, Any]:
        message = {"message_id": self.state.next_message_id(user_id), "date": int(time.time()),
                   "chat": self.state.private_chat(user_id), "from": self.state.user(user_id),
                   **content}
        self.state.messages[(user_id, message["message_id"])] = message
        return message

    async def wait_for_actions(self, chat_id: int, count: int, timeout: float,
                               predicate: Callable[[BotAction], bool] | None = None,
                               ) -> list[BotAction]:
        """Wait until ``count`` actions in the chat match ``predicate``; returns the matches."""
        deadline = time.monotonic() + timeout
        async with self.state.changed:
            while True:
                found = [a for a in self.state.actions
                         if a.chat_id == chat_id and (predicate is None or predicate(a))]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    return found
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.state.changed.wait(), remaining)

    async def _control_send(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info["user_id"])
        kind = request.match_info["kind"]
        if kind == "text":
            message = await self.send_text(user_id, (await request.json())["text"])
        elif kind == "photo":
            message = await self.send_photo(user_id, await request.read())
        elif kind == "document":
            message = await self.send_document(
                user_id, await request.read(), request.query.get("file_name", "file"),
                request.query.get("mime_type"))
        elif kind == "callback":
            body = await request.json()
            message = await self.press_button(user_id, int(body["message_id"]), body["data"])
        elif kind == "album":
            # A multipart form: each part named "photo" or "document", in the album's order.
            items = []
            async for part in await request.multipart():
                if not isinstance(part, BodyPartReader) or part.name not in ("photo", "document"):
                    return web.json_response({"error": "album parts are photo or document"},
                                             status=400)
                items.append((part.name, bytes(await part.read()), part.filename))
            try:
                return web.json_response(await self.send_album(user_id, items))
            except ApiError as exc:  # what Telegram's apps would not let a user send either
                return web.json_response({"error": exc.description}, status=400)
        else:
            return web.json_response({"error": f"unknown kind {kind}"}, status=404)
        return web.json_response(message)

    async def _control_actions(self, request: web.Request) -> web.Response:
        chat_id = int(request.match_info["chat_id"])
        count = int(request.query.get("count", "0"))
        timeout = float(request.query.get("timeout", "0"))
        actions = await self.wait_for_actions(chat_id, count, timeout)
        return web.json_response([
            {"method": a.method, "message_id": a.message_id, "text": a.text,
             "caption": a.caption, "reply_markup": a.reply_markup, "reply_to": a.reply_to,
             # Where the file the bot sent can be fetched (photos, documents, albums).
             "file": (f"/_control/chats/{chat_id}/actions/{index}/file"
                      if a.file is not None else None)}
            for index, a in enumerate(actions)
        ])

    async def _control_file(self, request: web.Request) -> web.Response:
        """The bytes of a file the bot sent: the ``index``-th action of the chat's list."""
        chat_id, index = int(request.match_info["chat_id"]), int(request.match_info["index"])
        actions = await self.wait_for_actions(chat_id, 0, 0)
        if not 0 <= index < len(actions) or actions[index].file is None:
            return web.json_response({"error": "no file at that action"}, status=404)
        return web.Response(body=actions[index].file, content_type="application/octet-stream")


class StandInThread:
    """Runs a :class:`StandIn` on its own event loop in a background thread (tests, demo)."""

    def __init__(self, token: str = "123456:TEST-TOKEN", host: str = "127.0.0.1",
                 first_message_id: int = 1) -> None:
        self.token = token
        self.host = host
        self.first_message_id = first_message_id
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="bot-api-standin")
        self._runner: web.AppRunner | None = None
        self.standin: StandIn | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/bot"

    @property
    def file_url(self) -> str:
        return f"http://{self.host}:{self.port}/file/bot"

    def start(self) -> StandInThread:
        self._thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        self.standin = StandIn(self.token, self.first_message_id)
        self._runner = web.AppRunner(self.standin.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.standin is not None and (sender := self.standin.state.webhook_sender):
            self._loop.call_soon_threadsafe(sender.cancel)
        if self.standin is not None:
            self.call(self.standin.state.close())
        if self._runner is not None:
            self.call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    @property
    def api(self) -> StandIn:
        assert self.standin is not None, "stand-in not started"
        return self.standin

    # Synchronous conveniences for tests and the demo.
    def send_text(self, user_id: int, text: str) -> dict[str, Any]:
        return self.call(self.api.send_text(user_id, text))

    def send_photo(self, user_id: int, data: bytes) -> dict[str, Any]:
        return self.call(self.api.send_photo(user_id, data))

    def send_document(self, user_id: int, data: bytes, file_name: str,
                      mime_type: str | None = None, declared_size: int | None = None,
                      ) -> dict[str, Any]:
        return self.call(self.api.send_document(user_id, data, file_name, mime_type,
                                                declared_size))

    def send_album(self, user_id: int,
                   items: list[tuple[str, bytes, str | None]]) -> list[dict[str, Any]]:
        return self.call(self.api.send_album(user_id, items))

    def press_button(self, user_id: int, message_id: int, data: str) -> dict[str, Any]:
        return self.call(self.api.press_button(user_id, message_id, data))

    def wait_for(self, chat_id: int, count: int = 1, timeout: float = 30.0,
                 predicate: Callable[[BotAction], bool] | None = None) -> list[BotAction]:
        return self.call(self.api.wait_for_actions(chat_id, count, timeout, predicate),
                         timeout + 5)

    def fail_next(self, method: str, fault: Fault) -> None:
        self._loop.call_soon_threadsafe(
            lambda: self.api.state.faults.setdefault(method, []).append(fault))


def serve_forever(token: str, port: int, host: str = "127.0.0.1") -> None:
    """Run the stand-in as a server (for the demo or manual use) until interrupted."""
    print(f"Bot API stand-in on http://{host}:{port}/bot (token {token})", flush=True)
    web.run_app(StandIn(token).app, host=host, port=port, print=None)
