"""End to end: the real `python bot.py` process against the local Bot API stand-in, used as members would.

Also the command line's refusals (no token, bad config, bad roster file) and the stand-in's own wire behaviour
that these tests rely on (long polling, offsets, flood limits, blocked chats, unknown methods).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config import PROJECT_DIR
from tests.botapi_server import BotAPIServer, visible_text

TOKEN = "424242:E2E-TEST-TOKEN"
ADMIN_ID = 7001
NEWCOMER_ID = 7101
ROSTER_MEMBER_ID = 7102
UNIT_CODE = "i801"
UNIT_NAME_ZH = "八〇一所工会"
ROSTER_EMPLOYEE_NO = "R-2001"
ROSTER_NAME = "李四"
# Generous limits for a process start-up (imports, migrations) on a slow machine; never asserted as timings.
START_TIMEOUT = 60.0
STEP_TIMEOUT = 20.0
CLI_TIMEOUT = 60.0
ENV_KEYS_TO_CLEAR = (
    "BOT_TOKEN",
    "BOT_API_BASE_URL",
    "DATABASE_URL",
    "GONGSHE_CONFIG",
    "BOT_ADMINS",
    "WEBHOOK_URL",
    "WEBAPP_URL",
)


def bot_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a bot process: ours minus every Gongshe setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS_TO_CLEAR}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'e2e.db'}"
    env["PTB_TIMEDELTA"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `python bot.py ARGS` to completion in the project directory."""
    return subprocess.run(
        [sys.executable, "bot.py", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )


@pytest.fixture
def api() -> Iterator[BotAPIServer]:
    """A running stand-in for the Bot API."""
    server = BotAPIServer(TOKEN)
    server.start()
    yield server
    server.stop()


class BotProcess:
    """A running `python bot.py` and helpers to wait for what it does."""

    def __init__(self, api: BotAPIServer, env: dict[str, str], log_path: Path) -> None:
        """Start `python bot.py` with its output going to log_path."""
        self.api, self.log_path = api, log_path
        self._log = log_path.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "bot.py"], cwd=PROJECT_DIR, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        """Everything the process printed so far."""
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def until(self, predicate: Any, what: str, timeout: float = STEP_TIMEOUT, since: int = 0) -> dict[str, Any]:
        """Wait for a Bot API call matching predicate, failing early (with the bot's output) if the bot died."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.api.wait_for(predicate, timeout=0.5, since=since)
            except AssertionError as exc:
                if self.proc.poll() is not None:
                    pytest.fail(f"bot exited ({self.proc.returncode}) while waiting for {what}:\n{self.output()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"waiting for {what}: {exc}\n--- bot output ---\n{self.output()}")

    def sent_to(self, chat_id: int, contains: str, since: int, method: str = "sendMessage") -> dict[str, Any]:
        """Wait for the bot to send (or edit) a message in a chat whose visible text contains `contains`."""

        def matches(call: dict[str, Any]) -> bool:
            """A successful call of `method` to the chat whose visible text contains the wanted words."""
            params = call["params"]
            return (
                call["method"] == method
                and call["status"] == 200
                and str(params.get("chat_id")) == str(chat_id)
                and contains in visible_text(params.get("text", ""), params.get("parse_mode"))
            )

        self.until(matches, f"{method} to {chat_id} containing {contains!r}", since=since)
        return next(m for m in reversed(self.api.messages_to(chat_id)) if contains in m["text"])

    def stop(self) -> int:
        """SIGINT, as Ctrl-C would; returns the exit code."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=STEP_TIMEOUT)

    def kill(self) -> None:
        """Make sure the process is gone."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def button_data(message: dict[str, Any], label: str) -> str:
    """The callback_data of the button with this label in a message the user sees."""
    rows = (message["reply_markup"] or {}).get("inline_keyboard", [])
    for row in rows:
        for button in row:
            if button["text"] == label or label in button["text"]:
                return button["callback_data"]
    labels = [b["text"] for row in rows for b in row]
    raise AssertionError(f"no button {label!r} in message {message['message_id']}; buttons: {labels}")


def test_members_join_get_approved_and_see_points(api: BotAPIServer, tmp_path: Path) -> None:
    """A roster import, then two registrations through the running bot: one verified at once, one approved."""
    env = bot_env(tmp_path, BOT_TOKEN=TOKEN, BOT_API_BASE_URL=api.base_url, BOT_ADMINS=str(ADMIN_ID))
    roster = tmp_path / "roster.csv"
    roster.write_text(f"unit_code,employee_no,name\n{UNIT_CODE},{ROSTER_EMPLOYEE_NO},{ROSTER_NAME}\n", encoding="utf-8")
    imported = run_cli(["import-roster", str(roster)], env)
    assert imported.returncode == 0, imported.stderr

    bot = BotProcess(api, env, tmp_path / "bot.log")
    try:
        bot.until(lambda c: c["method"] == "getUpdates", "the first long poll", timeout=START_TIMEOUT)
        command_languages = {c["params"].get("language_code") for c in api.calls_of("setMyCommands")}
        assert {"zh", "en"} <= command_languages
        for language in ("zh", "en"):
            listed = {c["command"] for c in api.commands[('{"type": "all_private_chats"}', language)]}
            assert {"start", "points"} <= listed, (language, listed)

        # A newcomer who is not on the roster: /start, unit button, employee number, name.
        mark = len(api.calls)
        api.push_message(NEWCOMER_ID, "/start")
        welcome = bot.sent_to(NEWCOMER_ID, "选择您所在的基层工会", mark)
        mark = len(api.calls)
        api.push_callback(NEWCOMER_ID, welcome["message_id"], button_data(welcome, UNIT_NAME_ZH))
        asked = bot.sent_to(NEWCOMER_ID, "请发送您的工号", mark, method="editMessageText")
        assert asked["message_id"] == welcome["message_id"], "the unit step should edit the welcome in place"
        assert UNIT_NAME_ZH in asked["text"]
        bot.until(
            lambda c: c["method"] == "answerCallbackQuery" and c["status"] == 200, "the button answer", since=mark
        )
        mark = len(api.calls)
        api.push_message(NEWCOMER_ID, "E-1001")
        bot.sent_to(NEWCOMER_ID, "真实姓名", mark)
        mark = len(api.calls)
        api.push_message(NEWCOMER_ID, "张三")
        bot.sent_to(NEWCOMER_ID, "申请已提交", mark)

        # The admin is asked, and approves with the button on that very message.
        request = bot.sent_to(ADMIN_ID, "新的入会申请", mark)
        assert "E-1001" in request["text"] and "张三" in request["text"]
        mark = len(api.calls)
        api.push_callback(ADMIN_ID, request["message_id"], button_data(request, "通过"))
        bot.sent_to(NEWCOMER_ID, "入会申请已通过", mark)
        decided = next(m for m in api.messages_to(ADMIN_ID) if m["message_id"] == request["message_id"])
        assert decided["edits"] == 1 and decided["reply_markup"] is None, decided

        # The new member opens /points and sees the balance.
        mark = len(api.calls)
        api.push_message(NEWCOMER_ID, "/points")
        balance = bot.sent_to(NEWCOMER_ID, "我的积分", mark)
        assert "当前余额：0 分" in balance["text"]

        # A roster member is verified the moment they finish; no cadre is asked.
        admin_messages = len(api.messages_to(ADMIN_ID))
        mark = len(api.calls)
        api.push_message(ROSTER_MEMBER_ID, "/start")
        welcome = bot.sent_to(ROSTER_MEMBER_ID, "选择您所在的基层工会", mark)
        api.push_callback(ROSTER_MEMBER_ID, welcome["message_id"], button_data(welcome, UNIT_NAME_ZH))
        bot.sent_to(ROSTER_MEMBER_ID, "请发送您的工号", mark, method="editMessageText")
        api.push_message(ROSTER_MEMBER_ID, ROSTER_EMPLOYEE_NO)
        bot.sent_to(ROSTER_MEMBER_ID, "真实姓名", mark)
        api.push_message(ROSTER_MEMBER_ID, ROSTER_NAME)
        verified = bot.sent_to(ROSTER_MEMBER_ID, "您已通过认证", mark)
        assert ROSTER_NAME in verified["text"] and UNIT_NAME_ZH in verified["text"]
        assert len(api.messages_to(ADMIN_ID)) == admin_messages

        refused = [c for c in api.calls if c["status"] not in (200, None)]
        assert not refused, f"the stand-in refused calls: {refused}"
        assert not api.unknown_methods

        assert bot.stop() == 0, bot.output()
        output = bot.output()
        assert "Traceback" not in output, (
            "the bot logged a traceback:\n" + output[max(0, output.find("Traceback") - 300) :]
        )
    finally:
        bot.kill()


def test_no_token_points_to_botfather(tmp_path: Path) -> None:
    """Without BOT_TOKEN the bot stops at once with exit code 2 and says where a token comes from."""
    env = bot_env(tmp_path)
    if (PROJECT_DIR / ".env").exists():
        # An empty value counts as missing and keeps a developer's .env from supplying a token.
        env["BOT_TOKEN"] = ""
    result = run_cli([], env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "@BotFather" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    """A configuration with an unknown time zone is refused with exit code 2, naming the key."""
    config = tmp_path / "config.toml"
    config.write_text(
        '[organisation]\nname_zh = "工社"\nname_en = "Union"\ntimezone = "Mars/Olympus_Mons"\n\n'
        '[[units]]\ncode = "hq"\nname_zh = "机关"\nname_en = "HQ"\n',
        encoding="utf-8",
    )
    result = run_cli([], bot_env(tmp_path, BOT_TOKEN=TOKEN, GONGSHE_CONFIG=str(config)))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "organisation.timezone" in result.stderr
    assert "Traceback" not in result.stderr


def test_roster_with_a_bad_line_is_refused_by_line_number(tmp_path: Path) -> None:
    """import-roster names the bad line, exits 1 and stores nothing."""
    roster = tmp_path / "roster.csv"
    roster.write_text(
        f"unit_code,employee_no,name\n{UNIT_CODE},X,王五\nzz9,R-3002,赵六\n{UNIT_CODE},R-3003,钱七\n",
        encoding="utf-8",
    )
    result = run_cli(["import-roster", str(roster)], bot_env(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    # Line 2 has a one-character employee number, line 3 an unknown unit; line 4 is fine.
    assert any("第 2 行" in line and "X" in line for line in lines), result.stderr
    assert any("第 3 行" in line and "zz9" in line for line in lines), result.stderr
    assert not any("第 4 行" in line for line in lines), result.stderr
    assert not (tmp_path / "e2e.db").exists(), "a refused roster must not touch the database"


# --- the stand-in itself: the wire behaviour the tests above rely on --------------------------------------------


def call(api: BotAPIServer, method: str, token: str = TOKEN, **params: Any) -> tuple[int, dict[str, Any]]:
    """One form-encoded Bot API request, as PTB sends it; returns (HTTP status, JSON answer)."""
    form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    body = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(f"{api.base_url}{token}/{method}", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=STEP_TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_stand_in_long_polls_and_forgets_confirmed_updates(api: BotAPIServer) -> None:
    """getUpdates waits for an update pushed meanwhile, and an offset drops what came before it."""
    first = api.push_message(1, "one")
    status, answer = call(api, "getUpdates", timeout=0)
    assert status == 200 and [u["update_id"] for u in answer["result"]] == [first]
    assert answer["result"][0]["message"]["text"] == "one"

    pushed: list[int] = []
    timer = threading.Timer(0.3, lambda: pushed.append(api.push_message(1, "two")))
    timer.start()
    status, answer = call(api, "getUpdates", offset=first + 1, timeout=STEP_TIMEOUT)
    timer.join()
    assert status == 200 and [u["update_id"] for u in answer["result"]] == pushed
    status, answer = call(api, "getUpdates", offset=pushed[0] + 1, timeout=0)
    assert answer["result"] == []


def test_stand_in_refuses_like_telegram(api: BotAPIServer) -> None:
    """Wrong token 401, unknown method 404 (recorded), blocked chat 403, bad HTML 400."""
    assert call(api, "getMe", token="1:wrong")[0] == 401
    status, answer = call(api, "sendSticker", chat_id=5)
    assert (status, answer["description"]) == (404, "Not Found: method not found")
    assert api.unknown_methods == ["sendSticker"]
    api.block(5)
    status, answer = call(api, "sendMessage", chat_id=5, text="hi")
    assert (status, answer["description"]) == (403, "Forbidden: bot was blocked by the user")
    status, answer = call(api, "sendMessage", chat_id=6, text="<b>hi", parse_mode="HTML")
    assert status == 400 and "can't parse entities" in answer["description"]
    status, answer = call(api, "sendMessage", chat_id=6, text="<b>hi</b> &amp; you", parse_mode="HTML")
    assert status == 200 and api.messages_to(6)[0]["text"] == "hi & you"


def test_stand_in_enforces_the_group_flood_limit() -> None:
    """Past 20 messages a minute to one group the stand-in answers 429 with retry_after, and counts it."""
    api = BotAPIServer(TOKEN, group_per_minute=20)
    api.start()
    try:
        statuses = [call(api, "sendMessage", chat_id=-100123, text=f"m{i}")[0] for i in range(21)]
        status, answer = call(api, "sendMessage", chat_id=-100123, text="again")
        other_group = call(api, "sendMessage", chat_id=-100456, text="elsewhere")[0]
    finally:
        api.stop()
    assert statuses == [200] * 20 + [429]
    assert status == 429 and answer["parameters"]["retry_after"] >= 1
    assert answer["description"] == f"Too Many Requests: retry after {answer['parameters']['retry_after']}"
    assert other_group == 200
    assert api.rate_limited == 2
    assert len(api.messages_to(-100123)) == 20
