"""Insight at scale: a bureau cadre's /stats over 100,000 members, 20 units and 6 months of daily activity.

Run: `.venv/bin/python bench/stats.py [--members 100000] [--days 182] [--active 0.3] [--db URL] [--storm-members 5000]`.

Seeds (fast, straight SQL): `--members` verified members in the first 20 units with birth years and joining dates
spread over the period, a roster 10% larger, and `--days` days of activity in which each member is active on a
given day with probability `--active` (in one section, sometimes two). Then, on the bot's own database layer:

- stats_ms: the median of 5 computations of a bureau cadre's four /stats areas (reach, interaction, stickiness,
  efficiency) for "this month" over every unit, templates rendered, as handlers/insight.py computes them;
- charts_ms: the median of 3 computations and drawings of those four areas' charts (PNG, as /stats sends them);
- activity_write_overhead: the claim storm's throughput (bench/claim_storm.py, `--storm-members` members) with
  activity recording on, divided by the same with it off (`--no-activity`); two runs each, alternating, best of each.

Last line: `stats_ms=<n> charts_ms=<n> activity_write_overhead=<r>`. Targets: stats_ms <= 1000, charts_ms <= 1500,
activity_write_overhead >= 0.95.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from bench._common import add_common_arguments, run_benchmark  # noqa: E402
from charts import bar_chart  # noqa: E402
from config import Config  # noqa: E402
from handlers.insight import chart_bars, figures  # noqa: E402
from messages import Renderer  # noqa: E402
from models import insight  # noqa: E402
from models.activity import Activity  # noqa: E402
from models.db import Database  # noqa: E402
from models.members import Member, RosterEntry, Status, sync_units  # noqa: E402

UNITS = 20
SECTIONS = ("welfare", "points", "menu", "runs", "surveys", "show")
CHUNK = 5000
TARGETS = {"stats_ms": 1000, "charts_ms": 1500, "activity_write_overhead": 0.95}
TODAY = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


def seed(db: Database, config: Config, members: int, days: int, active: float) -> int:
    """Members, roster and activity, in chunks of plain INSERTs; returns the activity rows written."""
    rng = random.Random(7)
    units = [u.code for u in config.units][:UNITS]
    start = TODAY - timedelta(days=days)
    rows = 0
    with db.writing() as session:
        sync_units(session, [(u.code, u.name_zh, u.name_en) for u in config.units])
        roster = [
            {"unit_code": units[n % UNITS], "employee_no": f"E{n}", "name": f"R{n}", "birth_year": 1960 + n % 45}
            for n in range(members + members // 10)
        ]
        for i in range(0, len(roster), CHUNK):
            session.execute(insert(RosterEntry), roster[i : i + CHUNK])
        people = []
        for n in range(members):
            joined = start + timedelta(days=rng.randrange(days))
            people.append(
                {
                    "telegram_id": 10_000_000 + n,
                    "unit_code": units[n % UNITS],
                    "employee_no": f"E{n}",
                    "name": f"M{n}",
                    "birth_year": 1960 + n % 45,
                    "status": Status.VERIFIED,
                    "created_at": joined - timedelta(hours=5),
                    "verified_at": joined,
                }
            )
        for i in range(0, len(people), CHUNK):
            session.execute(insert(Member), people[i : i + CHUNK])
    with db.writing() as session:
        batch: list[dict] = []
        for member_id in range(1, members + 1):
            for day in range(days):
                if rng.random() < active:
                    local = (start + timedelta(days=day)).date()
                    batch.append({"member_id": member_id, "day": local, "section": SECTIONS[rng.randrange(3)]})
                    if rng.random() < 0.2:
                        batch.append({"member_id": member_id, "day": local, "section": SECTIONS[3 + rng.randrange(3)]})
            if len(batch) >= CHUNK * 4:
                session.execute(insert(Activity), batch)
                rows += len(batch)
                batch = []
        if batch:
            session.execute(insert(Activity), batch)
            rows += len(batch)
    return rows


def stats_screen(db: Database, config: Config, renderer: Renderer) -> float:
    """Milliseconds for the four areas of a bureau cadre's /stats (this month, every unit), rendered."""
    today = TODAY.astimezone(config.timezone).date()
    units = [u.code for u in config.units]
    period = insight.period_of("month", today)
    began = time.perf_counter()
    with db.reading() as session:
        for area in insight.AREAS:
            shown = figures(session, config, "zh", today, area, units, period)
            renderer.render(
                "zh",
                f"insight/{area}",
                period="month",
                start=period.start,
                until=today,
                unit=None,
                units=len(units),
                **shown,
            )
    return (time.perf_counter() - began) * 1000


def charts(db: Database, config: Config, renderer: Renderer) -> float:
    """Milliseconds to compute and draw the four areas' charts (handlers/insight.py send_chart), PNG bytes."""
    today = TODAY.astimezone(config.timezone).date()
    units = [u.code for u in config.units]
    period = insight.period_of("month", today)
    began = time.perf_counter()
    with db.reading() as session:
        for area in insight.AREAS:
            labels, values, unit = chart_bars(session, config, renderer, "zh", today, area, units, period)
            bar_chart(renderer.label("zh", f"insight_chart_{area}"), labels, values, unit=unit)
    return (time.perf_counter() - began) * 1000


def storm(members: int, activity: bool) -> float:
    """The claim storm's claims_per_s, run as its own process (a fresh SQLite file)."""
    args = [sys.executable, str(ROOT / "bench" / "claim_storm.py"), "--members", str(members), "--stock", "200"]
    if not activity:
        args.append("--no-activity")
    out = subprocess.run(args, capture_output=True, text=True, check=False).stdout
    found = re.search(r"claims_per_s=(\d+)", out)
    if found is None:
        raise SystemExit(f"FAILED: the claim storm printed no result:\n{out[-2000:]}")
    return float(found.group(1))


async def run(args: argparse.Namespace, config: Config) -> int:
    """Seed, time the stats screen, then the claim storm with and without activity recording."""
    db = Database(config.database_url, config.busy_timeout_ms)
    try:
        began = time.perf_counter()
        rows = seed(db, config, args.members, args.days, args.active)
        print(
            f"setup: db={db.dialect} members={args.members} activity_rows={rows} days={args.days} "
            f"seeded in {time.perf_counter() - began:.1f}s"
        )
        renderer = Renderer()
        stats_screen(db, config, renderer)  # warm: query plans, templates
        timings = [stats_screen(db, config, renderer) for _ in range(5)]
        print(f"stats: four areas, {len(config.units)} units: {', '.join(f'{t:.0f}' for t in timings)} ms")
        charts(db, config, renderer)  # warm: fonts
        drawn = [charts(db, config, renderer) for _ in range(3)]
        print(f"charts: four areas: {', '.join(f'{t:.0f}' for t in drawn)} ms")
    finally:
        await db.dispose()
    stats_ms = statistics.median(timings)
    charts_ms = statistics.median(drawn)
    on, off = [], []
    for _ in range(2):
        on.append(storm(args.storm_members, True))
        off.append(storm(args.storm_members, False))
    print(f"claim storm ({args.storm_members} members): activity on {on} /s, off {off} /s")
    overhead = max(on) / max(off)
    figures_ = {"stats_ms": stats_ms, "charts_ms": charts_ms, "activity_write_overhead": overhead}
    for name, target in TARGETS.items():
        met = figures_[name] >= target if name == "activity_write_overhead" else figures_[name] <= target
        print(
            f"target {name} {'>=' if name == 'activity_write_overhead' else '<='} {target}: "
            f"{'met' if met else 'MISSED'}"
        )
    print(f"stats_ms={stats_ms:.0f} charts_ms={charts_ms:.0f} activity_write_overhead={overhead:.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, members=100_000)
    parser.add_argument("--days", type=int, default=182, help="days of activity (default 182, about 6 months)")
    parser.add_argument("--active", type=float, default=0.3, help="chance a member is active on a day (0.3)")
    parser.add_argument("--storm-members", type=int, default=5000, help="members of each claim storm (5000)")
    return run_benchmark(parser.parse_args(argv), "gongshe-stats-", run)


if __name__ == "__main__":
    sys.exit(main())
