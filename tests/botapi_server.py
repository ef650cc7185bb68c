"""A local Bot API stand-in: the real wire format over HTTP on 127.0.0.1, standard library only.

The bot talks to it exactly as it talks to Telegram (`POST /bot<token>/<method>` with form-encoded,
JSON or multipart bodies; answers `{"ok": true, "result": ...}` or `{"ok": false, "error_code": N,
"description": "..."}`), so a test can run the real `python bot.py` against it. It queues updates for
real long polling, keeps each chat's messages as the user sees them (HTML parsed to plain text, edits
applied in place), and can enforce Telegram's flood limits and blocked chats.

Flood limits apply to the methods that send a new message (sendMessage, sendPhoto, sendDocument, copyMessage):
a global rate (`global_per_second`), a per-chat rate for groups (`group_per_minute`, negative chat ids)
and for private chats (`private_per_second`, with bursts of up to PRIVATE_BURST). Each is off unless set.

By hand, to point a bot at it and chat as one user from the terminal:

    python -m tests.botapi_server --port 9000 --token 123:abc --user 1001

It prints the base URL (use it as BOT_API_BASE_URL with BOT_TOKEN=123:abc) and serves until Ctrl-C.
Each line typed is a message from the user; `#N` presses the N-th button (counted across rows) of the
newest message that has buttons. What the bot sends or edits in that chat is printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from email import policy
from email.parser import BytesParser
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

BOT_USERNAME = "gongshe_test_bot"
BOT_FIRST_NAME = "Gongshe"
# Private chats may send a short burst above their per-second rate, as Telegram tolerates.
PRIVATE_BURST = 3
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_UPDATES_PER_POLL = 100
# Failure messages show each parameter of a recorded call up to this many characters.
DESCRIBE_VALUE_LENGTH = 80
WEBHOOK_PORTS = frozenset({80, 88, 443, 8443})
SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument", "copyMessage"})
# Update kinds Telegram leaves out when allowed_updates was never given (or given as an empty list).
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# The formatting tags Telegram accepts with parse_mode HTML.
HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
INT_FIELDS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "user_id",
        "cache_time",
        "from_chat_id",
        "message_thread_id",
    }
)
BOOL_FIELDS = frozenset(
    {"disable_notification", "protect_content", "show_alert", "drop_pending_updates", "disable_web_page_preview"}
)
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "commands",
        "scope",
        "allowed_updates",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
    }
)
COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)


class ApiError(Exception):
    """An error answer of the Bot API: HTTP status, description and optional parameters."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        """Remember the error's status, description and parameters."""
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters

    def body(self) -> dict[str, Any]:
        """The JSON answer Telegram gives for this error."""
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(detail: str) -> ApiError:
    """A 400 answer with Telegram's 'Bad Request: ' prefix."""
    return ApiError(400, f"Bad Request: {detail}")


class _Bucket:
    """A token bucket: `rate` tokens per second, holding at most `capacity`."""

    def __init__(self, rate: float, capacity: float) -> None:
        """A full bucket."""
        self.rate, self.capacity = rate, capacity
        self.tokens, self.last = capacity, time.monotonic()

    def wait_time(self, now: float) -> float:
        """Seconds until one token is available (0 when one is available now)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        """Use one token (call after wait_time said 0)."""
        self.tokens -= 1


class _TelegramHTML(HTMLParser):
    """Turns Telegram-HTML into the plain text a user reads, refusing what Telegram refuses."""

    def __init__(self) -> None:
        """An empty parse."""
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.open: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """An opening tag: allowed tags only."""
        if tag not in HTML_TAGS:
            self.error = self.error or f'Unsupported start tag "{tag}"'
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """`<br/>` and friends are not Telegram HTML."""
        self.error = self.error or f'Unsupported start tag "{tag}"'

    def handle_endtag(self, tag: str) -> None:
        """A closing tag must close the innermost open tag."""
        if not self.open or self.open[-1] != tag:
            self.error = self.error or f'Unmatched end tag "{tag}"'
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        """Visible text."""
        self.parts.append(data)


def visible_text(text: str, parse_mode: str | None) -> str:
    """The text as the user sees it; raises the 400 Telegram gives for malformed HTML."""
    if (parse_mode or "").lower() != "html":
        return text
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    if parser.error is None and parser.open:
        parser.error = f'Can\'t find end tag corresponding to start tag "{parser.open[-1]}"'
    if parser.error is not None:
        raise bad_request(f"can't parse entities: {parser.error}")
    return "".join(parser.parts)


def utf16_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _coerce(name: str, value: Any) -> Any:
    """Give a form field the type Telegram reads it as (numbers, flags, JSON-serialised objects)."""
    if not isinstance(value, str):
        return value
    if name in INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value
    if name in BOOL_FIELDS:
        return value.lower() in ("true", "1")
    if name in JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON object") from None
    return value


def parse_body(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Parameters and uploaded files of a request body (form-encoded, JSON or multipart)."""
    kind = content_type.split(";")[0].strip().lower()
    files: dict[str, dict[str, Any]] = {}
    if not body:
        return {}, files
    if kind == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            raise bad_request("can't parse JSON object") from None
        if not isinstance(data, dict):
            raise bad_request("JSON object expected")
        return data, files
    if kind == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
        params: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is not None:
                files[name] = {"filename": filename, "content": payload, "mime_type": part.get_content_type()}
            else:
                params[name] = payload.decode("utf-8")
        return params, files
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)), files


class BotAPIServer:
    """The Bot API stand-in: start(), point the bot at base_url, push updates, look at what it did.

    `calls` holds every request in order as {"method", "params", "at", "status"}: "at" is
    time.monotonic() on arrival, "status" the HTTP status answered (None while a long poll waits).
    Uploaded files appear in params["_files"] as {field: {"filename", "content", "mime_type"}}.
    A successful getUpdates call also has "update_ids": the ids of the updates it handed over.
    """

    def __init__(
        self,
        token: str,
        *,
        global_per_second: float | None = None,
        group_per_minute: int | None = None,
        private_per_second: float | None = None,
        blocked_chats: Iterable[int] = (),
        port: int = 0,
    ) -> None:
        """Configure the stand-in; nothing listens until start()."""
        self.token = token
        self.global_per_second = global_per_second
        self.group_per_minute = group_per_minute
        self.private_per_second = private_per_second
        self.blocked: set[int] = set(blocked_chats)
        # Groups where the bot lacks the "pin messages" right (pinChatMessage answers 400 there).
        self.no_pin_rights: set[int] = set()
        self.calls: list[dict[str, Any]] = []
        self.rate_limited = 0
        self.unknown_methods: list[str] = []
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.descriptions: dict[tuple[str, str], str] = {}
        self.webhook_url = ""
        self.bot_id = int(token.split(":")[0]) if token.split(":")[0].isdigit() else 1
        self._port = port
        self._cond = threading.Condition(threading.RLock())
        self._updates: list[dict[str, Any]] = []
        self._allowed: set[str] | None = None
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._poll_generation = 0
        self._stopping = False
        self._chats: dict[int, dict[int, dict[str, Any]]] = {}
        self._user_message_ids: dict[int, set[int]] = {}
        # What users wrote, (chat id, message id) -> message, for copyMessage.
        self._user_messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._next_message_id: dict[int, int] = {}
        self._queries: dict[str, bool] = {}
        # Button presses: query id -> update id, and the first successful answer of each press by update id.
        self._query_updates: dict[str, int] = {}
        self._answers: dict[int, dict[str, Any]] = {}
        self._languages: dict[int, str] = {}
        self._global_bucket = _Bucket(global_per_second, max(1.0, global_per_second)) if global_per_second else None
        self._chat_buckets: dict[int, _Bucket] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            name: getattr(self, f"_m_{name}")
            for name in (
                "getMe",
                "getUpdates",
                "setWebhook",
                "deleteWebhook",
                "setMyCommands",
                "deleteMyCommands",
                "getMyCommands",
                "setMyDescription",
                "setMyShortDescription",
                "sendMessage",
                "editMessageText",
                "editMessageReplyMarkup",
                "answerCallbackQuery",
                "sendDocument",
                "sendPhoto",
                "copyMessage",
                "deleteMessage",
                "pinChatMessage",
                "banChatMember",
                "unbanChatMember",
                "close",
                "logOut",
            )
        }
        self._by_lower = {name.lower(): name for name in self._methods}

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on 127.0.0.1 (a free port unless one was given) in a background thread."""
        handler = type("Handler", (_Handler,), {"api": self})
        self._httpd = _Server(("127.0.0.1", self._port), handler)
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="botapi-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Wake every waiting long poll and stop listening."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    @property
    def port(self) -> int:
        """The port listened on (after start())."""
        return self._port

    @property
    def base_url(self) -> str:
        """What the bot uses as its Bot API base URL; PTB appends the token."""
        return f"http://127.0.0.1:{self._port}/bot"

    # --- what a test does ------------------------------------------------------------------------

    def push_message(self, user_id: int, text: str, language_code: str = "zh", chat_id: int | None = None) -> int:
        """Queue a text message from a user (private chat unless chat_id is a group); returns its update_id."""
        with self._cond:
            chat = user_id if chat_id is None else chat_id
            self._languages[user_id] = language_code
            # Writing to the bot again is how a user undoes a block.
            if chat > 0:
                self.blocked.discard(chat)
            message: dict[str, Any] = {
                "message_id": self._new_message_id(chat),
                "from": self._user_json(user_id),
                "chat": self._chat_json(chat),
                "date": int(time.time()),
                "text": text,
            }
            if text.startswith("/"):
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_length(text.split()[0])}]
            self._user_message_ids.setdefault(chat, set()).add(message["message_id"])
            self._user_messages[(chat, message["message_id"])] = message
            return self._queue("message", message)

    def user_message(self, user_id: int, text: str) -> int:
        """A message a user wrote earlier in their private chat (not delivered as an update); returns its id."""
        with self._cond:
            message_id = self._new_message_id(user_id)
            self._user_message_ids.setdefault(user_id, set()).add(message_id)
            self._user_messages[(user_id, message_id)] = {"message_id": message_id, "text": text}
            return message_id

    def push_callback(self, user_id: int, message_id: int, data: str, chat_id: int | None = None) -> int:
        """Queue a button press on one of the bot's messages; returns its update_id."""
        with self._cond:
            chat = user_id if chat_id is None else chat_id
            stored = self._chats.get(chat, {}).get(message_id)
            if stored is None:
                raise AssertionError(f"no bot message {message_id} in chat {chat} to press a button on")
            query_id = str(next(self._query_ids))
            self._queries[query_id] = False
            query = {
                "id": query_id,
                "from": self._user_json(user_id),
                "chat_instance": str(chat),
                "data": data,
                "message": self._message_json(stored),
            }
            update_id = self._queue("callback_query", query)
            self._query_updates[query_id] = update_id
            return update_id

    def add_bot_message(
        self, chat_id: int, text: str, reply_markup: dict[str, Any] | None = None, parse_mode: str | None = None
    ) -> int:
        """Put a message from the bot into a chat without a recorded call (one sent earlier); returns its id."""
        with self._cond:
            markup = self._markup({"reply_markup": reply_markup})
            return self._store(chat_id, text=visible_text(text, parse_mode), reply_markup=markup)["message_id"]

    def answered_callbacks(self) -> dict[int, dict[str, Any]]:
        """The first successful answerCallbackQuery of each pushed button press: update_id -> its parameters."""
        with self._cond:
            return dict(self._answers)

    def messages_to(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in a chat as the user sees them now, oldest first.

        Each is {"message_id", "text" (or the caption), "reply_markup" (dict or None), "edits",
        and "document" or "photo" for files}.
        """
        with self._cond:
            shown = []
            for stored in self._chats.get(chat_id, {}).values():
                item = {
                    "message_id": stored["message_id"],
                    "text": stored.get("text", stored.get("caption", "")),
                    "reply_markup": stored.get("reply_markup"),
                    "edits": stored["edits"],
                }
                for key in ("document", "photo"):
                    if key in stored:
                        item[key] = stored[key]
                shown.append(item)
            return shown

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 10.0, *, since: int = 0) -> dict:
        """The first recorded call (from index `since` on) matching predicate, waiting up to timeout seconds.

        Calls are recorded on arrival; every call but a waiting long poll is already answered when seen.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for call in self.calls[since:]:
                    if predicate(call):
                        return call
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = [_describe(c) for c in self.calls[max(since, len(self.calls) - 12) :]]
                    raise AssertionError(
                        f"no matching Bot API call within {timeout}s; {len(self.calls) - since} calls since index "
                        f"{since}, the last ones:\n  " + "\n  ".join(recent or ["(none)"])
                    )
                self._cond.wait(remaining)

    def block(self, chat_id: int) -> None:
        """From now on, this chat has blocked the bot (403 on anything sent there)."""
        with self._cond:
            self.blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        """The chat accepts the bot again."""
        with self._cond:
            self.blocked.discard(chat_id)

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        """Every recorded call of one method, in order."""
        with self._cond:
            return [c for c in self.calls if c["method"] == method]

    # --- the dispatcher --------------------------------------------------------------------------

    def dispatch(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one request: HTTP status and JSON body."""
        name = self._by_lower.get(method.lower(), method)
        call = {"method": name, "params": params, "at": time.monotonic(), "status": None}
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()
            if name != "getUpdates" or token != self.token:
                status, body = self._answer(token, name, params)
                call["status"] = status
                self._cond.notify_all()
                return status, body
        # A long poll must not hold the lock while it waits; its call shows status None meanwhile.
        status, body = self._answer(token, name, params)
        with self._cond:
            call["status"] = status
            if status == 200:
                # What this poll handed over (the bot may die before it confirms them with the next offset).
                call["update_ids"] = [u["update_id"] for u in body["result"]]
            self._cond.notify_all()
        return status, body

    def _answer(self, token: str, name: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Check the token and method, then run it; any ApiError becomes its error answer."""
        try:
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            handler = self._methods.get(name)
            if handler is None:
                self.unknown_methods.append(name)
                raise ApiError(404, "Not Found: method not found")
            params = {key: _coerce(key, value) for key, value in params.items()}
            if name != "getUpdates":
                self._check_chat(name, params)
            return 200, {"ok": True, "result": handler(params)}
        except ApiError as exc:
            if exc.code == 429:
                self.rate_limited += 1
            return exc.code, exc.body()

    def _check_chat(self, name: str, params: dict[str, Any]) -> None:
        """Blocked chats and flood limits, before anything is stored."""
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            return
        if chat_id in self.blocked:
            if chat_id < 0:
                raise ApiError(403, "Forbidden: bot was kicked from the group chat")
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if name not in SEND_METHODS:
            return
        now = time.monotonic()
        buckets = [b for b in (self._global_bucket, self._chat_bucket(chat_id)) if b is not None]
        wait = max((b.wait_time(now) for b in buckets), default=0.0)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        for bucket in buckets:
            bucket.take()

    def _chat_bucket(self, chat_id: int) -> _Bucket | None:
        """This chat's flood bucket, or None when its kind of chat is not limited."""
        bucket = self._chat_buckets.get(chat_id)
        if bucket is None:
            if chat_id < 0 and self.group_per_minute:
                bucket = _Bucket(self.group_per_minute / 60, self.group_per_minute)
            elif chat_id > 0 and self.private_per_second:
                bucket = _Bucket(self.private_per_second, max(PRIVATE_BURST, 1))
            else:
                return None
            self._chat_buckets[chat_id] = bucket
        return bucket

    # --- JSON shapes -----------------------------------------------------------------------------

    def _bot_json(self) -> dict[str, Any]:
        """The bot as a User object."""
        return {"id": self.bot_id, "is_bot": True, "first_name": BOT_FIRST_NAME, "username": BOT_USERNAME}

    def _user_json(self, user_id: int) -> dict[str, Any]:
        """A user as a User object (language from their last pushed message)."""
        return {
            "id": user_id,
            "is_bot": False,
            "first_name": f"User{user_id}",
            "language_code": self._languages.get(user_id, "zh"),
        }

    def _chat_json(self, chat_id: int) -> dict[str, Any]:
        """A Chat object: private for positive ids, group or supergroup (-100…) for negative ones."""
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": f"User{chat_id}"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "type": kind, "title": f"Group {chat_id}"}

    def _message_json(self, stored: dict[str, Any]) -> dict[str, Any]:
        """A stored message as the Message object Telegram returns."""
        data = {
            "message_id": stored["message_id"],
            "from": self._bot_json(),
            "chat": self._chat_json(stored["chat_id"]),
            "date": stored["date"],
        }
        for key in ("text", "caption", "document", "photo", "reply_markup", "edit_date"):
            if stored.get(key) is not None:
                data[key] = stored[key]
        return data

    def _new_message_id(self, chat_id: int) -> int:
        """The next message id in a chat."""
        # Message ids count per chat, shared by the user's and the bot's messages.
        self._next_message_id[chat_id] = self._next_message_id.get(chat_id, 0) + 1
        return self._next_message_id[chat_id]

    def _queue(self, kind: str, payload: dict[str, Any]) -> int:
        """Queue one update for getUpdates and wake a waiting long poll."""
        update_id = next(self._update_ids)
        self._updates.append({"update_id": update_id, kind: payload})
        self._cond.notify_all()
        return update_id

    # --- shared checks ---------------------------------------------------------------------------

    @staticmethod
    def _chat_id(params: dict[str, Any]) -> int:
        """The chat_id parameter, or the 400 Telegram gives without a usable one."""
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        if not isinstance(chat_id, int):
            raise bad_request("chat not found")
        return chat_id

    @staticmethod
    def _markup(params: dict[str, Any]) -> dict[str, Any] | None:
        """The reply_markup parameter, checked as Telegram checks inline keyboards."""
        markup = params.get("reply_markup")
        if not markup:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:
            return markup
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays')
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise bad_request("can't parse inline keyboard button: Text buttons are unallowed")
                if len(button) < 2:
                    raise bad_request("can't parse inline keyboard button: Text buttons are unallowed")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                    raise bad_request("BUTTON_DATA_INVALID")
        return markup if rows else None

    def _stored(self, params: dict[str, Any]) -> dict[str, Any]:
        """The bot's message addressed by chat_id and message_id, or Telegram's 400."""
        chat_id = self._chat_id(params)
        message_id = params.get("message_id")
        stored = self._chats.get(chat_id, {}).get(message_id) if isinstance(message_id, int) else None
        if stored is None:
            if message_id in self._user_message_ids.get(chat_id, set()):
                raise bad_request("message can't be edited")
            raise bad_request("message to edit not found")
        return stored

    def _store(self, chat_id: int, **content: Any) -> dict[str, Any]:
        """Record a new bot message in a chat."""
        stored = {
            "message_id": self._new_message_id(chat_id),
            "chat_id": chat_id,
            "date": int(time.time()),
            "edits": 0,
            **{k: v for k, v in content.items() if v is not None},
        }
        self._chats.setdefault(chat_id, {})[stored["message_id"]] = stored
        return stored

    def _caption(self, params: dict[str, Any]) -> str | None:
        """The visible caption of a media message, if any."""
        if not params.get("caption"):
            return None
        caption = visible_text(str(params["caption"]), params.get("parse_mode"))
        if utf16_length(caption) > MAX_CAPTION_LENGTH:
            raise bad_request("message caption is too long")
        return caption

    def _file(self, params: dict[str, Any], field: str) -> tuple[str, bytes | None, str]:
        """(file name, content if uploaded, mime type) of a file parameter (upload, attach:// or file_id/URL)."""
        files = params.get("_files", {})
        value = params.get(field)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value.removeprefix("attach://"))
        else:
            upload = files.get(field)
        if upload is not None:
            return upload["filename"], upload["content"], upload["mime_type"]
        if not value:
            raise bad_request(f"there is no {field} in the request")
        return str(value).rsplit("/", 1)[-1], None, "application/octet-stream"

    # --- the methods -----------------------------------------------------------------------------

    def _m_getMe(self, _params: dict[str, Any]) -> dict[str, Any]:
        """getMe: the bot itself."""
        return {**self._bot_json(), "can_join_groups": True, "can_read_all_group_messages": False}

    def _m_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """getUpdates: confirm by offset, then wait up to `timeout` seconds for updates."""
        offset = params.get("offset")
        timeout = float(params.get("timeout") or 0)
        limit = min(max(int(params.get("limit") or MAX_UPDATES_PER_POLL), 1), MAX_UPDATES_PER_POLL)
        with self._cond:
            self._poll_generation += 1
            generation = self._poll_generation
            self._cond.notify_all()
            if "allowed_updates" in params:
                self._allowed = set(params["allowed_updates"] or ()) or None
            if isinstance(offset, int) and offset < 0:
                self._updates = self._updates[offset:]
            elif isinstance(offset, int) and offset > 0:
                # Asking from `offset` confirms every earlier update; Telegram forgets them.
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            deadline = time.monotonic() + timeout
            while True:
                if generation != self._poll_generation:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    )
                self._updates = [u for u in self._updates if self._is_allowed(u)]
                ready = self._updates[:limit]
                remaining = deadline - time.monotonic()
                if ready or remaining <= 0 or self._stopping:
                    return ready
                self._cond.wait(remaining)

    def _is_allowed(self, update: dict[str, Any]) -> bool:
        """Whether an update's kind passes the current allowed_updates."""
        kind = next(key for key in update if key != "update_id")
        return kind in self._allowed if self._allowed else kind not in OPT_IN_UPDATES

    def _m_setWebhook(self, params: dict[str, Any]) -> bool:
        """setWebhook: Telegram accepts only https addresses on ports 443, 80, 88 and 8443."""
        url = urlsplit(str(params.get("url", "")))
        if url.scheme != "https":
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if (url.port or 443) not in WEBHOOK_PORTS:
            raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        self.webhook_url = url.geturl()
        return True

    def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        """deleteWebhook: nothing to delete; drop_pending_updates empties the queue."""
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        """Where a command list is kept: (scope, language_code)."""
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    def _m_setMyCommands(self, params: dict[str, Any]) -> bool:
        """setMyCommands: validate and keep the list for its scope and language."""
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > MAX_UPDATES_PER_POLL:
            raise bad_request("commands must be a list of at most 100 BotCommand")
        for command in commands:
            if not COMMAND_NAME.match(str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(params)] = commands
        return True

    def _m_deleteMyCommands(self, params: dict[str, Any]) -> bool:
        """deleteMyCommands: forget the list for a scope and language."""
        self.commands.pop(self._commands_key(params), None)
        return True

    def _m_setMyDescription(self, params: dict[str, Any]) -> bool:
        """setMyDescription: at most 512 characters, kept per language."""
        if len(str(params.get("description", ""))) > 512:
            raise bad_request("BOT_DESCRIPTION_INVALID")
        self.descriptions[("long", str(params.get("language_code", "")))] = str(params.get("description", ""))
        return True

    def _m_setMyShortDescription(self, params: dict[str, Any]) -> bool:
        """setMyShortDescription: at most 120 characters, kept per language."""
        if len(str(params.get("short_description", ""))) > 120:
            raise bad_request("BOT_SHORT_DESCRIPTION_INVALID")
        self.descriptions[("short", str(params.get("language_code", "")))] = str(params.get("short_description", ""))
        return True

    def _m_getMyCommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """getMyCommands: the list for a scope and language."""
        return self.commands.get(self._commands_key(params), [])

    def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        """sendMessage: store the visible text and keyboard."""
        chat_id = self._chat_id(params)
        text = visible_text(str(params.get("text", "")), params.get("parse_mode"))
        if not text.strip():
            raise bad_request("message text is empty")
        if utf16_length(text) > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        return self._message_json(self._store(chat_id, text=text, reply_markup=self._markup(params)))

    def _m_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        """sendDocument: store the file (uploaded or by id) with its caption."""
        chat_id = self._chat_id(params)
        filename, content, mime_type = self._file(params, "document")
        file_id = f"doc{next(self._file_ids)}"
        document = {"file_id": file_id, "file_unique_id": file_id, "file_name": filename, "mime_type": mime_type}
        if content is not None:
            document["file_size"] = len(content)
        stored = self._store(
            chat_id, caption=self._caption(params), document=document, reply_markup=self._markup(params)
        )
        stored["content"] = content
        return self._message_json(stored)

    def _m_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        """sendPhoto: store the photo (uploaded or by id) with its caption."""
        chat_id = self._chat_id(params)
        _filename, content, _mime = self._file(params, "photo")
        file_id = f"photo{next(self._file_ids)}"
        size = {"file_id": file_id, "file_unique_id": file_id, "width": 640, "height": 480}
        if content is not None:
            size["file_size"] = len(content)
        stored = self._store(chat_id, caption=self._caption(params), photo=[size], reply_markup=self._markup(params))
        stored["content"] = content
        return self._message_json(stored)

    def _m_copyMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        """copyMessage: a new message with the copied message's content; the answer is only its MessageId."""
        chat_id = self._chat_id(params)
        source = (params.get("from_chat_id"), params.get("message_id"))
        original = self._user_messages.get(source) or self._chats.get(source[0], {}).get(source[1])  # type: ignore[arg-type]
        if original is None:
            raise bad_request("message to copy not found")
        content = {key: original[key] for key in ("text", "caption", "photo", "document") if key in original}
        stored = self._store(chat_id, copy_of=list(source), reply_markup=self._markup(params), **content)
        return {"message_id": stored["message_id"]}

    def _m_editMessageText(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        """editMessageText: change the stored text and keyboard in place."""
        if params.get("inline_message_id"):
            return True
        stored = self._stored(params)
        if "text" not in stored:
            raise bad_request("there is no text in the message to edit")
        text = visible_text(str(params.get("text", "")), params.get("parse_mode"))
        if not text.strip():
            raise bad_request("message text is empty")
        if utf16_length(text) > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        markup = self._markup(params)
        if text == stored["text"] and markup == stored.get("reply_markup"):
            raise bad_request(NOT_MODIFIED)
        stored.update(text=text, reply_markup=markup, edit_date=int(time.time()), edits=stored["edits"] + 1)
        return self._message_json(stored)

    def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        """editMessageReplyMarkup: change the stored keyboard in place."""
        if params.get("inline_message_id"):
            return True
        stored = self._stored(params)
        markup = self._markup(params)
        if markup == stored.get("reply_markup"):
            raise bad_request(NOT_MODIFIED)
        stored.update(reply_markup=markup, edit_date=int(time.time()), edits=stored["edits"] + 1)
        return self._message_json(stored)

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        """answerCallbackQuery: once per pushed button press."""
        query_id = str(params.get("callback_query_id", ""))
        # A query can be answered once; an unknown or used id is what Telegram calls "too old".
        if self._queries.get(query_id, True):
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        self._queries[query_id] = True
        update_id = self._query_updates.get(query_id)
        if update_id is not None:
            self._answers[update_id] = {k: v for k, v in params.items() if k != "_files"}
        return True

    def _m_deleteMessage(self, params: dict[str, Any]) -> bool:
        """deleteMessage: the message disappears from the chat."""
        chat_id = self._chat_id(params)
        if self._chats.get(chat_id, {}).pop(params.get("message_id"), None) is None:
            if params.get("message_id") in self._user_message_ids.get(chat_id, set()):
                self._user_message_ids[chat_id].discard(params["message_id"])
                return True
            raise bad_request("message to delete not found")
        return True

    def _m_pinChatMessage(self, params: dict[str, Any]) -> bool:
        """pinChatMessage: the bot's message is marked pinned (400 where the bot may not pin)."""
        chat_id = self._chat_id(params)
        if chat_id in self.no_pin_rights:
            raise bad_request("not enough rights to manage pinned messages in the chat")
        message_id = params.get("message_id")
        stored = self._chats.get(chat_id, {}).get(message_id) if isinstance(message_id, int) else None
        if stored is None:
            raise bad_request("message to pin not found")
        stored["pinned"] = True
        return True

    def _m_banChatMember(self, params: dict[str, Any]) -> bool:
        """banChatMember: accepted (the stand-in keeps no member lists)."""
        return True

    def _m_unbanChatMember(self, params: dict[str, Any]) -> bool:
        """unbanChatMember: accepted."""
        return True

    def pinned(self, chat_id: int) -> list[int]:
        """The ids of the bot's pinned messages in a chat."""
        with self._cond:
            return sorted(m for m, stored in self._chats.get(chat_id, {}).items() if stored.get("pinned"))

    def _m_close(self, _params: dict[str, Any]) -> bool:
        """close: accepted."""
        return True

    def _m_logOut(self, _params: dict[str, Any]) -> bool:
        """logOut: accepted."""
        return True


def _describe(call: dict[str, Any]) -> str:
    """One line about a recorded call, for failure messages."""
    params = {k: str(v)[:DESCRIBE_VALUE_LENGTH] for k, v in call["params"].items() if k != "_files"}
    return f"{call['method']} -> {call['status']} {json.dumps(params, ensure_ascii=False)}"


class _Server(ThreadingHTTPServer):
    """The HTTP server: room for a bot's many parallel connections, quiet about clients that hang up."""

    # socketserver's default listen backlog (5) resets connections when a bot opens dozens at once.
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore a reset or broken connection; report anything else as usual."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 front: routes /bot<token>/<method> to the BotAPIServer."""

    protocol_version = "HTTP/1.1"
    api: BotAPIServer

    def do_POST(self) -> None:
        """Bot API call with a body."""
        self._serve()

    def do_GET(self) -> None:
        """Bot API call with query parameters."""
        self._serve()

    def _serve(self) -> None:
        """Route one request to the stand-in and write its answer."""
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = self.rfile.read(length) if length else b""
        except (ConnectionResetError, BrokenPipeError):
            # The client died mid-request (the SIGKILL test does this on purpose): nothing to answer.
            self.close_connection = True
            return
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", url.path)
        if match is None:
            self._send(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        try:
            params, files = parse_body(self.headers.get("Content-Type", ""), body)
        except ApiError as exc:
            self._send(exc.code, exc.body())
            return
        params = {**dict(parse_qsl(url.query, keep_blank_values=True)), **params}
        if files:
            params["_files"] = files
        status, answer = self.api.dispatch(match.group(1), match.group(2), params)
        self._send(status, answer)

    def _send(self, status: int, answer: dict[str, Any]) -> None:
        """Write a JSON answer with its status."""
        data = json.dumps(answer, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a cancelled long poll); nothing to answer.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `calls` instead."""


def _print_new(server: BotAPIServer, chat_id: int, seen: dict[int, int]) -> None:
    """Print the bot's new or edited messages in one chat."""
    for message in server.messages_to(chat_id):
        if seen.get(message["message_id"]) == message["edits"]:
            continue
        seen[message["message_id"]] = message["edits"]
        mark = "edited" if message["edits"] else "new"
        print(f"\n[{mark} #{message['message_id']}] {message['text']}")
        rows = (message["reply_markup"] or {}).get("inline_keyboard", [])
        buttons = [b["text"] for row in rows for b in row]
        if buttons:
            print("  " + "  ".join(f"#{i} {label}" for i, label in enumerate(buttons, start=1)))


def _press(server: BotAPIServer, user_id: int, number: int) -> None:
    """Press the N-th button of the newest message with buttons."""
    for message in reversed(server.messages_to(user_id)):
        rows = (message["reply_markup"] or {}).get("inline_keyboard", [])
        buttons = [b for row in rows for b in row]
        if buttons:
            if 1 <= number <= len(buttons) and "callback_data" in buttons[number - 1]:
                server.push_callback(user_id, message["message_id"], buttons[number - 1]["callback_data"])
            else:
                print(f"no callback button #{number}")
            return
    print("no message with buttons yet")


def main(argv: list[str] | None = None) -> int:
    """Serve by hand until Ctrl-C, chatting as one user from the terminal."""
    parser = argparse.ArgumentParser(prog="python -m tests.botapi_server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--token", default="123:abc", help="the bot token the stand-in accepts")
    parser.add_argument("--user", type=int, default=1001, help="the Telegram user id you type as")
    parser.add_argument("--language", default="zh", help="that user's language_code")
    parser.add_argument("--global-per-second", type=float, default=None)
    parser.add_argument("--group-per-minute", type=int, default=None)
    parser.add_argument("--private-per-second", type=float, default=None)
    args = parser.parse_args(argv)
    server = BotAPIServer(
        args.token,
        global_per_second=args.global_per_second,
        group_per_minute=args.group_per_minute,
        private_per_second=args.private_per_second,
        port=args.port,
    )
    server.start()
    print(f"Bot API stand-in: BOT_API_BASE_URL={server.base_url} BOT_TOKEN={args.token}", flush=True)
    seen: dict[int, int] = {}
    stop = threading.Event()

    def watch() -> None:
        """Print the bot's messages to the user as they come."""
        while not stop.is_set():
            _print_new(server, args.user, seen)
            stop.wait(0.3)

    threading.Thread(target=watch, daemon=True).start()
    try:
        for line in sys.stdin:
            line = line.strip()
            if re.fullmatch(r"#\d+", line):
                _press(server, args.user, int(line[1:]))
            elif line:
                server.push_message(args.user, line, args.language)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
