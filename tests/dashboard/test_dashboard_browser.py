"""End to end in headless Chromium: the page loads what is stored, then a new score appears without a
reload, pushed from the bus through the real Scorer, the dashboard server and the page's EventSource."""

from __future__ import annotations

import json

import pytest

from bus import Bus, Kind, StartAt
from dashboard import Dashboard
from schemas import ForumPost, ScoreEvent
from scorer import Scorer
from scorer.synthetic import SyntheticTask
from tests.dashboard.cdp import CHROMIUM, Chromium, chromium_available
from tests.dashboard.support import submit_at
from tests.helpers import Collector
from tests.scorer.conftest import WORKER

pytestmark = pytest.mark.skipif(
    not chromium_available(),
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium, or set AAR_CHROMIUM)",
)

HOSTILE = '<img src=x onerror="window.__pwned=1">'


def row(result_id: str) -> str:
    """JavaScript for the score table's row of one result."""
    selector = '#scores-body tr[data-result-id="' + result_id + '"]'
    return f"document.querySelector({json.dumps(selector)})"


async def test_the_page_shows_the_board_and_a_new_score_appears_without_a_reload(
    bus: Bus, swarm: str, synth: SyntheticTask, scorer: Scorer
) -> None:
    scores: Collector[ScoreEvent] = Collector()
    await bus.subscribe(swarm, Kind.SCORES, scores, expect=ScoreEvent, start=StartAt.all())
    first = await submit_at(bus, swarm, synth, 0.8, seed=0)
    await scores.wait_for(1)
    post = ForumPost(swarm=swarm, sender="agent", title=HOSTILE, body=f"body {HOSTILE}", tags=["idea"])
    await bus.publish(post)

    async with Dashboard(bus, swarm) as dash, Chromium() as browser:
        await browser.navigate(dash.url)
        await browser.wait_for("document.body.dataset.connection === 'live'")
        # What was stored before the page opened: the score, its chart point, the board, the forum.
        await browser.wait_for(f"{row(first.id)} !== null")
        assert await browser.evaluate(f"{row(first.id)}.dataset.task") == synth.task
        await browser.wait_for(
            f"document.querySelector('#leaderboard tr[data-task=\"{synth.task}\"]') !== null"
        )
        await browser.wait_for("document.querySelectorAll('#charts circle[data-score-id]').length === 1")
        await browser.wait_for(
            f"document.querySelector('#presence-body tr[data-name=\"{WORKER}\"]') !== null"
        )
        title = await browser.wait_for(
            f"document.querySelector('#forum [data-post-id=\"{post.id}\"] .post-title')?.textContent"
        )
        assert title == HOSTILE  # shown as text, never parsed as HTML
        assert await browser.evaluate("document.querySelector('#forum img') === null && !window.__pwned")

        # Mark this document (a reload would lose the mark), and note when the new row enters the DOM.
        second = await submit_at(bus, swarm, synth, 0.85, seed=1, publish=False)
        await browser.evaluate(
            "window.__sameDocument = true; window.__rowAt = null;"
            f"new MutationObserver(() => {{ if (window.__rowAt === null && {row(second.id)})"
            " window.__rowAt = Date.now(); }).observe(document.body, {childList: true, subtree: true}); true"
        )
        await bus.publish(second)
        seen_at = await browser.wait_for("window.__rowAt", timeout_s=5)
        score = next(s for s in await scores.wait_for(2) if s.lineage.result_id == second.id)
        latency = seen_at / 1000 - score.ts
        print(f"score to DOM: {latency * 1000:.1f} ms")
        assert latency < 1.0
        assert await browser.evaluate("window.__sameDocument === true")  # no reload
        assert await browser.evaluate("window.aarDashboard.stats.snapshots") == 1
        pgr = await browser.evaluate(f"{row(second.id)}.querySelector('.pgr').textContent")
        assert pgr == f"{score.pgr:.3f}"
        await browser.wait_for("document.querySelectorAll('#charts circle[data-score-id]').length === 2")
        assert browser.exceptions == []
        assert [text for level, text in browser.console if level == "error"] == []
        assert [text for level, text in browser.log if level == "error"] == []  # no failed load, no CSP block
