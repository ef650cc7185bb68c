"""Offline Telegram for tests: a recording fake Bot API and a chat client that drives the real Application.

FakeBotAPI answers every Bot API call the bot makes, keeps each chat's messages as the user would
see them (sent, then edited in place), and records anything it does not know as a failure.
ChatClient sends text and presses buttons by their label, through Application.process_update.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from telegram import Update
from telegram.ext import Application
from telegram.request import BaseRequest, RequestData

from models.clock import utcnow

BOT_ID = 999000
BOT_USERNAME = "gongshe_test_bot"


@dataclass
class Shown:
    """One message as the user sees it in a chat."""

    message_id: int
    chat_id: int
    text: str
    buttons: list[list[dict[str, Any]]] = field(default_factory=list)
    document: tuple[str, bytes] | None = None
    photo: bytes | str | None = None
    edits: int = 0
    # A copyMessage: the (chat, message) it copies.
    copy_of: tuple[int, int] | None = None

    @property
    def labels(self) -> list[str]:
        """Every button label, row by row."""
        return [b["text"] for row in self.buttons for b in row]

    def button(self, label: str) -> dict[str, Any] | None:
        """The button with this exact label, or one whose label contains it."""
        flat = [b for row in self.buttons for b in row]
        return next((b for b in flat if b["text"] == label), None) or next(
            (b for b in flat if label in b["text"]), None
        )


@dataclass
class Call:
    method: str
    params: dict[str, Any]


class TelegramFailure(Exception):
    """A scripted Bot API error: (status code, description, optional retry_after)."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after


class FakeClock:
    """Fake time: sleep() moves it forward at once. It yields before moving, so tasks started earlier stamp first."""

    def __init__(self) -> None:
        self.t = 0.0
        self.epoch = utcnow()

    def now(self) -> datetime:
        """The wall time at this fake moment."""
        return self.epoch + timedelta(seconds=self.t)

    def monotonic(self) -> float:
        """Seconds since the fake clock started."""
        return self.t

    async def sleep(self, seconds: float) -> None:
        """Let ready tasks run, then jump ahead."""
        await asyncio.sleep(0)
        self.t += max(seconds, 0.0)


class FakeBotAPI(BaseRequest):
    """A BaseRequest that answers the Bot API offline and records every call."""

    KNOWN: ClassVar[set[str]] = {
        "getMe",
        "sendMessage",
        "editMessageText",
        "answerCallbackQuery",
        "setMyCommands",
        "deleteMyCommands",
        "sendDocument",
        "sendPhoto",
        "editMessageCaption",
        "getUpdates",
        "deleteWebhook",
        "close",
        "answerInlineQuery",
        "setMyDescription",
        "setMyShortDescription",
        "approveChatJoinRequest",
        "declineChatJoinRequest",
        "setChatMenuButton",
        "copyMessage",
        "banChatMember",
        "unbanChatMember",
        "createChatInviteLink",
        "sendVenue",
        "pinChatMessage",
    }

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.unexpected: list[str] = []
        # Each private chat's menu button as last set (setChatMenuButton).
        self.menu_buttons: dict[int, dict[str, Any]] = {}
        self.chats: dict[int, list[Shown]] = {}
        self.answers: list[tuple[str, str | None]] = []
        self.alerts: list[bool] = []
        self.failures: dict[tuple[str, int | None], list[Exception]] = {}
        # Inline-mode messages (posted by users through @bot in any chat; no chat of their own): id -> shown.
        self.inline_messages: dict[str, Shown] = {}
        self.inline_answers: list[tuple[str, list[dict[str, Any]]]] = []
        self.join_decisions: list[tuple[str, int, int]] = []
        self.descriptions: dict[str, str] = {}
        self.short_descriptions: dict[str, str] = {}
        self._ids = itertools.count(1)
        # What users sent (chat id, message id) -> the message, for copyMessage.
        self.user_messages: dict[tuple[int, int], dict[str, Any]] = {}
        # Club groups: ("ban" | "unban", chat id, user id) in order; pinned (chat id, message id); invite links made.
        self.removals: list[tuple[str, int, int]] = []
        self.pins: list[tuple[int, int]] = []
        self.links: list[tuple[int, str]] = []

    @property
    def read_timeout(self) -> float:
        """Long polling never waits here."""
        return 1.0

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    def fail(self, method: str, failure: Exception, chat_id: int | None = None, times: int = 1) -> None:
        """Make the next `times` calls of `method` (to `chat_id`, or any chat) fail as Telegram would.

        A TelegramFailure becomes an error answer; any other exception (e.g. telegram.error.TimedOut) is raised.
        """
        self.failures.setdefault((method, chat_id), []).extend([failure] * times)

    def calls_of(self, method: str) -> list[Call]:
        """Every recorded call of one method."""
        return [c for c in self.calls if c.method == method]

    def _scripted_failure(self, method: str, params: dict[str, Any]) -> Exception | None:
        chat = params.get("chat_id")
        for key in ((method, int(chat) if chat is not None else None), (method, None)):
            queue = self.failures.get(key)
            if queue:
                return queue.pop(0)
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        """Answer one Bot API call like Telegram would."""
        api_method = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data is not None else {}
        if request_data is not None and request_data.contains_files:
            params["_files"] = {name: (value[0], value[1]) for name, value in request_data.multipart_data.items()}
        self.calls.append(Call(api_method, params))
        failure = self._scripted_failure(api_method, params)
        if isinstance(failure, Exception) and not isinstance(failure, TelegramFailure):
            raise failure
        if failure is not None:
            body: dict[str, Any] = {"ok": False, "error_code": failure.status, "description": failure.description}
            if failure.retry_after is not None:
                body["parameters"] = {"retry_after": failure.retry_after}
            return failure.status, json.dumps(body).encode()
        if api_method not in self.KNOWN:
            self.unexpected.append(api_method)
            return 400, json.dumps({"ok": False, "error_code": 400, "description": f"unexpected {api_method}"}).encode()
        try:
            result = getattr(self, f"_{api_method}")(params)
        except TelegramFailure as refused:
            body = {"ok": False, "error_code": refused.status, "description": refused.description}
            return refused.status, json.dumps(body).encode()
        return 200, json.dumps({"ok": True, "result": result}).encode()

    # --- the methods ---------------------------------------------------------------------------

    def _getMe(self, _params: dict[str, Any]) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Gongshe", "username": BOT_USERNAME}

    def _message_json(self, shown: Shown) -> dict[str, Any]:
        chat_type = "private" if shown.chat_id > 0 else "group"
        data: dict[str, Any] = {
            "message_id": shown.message_id,
            "date": int(time.time()),
            "chat": {"id": shown.chat_id, "type": chat_type},
            "from": self._getMe({}),
        }
        if shown.photo is not None:
            data["photo"] = [
                {"file_id": f"p{shown.message_id}", "file_unique_id": f"q{shown.message_id}", "width": 1, "height": 1}
            ]
            data["caption"] = shown.text
        elif shown.document is not None:
            data["document"] = {
                "file_id": f"f{shown.message_id}",
                "file_unique_id": f"u{shown.message_id}",
                "file_name": shown.document[0],
            }
            data["caption"] = shown.text
        else:
            data["text"] = shown.text
        if shown.buttons:
            data["reply_markup"] = {"inline_keyboard": shown.buttons}
        return data

    def _sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        markup = params.get("reply_markup") or {}
        if isinstance(markup, str):
            markup = json.loads(markup)
        shown = Shown(next(self._ids), chat_id, params["text"], markup.get("inline_keyboard", []))
        self.chats.setdefault(chat_id, []).append(shown)
        return self._message_json(shown)

    def _copyMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, source = int(params["chat_id"]), (int(params["from_chat_id"]), int(params["message_id"]))
        original = self.user_messages.get(source)
        if original is None:
            raise TelegramFailure(400, "Bad Request: message to copy not found")
        markup = params.get("reply_markup") or {}
        if isinstance(markup, str):
            markup = json.loads(markup)
        photo = original["photo"][-1]["file_id"] if original.get("photo") else None
        text = original.get("text") or original.get("caption") or ""
        shown = Shown(next(self._ids), chat_id, text, markup.get("inline_keyboard", []), photo=photo, copy_of=source)
        self.chats.setdefault(chat_id, []).append(shown)
        return {"message_id": shown.message_id}

    def _sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        files = params.get("_files", {})
        filename, content = next(iter(files.values())) if files else ("file", b"")
        shown = Shown(next(self._ids), chat_id, params.get("caption", ""), document=(filename, content))
        self.chats.setdefault(chat_id, []).append(shown)
        return self._message_json(shown)

    def _sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        files = params.get("_files", {})
        photo = next(iter(files.values()))[1] if files else params["photo"]
        markup = params.get("reply_markup") or {}
        shown = Shown(
            next(self._ids), chat_id, params.get("caption", ""), markup.get("inline_keyboard", []), photo=photo
        )
        self.chats.setdefault(chat_id, []).append(shown)
        return self._message_json(shown)

    def _editMessageCaption(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        shown = next((m for m in self.chats.get(chat_id, []) if m.message_id == message_id), None)
        if shown is None or shown.photo is None:
            raise AssertionError(f"caption edit of unknown or non-photo message {message_id} in chat {chat_id}")
        markup = params.get("reply_markup") or {}
        shown.text, shown.buttons, shown.edits = (
            params.get("caption", ""),
            markup.get("inline_keyboard", []),
            shown.edits + 1,
        )
        return self._message_json(shown)

    def _editMessageText(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        markup = params.get("reply_markup") or {}
        if "inline_message_id" in params:
            shown = self.inline_messages.get(params["inline_message_id"])
            if shown is None:
                raise TelegramFailure(400, "Bad Request: message to edit not found")
            shown.text, shown.buttons, shown.edits = params["text"], markup.get("inline_keyboard", []), shown.edits + 1
            return True
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        shown = next((m for m in self.chats.get(chat_id, []) if m.message_id == message_id), None)
        if shown is None:
            raise AssertionError(f"edit of unknown message {message_id} in chat {chat_id}")
        if shown.photo is not None or shown.document is not None:
            raise TelegramFailure(400, "Bad Request: there is no text in the message to edit")
        markup = params.get("reply_markup") or {}
        shown.text, shown.buttons, shown.edits = params["text"], markup.get("inline_keyboard", []), shown.edits + 1
        return self._message_json(shown)

    def _answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        self.answers.append((params["callback_query_id"], params.get("text")))
        self.alerts.append(bool(params.get("show_alert")))
        return True

    def _setMyCommands(self, _params: dict[str, Any]) -> bool:
        return True

    def _setChatMenuButton(self, params: dict[str, Any]) -> bool:
        button = params["menu_button"]
        self.menu_buttons[int(params["chat_id"])] = json.loads(button) if isinstance(button, str) else button
        return True

    def _deleteMyCommands(self, _params: dict[str, Any]) -> bool:
        return True

    def _setMyDescription(self, params: dict[str, Any]) -> bool:
        assert len(params.get("description", "")) <= 512, "Telegram refuses a description over 512 characters"
        self.descriptions[params.get("language_code", "")] = params.get("description", "")
        return True

    def _setMyShortDescription(self, params: dict[str, Any]) -> bool:
        assert len(params.get("short_description", "")) <= 120, "a short description is at most 120 characters"
        self.short_descriptions[params.get("language_code", "")] = params.get("short_description", "")
        return True

    def _answerInlineQuery(self, params: dict[str, Any]) -> bool:
        results = params.get("results") or []
        self.inline_answers.append(
            (params["inline_query_id"], json.loads(results) if isinstance(results, str) else results)
        )
        return True

    def _approveChatJoinRequest(self, params: dict[str, Any]) -> bool:
        self.join_decisions.append(("approve", int(params["chat_id"]), int(params["user_id"])))
        return True

    def _declineChatJoinRequest(self, params: dict[str, Any]) -> bool:
        self.join_decisions.append(("decline", int(params["chat_id"]), int(params["user_id"])))
        return True

    def _banChatMember(self, params: dict[str, Any]) -> bool:
        self.removals.append(("ban", int(params["chat_id"]), int(params["user_id"])))
        return True

    def _unbanChatMember(self, params: dict[str, Any]) -> bool:
        self.removals.append(("unban", int(params["chat_id"]), int(params["user_id"])))
        return True

    def _pinChatMessage(self, params: dict[str, Any]) -> bool:
        self.pins.append((int(params["chat_id"]), int(params["message_id"])))
        return True

    def _createChatInviteLink(self, params: dict[str, Any]) -> dict[str, Any]:
        link = f"https://t.me/+fake{next(self._ids)}"
        self.links.append((int(params["chat_id"]), link))
        return {
            "invite_link": link,
            "creator": {"id": 1, "is_bot": True, "first_name": "bot"},
            "creates_join_request": bool(params.get("creates_join_request")),
            "is_primary": False,
            "is_revoked": False,
        }

    def _sendVenue(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        return {"message_id": next(self._ids), "date": 0, "chat": {"id": chat_id, "type": "private"}}

    def _getUpdates(self, _params: dict[str, Any]) -> list[Any]:
        return []

    def _deleteWebhook(self, _params: dict[str, Any]) -> bool:
        return True

    def _close(self, _params: dict[str, Any]) -> bool:
        return True


_update_ids = itertools.count(1)


async def settle(app: Application) -> None:
    """Let the bot finish what it does after an update: the background replies, then the outbox (if running)."""
    await app.bot_data["runtime"].replies.drain()
    sender = app.bot_data.get("test_outbox")
    if sender is not None:
        await sender.run(until_empty=True)


class ChatClient:
    """A Telegram user talking to the bot: send(text), click(label), and what they see."""

    def __init__(
        self,
        app: Application,
        api: FakeBotAPI,
        user_id: int,
        first_name: str = "Member",
        language_code: str | None = "zh",
        chat_id: int | None = None,
    ) -> None:
        self.app, self.api = app, api
        self.user = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            self.user["language_code"] = language_code
        self.chat_id = chat_id if chat_id is not None else user_id
        self._message_ids = itertools.count(100000)

    @property
    def chat(self) -> dict[str, Any]:
        """The chat this client writes in."""
        if self.chat_id > 0:
            return {"id": self.chat_id, "type": "private", "first_name": self.user["first_name"]}
        return {"id": self.chat_id, "type": "group", "title": "Club group"}

    @property
    def messages(self) -> list[Shown]:
        """Everything the bot has shown in this chat, oldest first."""
        return self.api.chats.get(self.chat_id, [])

    @property
    def last(self) -> Shown:
        """The newest message in this chat."""
        assert self.messages, "the bot has said nothing in this chat"
        return self.messages[-1]

    def _snapshot(self) -> dict[int, tuple[str, int]]:
        return {m.message_id: (m.text, m.edits) for m in self.messages}

    def _changed_since(self, before: dict[int, tuple[str, int]]) -> list[Shown]:
        return [m for m in self.messages if before.get(m.message_id) != (m.text, m.edits)]

    async def send(self, text: str, message_id: int | None = None) -> list[Shown]:
        """Type a message; returns what the bot sent or edited in this chat in response."""
        data: dict[str, Any] = {
            "message_id": message_id if message_id is not None else next(self._message_ids),
            "date": int(time.time()),
            "chat": self.chat,
            "from": self.user,
            "text": text,
        }
        if text.startswith("/"):
            data["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return await self._process({"update_id": next(_update_ids), "message": data})

    async def send_photo(self, file_id: str, caption: str | None = None) -> list[Shown]:
        """Send a photo (as Telegram delivers it: sizes with file ids); returns what the bot showed."""
        data: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self.chat,
            "from": self.user,
            "photo": [
                {"file_id": f"{file_id}-small", "file_unique_id": "s", "width": 90, "height": 90},
                {"file_id": file_id, "file_unique_id": "l", "width": 800, "height": 800},
            ],
        }
        if caption:
            data["caption"] = caption
        return await self._process({"update_id": next(_update_ids), "message": data})

    async def send_content(self, **content: Any) -> list[Shown]:
        """Send any other message (sticker=..., video=..., location=...) as Telegram delivers it."""
        data: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self.chat,
            "from": self.user,
            **content,
        }
        return await self._process({"update_id": next(_update_ids), "message": data})

    async def edit(self, message_id: int, text: str) -> list[Shown]:
        """Edit a message this user sent earlier (Telegram delivers an edited_message update)."""
        data: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "edit_date": int(time.time()),
            "chat": self.chat,
            "from": self.user,
            "text": text,
        }
        if text.startswith("/"):
            data["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return await self._process({"update_id": next(_update_ids), "edited_message": data})

    async def inline(self, query: str) -> list[dict[str, Any]]:
        """Type `@bot query` in any chat; returns the results the bot answered with."""
        query_id = str(next(_update_ids))
        payload = {
            "update_id": next(_update_ids),
            "inline_query": {"id": query_id, "from": self.user, "query": query, "offset": ""},
        }
        await self._process(payload)
        return next((results for qid, results in self.api.inline_answers if qid == query_id), [])

    async def press_inline(self, data: str, inline_message_id: str) -> None:
        """Press a button on an inline-mode message (it has no chat: Telegram sends its inline_message_id)."""
        self.api.inline_messages.setdefault(inline_message_id, Shown(0, 0, ""))
        payload = {
            "update_id": next(_update_ids),
            "callback_query": {
                "id": str(next(_update_ids)),
                "from": self.user,
                "chat_instance": "inline",
                "inline_message_id": inline_message_id,
                "data": data,
            },
        }
        await self._process(payload)

    async def request_join(self, group_id: int) -> None:
        """Ask to join a group whose invite link needs approval (a chat_join_request update)."""
        payload = {
            "update_id": next(_update_ids),
            "chat_join_request": {
                "chat": {"id": group_id, "type": "supergroup", "title": "Club group"},
                "from": self.user,
                "user_chat_id": self.user["id"],
                "date": int(time.time()),
            },
        }
        await self._process(payload)

    async def click(self, label: str, message: Shown | None = None) -> list[Shown]:
        """Press the newest button with this label (or one containing it)."""
        target = message
        if target is None:
            target = next((m for m in reversed(self.messages) if m.button(label)), None)
        assert target is not None, f"no button {label!r}; buttons: {[m.labels for m in self.messages[-3:]]}"
        button = target.button(label)
        assert button is not None and "callback_data" in button, f"{label!r} is not a callback button"
        return await self.press(button["callback_data"], target)

    async def press(self, data: str, message: Shown | None = None) -> list[Shown]:
        """Send raw callback data (forged or stale buttons) from a message."""
        target = message or self.last
        payload = {
            "update_id": next(_update_ids),
            "callback_query": {
                "id": str(next(_update_ids)),
                "from": self.user,
                "chat_instance": "ci",
                "data": data,
                "message": self.api._message_json(target),
            },
        }
        return await self._process(payload)

    async def _process(self, payload: dict[str, Any]) -> list[Shown]:
        before = self._snapshot()
        message = payload.get("message")
        if message is not None:
            self.api.user_messages[(message["chat"]["id"], message["message_id"])] = message
        await self.app.process_update(Update.de_json(payload, self.app.bot))
        await settle(self.app)
        return self._changed_since(before)

    def last_answer(self) -> str | None:
        """The text of the newest callback answer (a toast), if any."""
        return self.api.answers[-1][1] if self.api.answers else None
