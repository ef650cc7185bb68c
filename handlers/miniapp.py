"""The Insight Mini App: one page and one JSON API, served by the bot's own process.

Telegram opens the page (insight.webapp_url) inside the app and hands it `initData`, signed with the bot's token.
The page sends it back with every API call (`Authorization: tma <initData>`); the server checks the signature
(HMAC-SHA256 keyed with HMAC-SHA256("WebAppData", token)) and its age, then answers exactly what /stats shows
that Telegram user: a cadre's own units, the same "<5" hiding. Anything else is 401 (no valid signature) or 403
(signed, but not a cadre of that unit), with no figures.

In webhook mode the routes join the webhook's server; in polling mode MiniAppServer listens on
insight.webapp_listen:webapp_port (behind the organisation's https proxy).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import tornado.web
from sqlmodel import Session
from telegram.ext import Application
from tornado.httpserver import HTTPServer

from handlers.insight import figures, scope_units
from messages import pick_locale
from models import insight, members
from models.errors import DomainError
from models.insight import AREAS, PERIODS
from services import Services

log = logging.getLogger(__name__)
# A signed moment this far in the future is refused (clocks differ a little, not by minutes).
CLOCK_SKEW_SECONDS = 60
PAGE_TEMPLATE = "web/insight.html"
WEB_LABELS = "insight_web_"


class InitDataError(Exception):
    """initData is missing, forged, signed for another bot, or too old."""


@dataclass(frozen=True)
class WebUser:
    telegram_id: int
    language: str | None


def check_init_data(init_data: str, token: str, now: datetime, max_age_seconds: int) -> WebUser:
    """The Telegram user initData was signed for; InitDataError unless it is genuine and fresh.

    As https://core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app describes: every field but
    `hash`, sorted, `key=value` joined by newlines, HMAC-SHA256 with the key HMAC-SHA256("WebAppData", token).
    """
    fields = dict(parse_qsl(init_data, keep_blank_values=True, strict_parsing=False))
    received = fields.pop("hash", "")
    if not received or not token:
        raise InitDataError("unsigned")
    check = "\n".join(f"{key}={value}" for key, value in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    expected = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, received):
        raise InitDataError("bad signature")
    try:
        signed_at = int(fields["auth_date"])
        user = json.loads(fields["user"])
        telegram_id = int(user["id"])
    except (KeyError, ValueError, TypeError):
        raise InitDataError("incomplete") from None
    age = now.timestamp() - signed_at
    if age > max_age_seconds or age < -CLOCK_SKEW_SECONDS:
        raise InitDataError("expired")
    return WebUser(telegram_id, user.get("language_code"))


def sign_init_data(fields: dict[str, str], token: str) -> str:
    """initData as Telegram would sign it (for tests and local trials of the page)."""
    check = "\n".join(f"{key}={value}" for key, value in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    digest = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode({**fields, "hash": digest})


def _stats(session: Session, services: Services, user: WebUser, area: str, period: str, unit: str | None) -> dict:
    """What /stats would show this user for that area, period and unit, as JSON-ready data (DomainError if not)."""
    config = services.config
    actor = members.load_actor(session, user.telegram_id, config.admin_ids)
    locale = pick_locale(actor.member.language if actor.member else user.language)
    units = scope_units(actor, config, unit)
    today = services.clock.now().astimezone(config.timezone).date()
    span = insight.period_of(period, today)
    served = [u for u in config.units if actor.can_manage(u.code)]
    renderer = services.renderer
    shown = figures(session, config, locale, today, area, units, span)
    # Section and counter names as the chat shows them (its templates' macros), not the code's names.
    names = renderer.env.get_template(f"{locale}/insight/_names.j2").module
    if area == "interaction":
        shown["sections"] = [(str(names.section_name(name)), n) for name, n in shown["sections"]]
        shown["actions"] = [(str(names.action_name(name)), n) for name, n in shown["actions"]]
    if area == "efficiency":
        shown["extra"] = [(str(names.ratio_name(name)), *rest) for name, *rest in shown["extra"]]
    return {
        "locale": locale,
        "area": area,
        "period": period,
        "unit": unit,
        "start": span.start,
        "until": today,
        "units": [{"code": u.code, "name": u.name(locale)} for u in served],
        "figures": shown,
        "labels": {key[len(WEB_LABELS) :]: renderer.label(locale, key) for key in _web_labels(renderer, locale)},
    }


def _web_labels(renderer: Any, locale: str) -> list[str]:
    return sorted(key for key in renderer.label_keys(locale) if key.startswith(WEB_LABELS))


def _json(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


class _PageHandler(tornado.web.RequestHandler):
    def initialize(self, app: Application) -> None:
        self.services: Services = app.bot_data["services"]

    def get(self) -> None:
        """The page: static HTML and script; every figure comes from the API with the signed initData."""
        page = self.services.renderer.env.get_template(PAGE_TEMPLATE).render()
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.write(page)


class _ApiHandler(tornado.web.RequestHandler):
    def initialize(self, app: Application) -> None:
        self.services: Services = app.bot_data["services"]

    def _refuse(self, status: int, reason: str) -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.finish({"error": reason})

    async def get(self) -> None:
        """GET /app/api/stats?area=&period=&unit= with `Authorization: tma <initData>`."""
        header = self.request.headers.get("Authorization", "")
        scheme, _, init_data = header.partition(" ")
        settings = self.services.config.insight
        try:
            if scheme.lower() != "tma":
                raise InitDataError("no initData")
            now = self.services.clock.now()
            user = check_init_data(init_data, self.services.config.token, now, settings.initdata_max_age_seconds)
        except InitDataError as exc:
            log.info("mini app: refused a request (%s)", exc)
            self._refuse(401, "unauthorized")
            return
        area = self.get_query_argument("area", "reach")
        period = self.get_query_argument("period", "month")
        unit = self.get_query_argument("unit", "") or None
        if area not in AREAS or period not in PERIODS:
            self._refuse(400, "bad request")
            return
        try:
            data = await self.services.db.read(_stats, self.services, user, area, period, unit)
        except DomainError:
            self._refuse(403, "forbidden")
            return
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.write(json.dumps(data, default=_json, ensure_ascii=False))


def routes(app: Application) -> list[tuple[str, type, dict[str, Any]]]:
    """The Mini App's routes, for the webhook's server or MiniAppServer."""
    return [(r"/app/?", _PageHandler, {"app": app}), (r"/app/api/stats", _ApiHandler, {"app": app})]


class MiniAppServer:
    """Polling mode: a small server of its own for the Mini App."""

    def __init__(self, app: Application, listen: str, port: int) -> None:
        self.server = HTTPServer(tornado.web.Application(routes(app)))
        self.listen, self.port = listen, port

    def start(self) -> None:
        """Listen (SO_REUSEPORT, as the webhook: several processes may serve the same port)."""
        self.server.listen(self.port, address=self.listen, reuse_port=True)

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        self.server.stop()
        await self.server.close_all_connections()
