"""OS processes racing on one PostgreSQL database: each runs a worker module (tests/*_worker.py), says "ready",
waits for "go", does its share and prints its outcomes as a JSON object on its last line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter

from config import PROJECT_DIR


async def race(module: str, argsets: list[list[str]]) -> Counter[str]:
    """Start one `python -m <module> *args` per argset, release them together, and add up their outcomes."""
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            cwd=PROJECT_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for args in argsets
    ]
    for worker in workers:
        assert (await worker.stdout.readline()).strip() == b"ready"
    for worker in workers:
        worker.stdin.write(b"go\n")
        await worker.stdin.drain()
    results = [await worker.communicate() for worker in workers]
    assert all(worker.returncode == 0 for worker in workers)
    outcomes: Counter[str] = Counter()
    for stdout, _ in results:
        outcomes.update(json.loads(stdout.decode().strip().splitlines()[-1]))
    return outcomes
