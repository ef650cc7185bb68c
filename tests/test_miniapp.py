"""The Insight Mini App: the initData check, the API's scope, and the page in a real (headless) browser."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from handlers.miniapp import InitDataError, MiniAppServer, check_init_data, sign_init_data
from models import activity
from models.members import Role
from tests.conftest import ADMIN_ID, NOW, TOKEN, make_config, make_member, sqlite_url, start_bot

MAX_AGE = 86400
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Chromium (.ci/run) and sets this, so the browser test cannot be skipped there.
REQUIRE_BROWSER = os.environ.get("GONGSHE_REQUIRE_BROWSER") == "1"


def signed(user_id: int, *, token: str = TOKEN, at=NOW, language: str = "zh") -> str:
    user = json.dumps({"id": user_id, "first_name": "A", "language_code": language}, separators=(",", ":"))
    return sign_init_data({"auth_date": str(int(at.timestamp())), "query_id": "AAE", "user": user}, token)


def test_genuine_init_data_names_its_user():
    user = check_init_data(signed(42, language="en"), TOKEN, NOW, MAX_AGE)
    assert (user.telegram_id, user.language) == (42, "en")


@pytest.mark.parametrize(
    "init_data",
    [
        pytest.param(signed(42, token="654321:OTHER-BOT"), id="another bot's"),
        pytest.param(signed(42).replace("%22id%22%3A42", "%22id%22%3A43"), id="forged user"),
        pytest.param(signed(42, at=NOW - timedelta(seconds=MAX_AGE + 1)), id="expired"),
        pytest.param(signed(42, at=NOW + timedelta(minutes=5)), id="from the future"),
        pytest.param(signed(42).split("&hash=")[0], id="unsigned"),
        pytest.param("", id="empty"),
        pytest.param(sign_init_data({"auth_date": str(int(NOW.timestamp()))}, TOKEN), id="no user"),
    ],
)
def test_anything_else_is_refused(init_data):
    with pytest.raises(InitDataError):
        check_init_data(init_data, TOKEN, NOW, MAX_AGE)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def served(bot) -> AsyncIterator[str]:
    """The bot's Mini App server on a free local port; yields its page address."""
    port = _free_port()
    server = MiniAppServer(bot.app, "127.0.0.1", port)
    server.start()
    yield f"http://127.0.0.1:{port}/app/"
    await server.stop()


async def _cadre_with_members(bot) -> None:
    await make_member(bot.db, 9900, "i801", role=Role.CADRE)
    ids = [(await make_member(bot.db, 9901 + n, "i801")).id for n in range(6)]
    ids += [(await make_member(bot.db, 9950 + n, "i802")).id for n in range(6)]
    with bot.db.writing() as s:
        activity.record(s, [(i, NOW.date(), "welfare") for i in ids])


async def _get(url: str, init_data: str | None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"tma {init_data}"} if init_data is not None else {}
    async with httpx.AsyncClient() as client:
        return await client.get(url + "api/stats", params=params, headers=headers)


async def test_the_api_shows_a_cadre_their_units_only(bot, served):
    await _cadre_with_members(bot)
    answer = await _get(served, signed(9900), area="interaction", period="week")
    assert answer.status_code == 200
    data = answer.json()
    assert [u["code"] for u in data["units"]] == ["i801"]
    assert data["figures"]["weekly_active"] == "6" and data["figures"]["members"] == "7"
    assert data["figures"]["sections"] == [["会员福利", "6"]]
    assert data["labels"]["title"] == "工会数据看板"
    reach = (await _get(served, signed(9900), area="reach")).json()
    assert [r["unit"] for r in reach["figures"]["rows"]] == ["八〇一所工会", None]


async def test_the_api_refuses_without_a_valid_signature_or_scope(bot, served):
    await _cadre_with_members(bot)
    await make_member(bot.db, 9990, "i801")  # a member, not a cadre
    assert (await _get(served, None)).status_code == 401
    assert (await _get(served, signed(9900, token="654321:OTHER-BOT"))).status_code == 401
    assert (await _get(served, signed(9900, at=NOW - timedelta(days=2)))).status_code == 401
    forbidden = await _get(served, signed(9900), unit="i802")
    assert forbidden.status_code == 403 and "八〇二" not in forbidden.text
    assert (await _get(served, signed(9990))).status_code == 403
    assert (await _get(served, signed(424242))).status_code == 403  # not even registered
    assert (await _get(served, signed(9900), area="secrets")).status_code == 400


async def _browser_dom(url: str, tmp_path: Path) -> str:
    """What headless Chromium shows after running the page's script (the page fetches from this test's server)."""
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
    ]
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return out.decode()


@pytest.mark.skipif(CHROMIUM is None and not REQUIRE_BROWSER, reason="Chromium is not installed (.ci/run installs it)")
async def test_the_page_in_a_real_browser(bot, served, tmp_path):
    await _cadre_with_members(bot)
    good = await _browser_dom(served + "#tgWebAppData=" + quote(signed(9900)), tmp_path)
    assert 'data-status="200"' in good
    assert "八〇一所工会" in good and "认证会员" in good and "<svg" in good
    assert "八〇二所工会" not in good
    forged = await _browser_dom(served + "#tgWebAppData=" + quote(signed(9900, token="654321:OTHER-BOT")), tmp_path)
    assert 'data-status="401"' in forged and "八〇一所工会" not in forged and "<svg" not in forged
    expired = await _browser_dom(served + "#tgWebAppData=" + quote(signed(9900, at=NOW - timedelta(days=2))), tmp_path)
    assert 'data-status="401"' in expired and "<svg" not in expired


@pytest.fixture
async def webapp_bot(tmp_path) -> AsyncIterator:
    """The bot with a Mini App address configured (WEBAPP_URL)."""
    config = make_config(sqlite_url(tmp_path), tmp_path, WEBAPP_URL="https://insight.example.org/app/")
    async for b in start_bot(config):
        yield b


async def test_cadres_get_the_mini_app_as_menu_button_and_on_stats(webapp_bot):
    bot = webapp_bot
    await make_member(bot.db, ADMIN_ID, "hq")
    await make_member(bot.db, 9800, "i801", employee_no="M1")
    admin = bot.user(ADMIN_ID)
    await admin.send("/promote i801 M1 cadre")
    assert bot.api.menu_buttons[9800]["type"] == "web_app"
    assert bot.api.menu_buttons[9800]["web_app"]["url"] == "https://insight.example.org/app/"
    await admin.send("/demote i801 M1 cadre")
    assert bot.api.menu_buttons[9800] == {"type": "commands"}
    await admin.send("/stats")
    opener = admin.last.button("在小程序中查看")
    assert opener is not None and opener["web_app"]["url"] == "https://insight.example.org/app/"
