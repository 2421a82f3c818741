"""The README's "write your own role" example, taken verbatim from the README, joins a live swarm."""

from __future__ import annotations

import re
from pathlib import Path

from bus import Bus, Kind, StartAt, subjects
from schemas import ExperimentRequest, ForumPost, ScoreEvent
from swarm.registry import load_role
from tests.helpers import Collector, eventually

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_role_source() -> str:
    section = README.read_text().split("## Write your own role", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's role example is missing"
    return match.group(1)


async def test_the_readme_example_role_reacts_to_a_score(bus: Bus, swarm: str, tmp_path: Path) -> None:
    path = tmp_path / "my_roles.py"
    path.write_text(readme_role_source())
    role = load_role(f"{path}:Cheerleader")
    posts: Collector[ForumPost] = Collector()
    await bus.subscribe(swarm, Kind.FORUM, posts, expect=ForumPost, start=StartAt.all())
    requests: list[ExperimentRequest] = []

    async def on_request(msg: ExperimentRequest) -> None:  # live: the work queue is not ours to take
        requests.append(msg)

    await bus.subscribe_core(
        subjects.kind_filter(swarm, Kind.REQUESTS),
        on_request,
        expect=ExperimentRequest,
        swarm=swarm,
        name="t",
    )
    async with role(bus, swarm, name="cheer-1"):
        common = {"swarm": swarm, "sender": "scorer", "task": "rt", "method": "soft", "status": "accepted"}
        await bus.publish(ScoreEvent(**common, pgr=0.2, seed=0))  # type: ignore[arg-type]
        await bus.publish(ScoreEvent(**common, pgr=0.7, seed=4, params={"temperature": 0.5}))  # type: ignore[arg-type]
        [post] = await posts.wait_for(1)
        await eventually(lambda: len(requests) == 1)
        [request] = requests
    assert request.seed == 5 and request.params == {"temperature": 0.5} and request.sender == "cheer-1"
    assert "0.700" in post.body and request.id in post.body and "cheer" in post.tags
