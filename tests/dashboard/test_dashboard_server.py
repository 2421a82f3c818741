"""The dashboard server against a real nats-server and a real Scorer: what /events pushes, and when."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest
import pytest_asyncio

from bus import Bus, Delivery, Kind, StartAt, streams
from dashboard import Dashboard, FeedConfig
from schemas import ExperimentProgress, ExperimentRequest, ForumPost, Leaderboard, Lineage, ScoreEvent
from scorer import Scorer
from scorer.synthetic import SyntheticTask, submit
from tests.dashboard.support import EventStream, Matcher, row, score_for, submit_at
from tests.helpers import Collector, eventually
from tests.scorer.conftest import WORKER

FAST = FeedConfig(queue_every_s=0.2, catch_up_s=10.0)


@pytest_asyncio.fixture(loop_scope="session")
async def dashboard(bus: Bus, swarm: str, scorer: Scorer) -> AsyncIterator[Dashboard]:
    async with Dashboard(bus, swarm, feed=FAST) as dash:
        yield dash


async def test_a_page_gets_what_is_stored_then_a_new_score_within_a_second(
    bus: Bus, swarm: str, synth: SyntheticTask, scorer: Scorer
) -> None:
    scores: Collector[ScoreEvent] = Collector()
    await bus.subscribe(swarm, Kind.SCORES, scores, expect=ScoreEvent, start=StartAt.all())
    first = await submit_at(bus, swarm, synth, 0.8, seed=0)
    await scores.wait_for(1)
    boards = await bus.kv(streams.leaderboard_bucket(swarm))

    async def board_written() -> bool:
        board = await boards.get(synth.task)
        return isinstance(board, Leaderboard) and board.results == 1

    await eventually(board_written)

    async with Dashboard(bus, swarm, feed=FAST) as dash, EventStream(dash.url) as stream:
        snap = await stream.next()
        assert snap.name == "snapshot" and snap.data["swarm"] == swarm
        [point] = snap.data["scores"][synth.task]
        assert point["result_id"] == first.id and point["status"] == "accepted" and point["worker"] == WORKER
        assert [t["task"] for t in snap.data["tasks"]] == [synth.task]
        [board] = snap.data["leaderboards"]
        assert board["task"] == synth.task and board["standings"][0]["dev_pgr"] == point["pgr"]
        assert WORKER in {p["name"] for p in snap.data["presence"]}

        second = await submit_at(bus, swarm, synth, 0.85, seed=1)
        got = await stream.all_of(
            score=timed(score_for(second.id)),
            board=row("leaderboard", lambda b: bool(b["results"] == 2)),
        )
        at, new = got["score"]
        latency = at - new["ts"]  # from the scorer making the score to this client reading it
        print(f"score to event stream: {latency * 1000:.1f} ms")
        assert new["status"] == "accepted" and new["seed"] == 1 and latency < 1.0


def timed(match: Matcher) -> Matcher:
    """``match``, with the time its event was read."""
    return lambda event: (event.at, found) if (found := match(event)) else None


async def test_the_queue_shows_each_request_and_the_progress_of_the_worker_on_it(
    bus: Bus, swarm: str, synth: SyntheticTask, dashboard: Dashboard
) -> None:
    async with EventStream(dashboard.url) as stream:
        assert (await stream.next()).name == "snapshot"
        request = ExperimentRequest(swarm=swarm, sender="agent", task=synth.task, method="synthetic", seed=4)
        mine = row("request", lambda r: bool(r["id"] == request.id))
        await bus.publish(request)
        got = await stream.all_of(request=mine, queue=row("queue", lambda q: bool(q["pending"] == 1)))
        assert got["request"]["status"] == "queued" and got["request"]["seed"] == 4

        release = asyncio.Event()

        async def work(msg: ExperimentRequest, delivery: Delivery) -> None:
            progress = ExperimentProgress(
                swarm=swarm,
                sender=WORKER,
                worker=WORKER,
                stage="train",
                step=3,
                total_steps=10,
                lineage=Lineage(request_id=msg.id),
            )
            await bus.publish(progress)
            await release.wait()

        queue = await bus.work(swarm, work, expect=ExperimentRequest)
        try:
            got = await stream.all_of(
                worker=row("worker", lambda w: bool(w["request_id"] == request.id)),
                request=row("request", lambda r: bool(r["id"] == request.id and r["status"] == "running")),
                queue=row("queue", lambda q: bool(q["in_flight"] == 1 and q["pending"] == 0)),
            )
            worker = got["worker"]
            assert worker["worker"] == WORKER and worker["step"] == 3 and worker["total_steps"] == 10
            assert worker["status"] == "running" and worker["task"] == synth.task
            release.set()
            result = await submit_at(bus, swarm, synth, 0.8, seed=4, publish=False)
            await bus.publish(msgspec.structs.replace(result, lineage=Lineage(request_id=request.id)))
            got = await stream.all_of(
                request=row("request", lambda r: bool(r["id"] == request.id and r["status"] == "scored")),
                worker=row("worker", lambda w: bool(w["request_id"] == request.id and w["status"] == "idle")),
                queue=row("queue", lambda q: bool(q["in_flight"] == 0)),
            )
            assert got["request"]["pgr"] is not None and got["request"]["worker"] == WORKER
        finally:
            release.set()
            await queue.close()


async def test_every_open_page_gets_forum_threads_and_integrity_flags(
    bus: Bus, swarm: str, synth: SyntheticTask, dashboard: Dashboard
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        pages = [await stack.enter_async_context(EventStream(dashboard.url)) for _ in range(5)]
        for page in pages:
            assert (await page.next()).name == "snapshot"
        root = ForumPost(swarm=swarm, sender="agent", title="<img src=x onerror=alert(1)>", body="idea")
        reply = ForumPost(swarm=swarm, sender="agent2", body="re", thread_id=root.thread, reply_to=root.id)
        await bus.publish(root)
        await bus.publish(reply)
        n = len(synth.ids("dev"))
        gamed = await submit(bus, swarm, synth, dev=[0] * n, final=[0] * n, agent="gamer")
        for page in pages:
            got = await page.all_of(
                post=row("post", lambda p: bool(p["id"] == reply.id)),
                flag=row("flag", lambda f: bool(f["detector"] == "constant")),
                score=score_for(gamed.id),
            )
            assert got["post"]["thread"] == root.id and got["post"]["reply_to"] == root.id
            assert got["flag"]["suspect"] == "gamer" and "constant" in got["score"]["flags"]
        titles = {p["id"]: p["title"] for p in dashboard.state.snapshot()["posts"]}
        assert titles[root.id] == "<img src=x onerror=alert(1)>"  # kept as text; the page never parses it


async def test_the_page_its_files_and_the_snapshot_are_served(dashboard: Dashboard) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(dashboard.url) as page:
            assert page.status == 200 and "text/html" in page.headers["Content-Type"]
            html = await page.text()
        assert 'id="leaderboard"' in html and "static/app.js" in html
        scripts = [(name, "javascript") for name in ("app.js", "render.js", "chart.js", "dom.js")]
        for name, kind in [*scripts, ("style.css", "text/css")]:
            async with http.get(dashboard.url + "static/" + name) as res:
                assert res.status == 200 and kind in res.headers["Content-Type"]
        async with http.get(dashboard.url + "api/snapshot") as res:
            snap = await res.json()
        assert snap["swarm"] == dashboard.swarm and "leaderboards" in snap and "queue" in snap


async def test_closing_ends_open_streams_promptly(bus: Bus, swarm: str, scorer: Scorer) -> None:
    dash = Dashboard(bus, swarm, feed=FAST)
    await dash.start()
    async with EventStream(dash.url) as stream:
        assert (await stream.next()).name == "snapshot"
        started = time.monotonic()
        await dash.close()
        assert time.monotonic() - started < 3.0
        try:
            await stream.next(timeout=5)
        except (EOFError, aiohttp.ClientPayloadError):
            pass
        else:
            raise AssertionError("the stream went on after close")
    await dash.close()  # twice is fine


async def test_a_quiet_stream_gets_keep_alives_and_a_taken_port_is_refused(
    bus: Bus, swarm: str, scorer: Scorer
) -> None:
    async with Dashboard(bus, swarm, feed=FAST, heartbeat_s=0.05) as dash, EventStream(dash.url) as stream:
        assert (await stream.next()).name == "snapshot"
        with pytest.raises(TimeoutError):
            await stream.next(timeout=0.5)  # nothing happens in this swarm...
        assert stream.pings >= 3  # ...but the connection hears from the server
        port = int(dash.url.rsplit(":", 1)[1].rstrip("/"))
        with pytest.raises(OSError):  # noqa: PT011 (the errno differs by platform)
            await Dashboard(bus, swarm, feed=FAST, port=port).start()
