"""``aar up`` end to end: a whole swarm from one command, heard by a plain NATS client.

One run of the real thing, as separate processes: the embedded server, the scorer, a worker, the
reviewer, an offline researcher and the dashboard, on a small task file (so that a cold feature
cache costs seconds, not minutes). A plain nats-py client with the observer's credentials hears the
scores; a crashed scorer is restarted; Ctrl-C stops everything and keeps the streams, and the
next ``aar up`` resumes the swarm without preparing the task again.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import nats
import numpy as np
import pytest
from nats.aio.msg import Msg

from bus.natsd import free_port
from tests.dashboard.cdp import Chromium, chromium_available

AAR = Path(sys.executable).parent / "aar"
pytestmark = pytest.mark.timeout(600)


def _words(text: str) -> list[str]:
    return text.split()


# Many sentiment words, each rare: a TF-IDF model trained on a few hundred examples has not seen
# most of them, while MiniLM knows what they mean, so the strong ceiling beats the weak supervisor.
_POS = _words(
    "good great fine superb lovely bright warm happy brilliant charming delightful moving witty "
    "gripping stunning tender joyful elegant clever vivid rousing heartfelt masterful engaging "
    "radiant splendid graceful marvelous inventive soulful fresh lively sublime touching dazzling "
    "wonderful terrific excellent beautiful uplifting"
)
_NEG = _words(
    "bad awful poor dull grim cold sad weak boring clumsy dreary tedious shallow bland lifeless "
    "messy hollow stale tiresome sloppy wooden murky lazy flat forgettable pointless dismal "
    "painful awkward tepid soulless clunky ugly muddled inept dire drab terrible horrible dreadful"
)
_FILLER = ["the", "film", "plot", "actor", "scene", "story", "music", "ending", "cast", "day"]


def write_task(path: Path, n: int = 1600) -> Path:
    """Short reviews whose label is the sentiment of one word among fillers."""
    rng = np.random.default_rng(0)
    with path.open("w") as f:
        for i in range(n):
            label = int(rng.integers(0, 2))
            words = [*rng.choice(_FILLER, size=6), str(rng.choice(_POS if label else _NEG))]
            f.write(json.dumps({"text": " ".join(rng.permutation(words)) + f" r{i}", "label": label}) + "\n")
    return path


def creds_text(path: str) -> str:
    return Path(path).read_text()


class Up:
    """A running ``aar up`` whose stdout is read line by line and kept."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def expect(self, pattern: str, timeout: float, *, new: bool = False) -> re.Match[str]:
        """The first line matching ``pattern`` (with ``new``: among lines not read yet)."""
        for line in [] if new else self.lines:
            if match := re.search(pattern, line):
                return match
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while raw := await self.proc.stdout.readline():
                line = raw.decode().rstrip()
                self.lines.append(line)
                if match := re.search(pattern, line):
                    return match
        raise AssertionError(f"aar up ended before {pattern!r}:\n" + "\n".join(self.lines))

    async def finish(self, timeout: float) -> int:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            rest = await self.proc.stdout.read()
            self.lines += rest.decode().splitlines()
            return await self.proc.wait()


async def start_up(*argv: str, env: dict[str, str]) -> Up:
    proc = await asyncio.create_subprocess_exec(
        str(AAR), "up", *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env
    )
    return Up(proc)


def pids_of(marker: str, command: str) -> list[int]:
    """Processes whose command line runs ``aar <command>`` and mentions ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv]
        if command in words and any(marker in w for w in words) and "cli" in words:
            found.append(int(entry.name))
    return found


async def test_up_brings_a_whole_swarm_up_and_resumes_it(tmp_path: Path) -> None:
    data, task = tmp_path / "data", write_task(tmp_path / "tiny.jsonl")
    env = {**os.environ, "AAR_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("AAR_NATS_URL", None)
    port = free_port()
    server = ["--data-dir", str(data), "--port", str(port), "--monitor-port", str(free_port())]
    up = await start_up(
        *server,
        "--swarm",
        "e2e",
        "--task",
        str(task),
        "--workers",
        "1",
        "--agents",
        "1",
        "--dashboard-port",
        "0",
        "--progress-every",
        "10",
        env=env,
    )
    try:
        await up.expect(r"aar: task 'tiny' ready", timeout=240)
        dashboard = (await up.expect(r"aar: dashboard at (http://\S+)", timeout=60)).group(1)
        observer = (await up.expect(r"--creds (\S+observer\.creds)", timeout=10)).group(1)
        await up.expect(r"aar: Ctrl-C to stop", timeout=10)
        assert f"aar agent run offline-researcher --name NAME --nats nats://127.0.0.1:{port}" in "\n".join(
            up.lines
        )

        # Any NATS client, with the observer's key, hears the scores as plain JSON.
        seed = next(line for line in creds_text(observer).splitlines() if line.startswith("SU"))
        nc = await nats.connect(f"nats://127.0.0.1:{port}", nkeys_seed_str=seed)
        heard: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def on_msg(msg: Msg) -> None:
            await heard.put(json.loads(msg.data))

        try:
            await nc.subscribe("aar.e2e.scores.>", cb=on_msg)
            async with asyncio.timeout(300):
                score = await heard.get()
            assert score["kind"] == "score" and score["task"] == "tiny" and score["swarm"] == "e2e"
            await up.expect(r"aar: first score \d+s after start: tiny", timeout=10)
            if chromium_available():
                await _dashboard_shows_new_scores_live(dashboard, heard)
        finally:
            await nc.close()

        # A crashed scorer is reported and started again.
        scorers = pids_of(str(data), "scorer")
        assert len(scorers) == 1, scorers
        os.kill(scorers[0], signal.SIGKILL)
        await up.expect(r"\[scorer\] aar: scorer exited with status -9; restarting in 1s", timeout=30)
        await up.expect(r"\[scorer\] aar: scorer \S+ scoring swarm 'e2e'", timeout=60, new=True)
        assert pids_of(str(data), "scorer") not in ([], scorers)
    finally:
        if up.proc.returncode is None:
            up.proc.send_signal(signal.SIGINT)
        rc = await up.finish(timeout=90)
    assert rc == 0, "\n".join(up.lines)
    out = "\n".join(up.lines)
    assert "aar: stopped; stream data kept" in out
    # Stopped in reverse order: the researcher before the reviewer before the scorer.
    said = (
        "[offline-1] aar: agent offline-1 stopped",
        "[reviewer] aar: agent reviewer stopped",
        "[scorer] aar: scorer stopping",
    )
    order = [out.rindex(line) for line in said]
    assert order == sorted(order)
    assert not pids_of(str(data), "scorer") and not pids_of(str(data), "worker")

    # The same command again resumes the swarm: the task is ready, the scores are still there; as a
    # demo it stops by itself and writes the report.
    again = await start_up(
        *server, "--swarm", "e2e", "--task", str(task), "--workers", "0", "--agents", "0",
        "--no-reviewer", "--no-dashboard", "--no-scorer", "--demo-minutes", "0.5", env=env,
    )  # fmt: skip
    try:
        await again.expect(r"aar: Ctrl-C to stop", timeout=60)
        tail = await asyncio.create_subprocess_exec(
            str(AAR), "tail", "scores", "--all", "--count", "1", "--json", "--timeout", "20",
            "--nats", f"nats://127.0.0.1:{port}", "--swarm", "e2e", "--creds", observer,
            stdout=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        tailed, _ = await tail.communicate()
        stored = json.loads(tailed.splitlines()[0])
        assert tail.returncode == 0 and stored["kind"] == "score" and stored["task"] == "tiny"
        assert await again.finish(timeout=120) == 0, "\n".join(again.lines)
    finally:
        if again.proc.returncode is None:
            again.proc.kill()
    assert not any("preparing task" in line for line in again.lines)
    report = data / "up" / "e2e" / "report"
    assert f"aar: report: {report / 'index.html'}" in again.lines
    assert "## Summary" in (report / "report.md").read_text()
    assert (report / "pgr-over-time-tiny.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def _dashboard_shows_new_scores_live(url: str, heard: asyncio.Queue[dict[str, Any]]) -> None:
    """The page loads, then a score published after it loaded appears in it without a reload."""
    async with Chromium() as browser:
        await browser.navigate(url)
        await browser.wait_for("document.body.dataset.connection === 'live'", timeout_s=30)
        await browser.wait_for("document.querySelectorAll('#scores-body tr[data-result-id]').length > 0")
        await browser.evaluate("window.__sameDocument = true")
        while not heard.empty():  # scores published before this point may be in the snapshot
            heard.get_nowait()
        async with asyncio.timeout(180):
            fresh = await heard.get()
        result_id = fresh["lineage"]["result_id"]
        selector = json.dumps(f'#scores-body tr[data-result-id="{result_id}"]')
        await browser.wait_for(f"document.querySelector({selector}) !== null", timeout_s=10)
        assert await browser.evaluate("window.__sameDocument === true")  # no reload
