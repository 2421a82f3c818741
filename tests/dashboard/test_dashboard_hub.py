"""The fan-out to event streams: a snapshot first, deltas in order, a resync for a page that lags."""

from __future__ import annotations

import json

from dashboard.hub import Hub, frame
from dashboard.state import Delta


def snapshotter(counter: list[int]) -> bytes:
    counter.append(1)
    return frame("snapshot", {"n": len(counter)})


def decoded(frames: list[bytes]) -> list[tuple[str, object]]:
    out = []
    for f in frames:
        head, data = f.decode().rstrip("\n").split("\n")
        out.append((head.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


async def test_a_page_gets_a_snapshot_then_each_message_as_one_event_in_order() -> None:
    hub, built = Hub(), list[int]()
    sub = hub.subscribe()
    hub.publish([Delta("score", {"id": "lost-in-snapshot"})])  # before the snapshot: included in it
    assert decoded(await sub.take(lambda: snapshotter(built), 1.0)) == [("snapshot", {"n": 1})]
    hub.publish([Delta("score", {"id": "s1"}), Delta("budget", {"target": "a"})])
    hub.publish([])  # nothing changed: no event
    hub.publish([Delta("post", {"id": "p1"})])
    assert decoded(await sub.take(lambda: snapshotter(built), 1.0)) == [
        ("delta", [{"t": "score", "d": {"id": "s1"}}, {"t": "budget", "d": {"target": "a"}}]),
        ("delta", [{"t": "post", "d": {"id": "p1"}}]),
    ]
    assert await sub.take(lambda: snapshotter(built), 0.05) == []  # quiet: time for a keep-alive
    assert hub.published == 3 and len(built) == 1  # the empty publish is no event


async def test_a_page_that_falls_behind_gets_a_fresh_snapshot_and_the_others_lose_nothing() -> None:
    hub, built = Hub(max_queued=3), list[int]()
    slow, fast = hub.subscribe(), hub.subscribe()
    for sub in (slow, fast):
        await sub.take(lambda: snapshotter(built), 1.0)
    got: list[tuple[str, object]] = []
    for i in range(8):
        hub.publish([Delta("score", {"id": f"s{i}"})])
        got += decoded(await fast.take(lambda: snapshotter(built), 1.0))
    assert [d[0]["d"]["id"] for _, d in got] == [f"s{i}" for i in range(8)]  # type: ignore[index]
    assert slow.resyncs == 1
    assert decoded(await slow.take(lambda: snapshotter(built), 1.0)) == [("snapshot", {"n": 3})]
    hub.publish([Delta("score", {"id": "after"})])
    assert decoded(await slow.take(lambda: snapshotter(built), 1.0)) == [
        ("delta", [{"t": "score", "d": {"id": "after"}}])
    ]


async def test_closing_the_hub_ends_every_stream_and_refuses_new_ones() -> None:
    hub = Hub()
    sub = hub.subscribe()
    hub.close()
    assert sub.closed and await sub.take(lambda: b"", 1.0) == [] and len(hub) == 0
    late = hub.subscribe()
    assert late.closed and len(hub) == 0
