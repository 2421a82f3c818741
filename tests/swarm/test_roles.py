"""Finding roles (entry points, specs, files), their config files, and the shipped summariser."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bus import Bus, Kind, StartAt, streams
from schemas import ForumPost, Leaderboard, Standing
from swarm import ConfigError, UnknownRoleError, describe, load_config, load_role, registered
from swarm.roles.summariser import Summariser, SummariserConfig
from tests.helpers import Collector, eventually
from tests.swarm.helpers import forum

PLUGIN = '''
from swarm import Agent, AgentConfig


class Plugged(Agent[AgentConfig]):
    """A role another package ships."""

    role = "plugged"
'''


def test_shipped_roles_and_entry_points_are_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"plugin_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(PLUGIN)
    dist = tmp_path / "aar_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: aar-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[aar.roles]\nplugged = {module}:Plugged\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert registered()["summariser"] == "swarm.roles.summariser:Summariser"
    assert load_role("summariser") is Summariser
    assert load_role("plugged").role == "plugged"
    docs = {r.name: r.doc for r in describe()}
    assert docs["plugged"] == "A role another package ships."
    assert docs["summariser"].startswith("Posts a periodic digest")


def test_a_role_loads_from_a_file_path(tmp_path: Path) -> None:
    path = tmp_path / "my_role.py"
    path.write_text(PLUGIN)
    assert load_role(f"{path}:Plugged").role == "plugged"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "unknown role 'nope'; known roles: .*summariser"),
        ("no_such_module_x:Role", "cannot load role 'no_such_module_x:Role': No module named"),
        ("swarm.agent:default_name", "is not an Agent subclass"),
        ("swarm.agent:Agent", "must set `role`"),
    ],
)
def test_unknown_or_broken_roles_say_what_is_known(spec: str, message: str) -> None:
    with pytest.raises(UnknownRoleError, match=message):
        load_role(spec)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c.toml", 'period_s = "soon"', r"Expected `float`, got `str` - at `\$.period_s`"),
        ("c.toml", "perod_s = 3", r"unknown setting perod_s \(known: period_s, .*max_concurrency"),
        ("c.toml", "period_s = ", "not valid TOML"),
        ("c.json", '{"max_concurrency": 0}', r"Expected `int` >= 1 - at `\$.max_concurrency`"),
        ("c.json", "[1]", "the top level must be a table"),
    ],
)
def test_bad_config_files_fail_clearly(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"bad config {path}: {message}"):
        load_config(SummariserConfig, path)


def test_config_files_fill_the_role_and_agent_settings(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("period_s = 2.5\nmax_concurrency = 2\n")
    (tmp_path / "c.json").write_text('{"max_threads": 3, "max_usd": 1.5}')
    toml = load_config(SummariserConfig, tmp_path / "c.toml")
    json = load_config(SummariserConfig, tmp_path / "c.json")
    assert (toml.period_s, toml.max_concurrency, toml.max_threads) == (2.5, 2, 10)
    assert (json.max_threads, json.max_usd) == (3, 1.5)
    assert load_config(SummariserConfig, None) == SummariserConfig()
    with pytest.raises(ConfigError, match="No such file"):
        load_config(SummariserConfig, tmp_path / "missing.toml")


async def test_the_summariser_digests_threads_and_the_leaderboard(bus: Bus, swarm: str) -> None:
    digests: Collector[ForumPost] = Collector()
    await bus.subscribe(swarm, Kind.FORUM, digests, expect=ForumPost, key="*", start=StartAt.new())
    root = forum(swarm, "ensembles?", title="Do ensembles help?")
    board = Leaderboard(
        swarm=swarm,
        sender="scorer",
        task="tiny",
        standings=[
            Standing(config_key="c1", method="naive", dev_pgr=0.2, seeds=[0]),
            Standing(
                config_key="c2",
                method="ens",
                dev_pgr=0.61,
                final_pgr=0.58,
                final_ci=(0.5, 0.66),
                seeds=[0, 1, 2],
                agents=["bob"],
            ),
        ],
        best="c2",
        results=4,
    )
    await (await bus.kv(streams.leaderboard_bucket(swarm))).put("tiny", board)
    config = SummariserConfig(period_s=3600)  # digests are asked for below, not waited for
    async with Summariser(bus, swarm, name="sum", config=config) as summariser:
        await bus.publish(root)
        await bus.publish(
            ForumPost(swarm=swarm, sender="bob", body="yes", thread_id=root.id, reply_to=root.id)
        )
        await bus.publish(forum(swarm, "hello", sender="carol", title="Intro"))
        await digests.wait_for(3)
        await eventually(lambda: summariser.handled == 3)
        digest = await summariser.digest()
        assert digest is not None
        assert digest.title == "Digest: 3 new posts, 1 leaderboard change" and digest.tags == ["digest"]
        assert "Forum: 3 new posts in 2 threads" in digest.body
        assert '- "Do ensembles help?": 2 new (2 in all), by alice, bob' in digest.body
        assert (
            "- tiny: best ens [c2], dev PGR 0.610, final PGR 0.580 [0.500, 0.660], 3 seeds, by bob"
            in digest.body
        )
        assert set(digest.evidence) == {m.id for m in digests.messages[:3]}
        assert await summariser.digest() is None  # nothing new: nothing posted
    [*_, stored] = await digests.wait_for(4)
    assert stored.id == digest.id and stored.sender == "sum"
