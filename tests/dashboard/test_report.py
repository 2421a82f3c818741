"""``aar report`` against a real nats-server and a real Scorer fed synthetic results."""

from __future__ import annotations

import asyncio
import math
import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import msgspec
import numpy as np
import pytest
from scipy import stats  # type: ignore[import-untyped]

from bus import Bus, Kind, StartAt, replay, streams
from bus.auth import Role
from bus.creds import new_seed, render_credentials
from bus.natsd import free_port
from dashboard.report import INDEX_HTML, REPORT_MD, ReportError, write_report
from dashboard.report.cells import config_anchor, result_anchor
from schemas import ExperimentResult, Flag, ForumPost, Hypothesis, Lineage, Presence, UsageReport, Verdict
from scorer import HoldoutConfig, Scorer, ScorerConfig
from scorer.synthetic import SyntheticTask, publish_task, submit
from tests.helpers import Collector

WORKER = "synthetic-worker"
SCORER_CONFIG = ScorerConfig(concurrency=8, leaderboard_every_s=0.05, holdout=HoldoutConfig(budget=1000))
ROOT = str(Path(__file__).resolve().parents[2])
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EVIL = "<script>alert('pwned')</script>"
# (method, accuracy on both splits, seeds, agent): two verified configs, one with too few seeds.
CONFIGS = [("vote", 0.86, 3, "alice"), ("soft", 0.8, 3, "bob"), ("naive", 0.76, 2, "alice")]


@dataclass
class Cell:
    text: str = ""
    hrefs: list[str] = field(default_factory=list)
    linked: str = ""  # the text inside links, one space before each


class Page(HTMLParser):
    """Ids, links and the cells of every table with an id, from an HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.tables: dict[str, list[list[Cell]]] = {}
        self._table: str | None = None
        self._cell: Cell | None = None
        self._in_link = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(a["id"] or "")
        if tag == "table":
            self._table = a.get("id")
            if self._table:
                self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag == "td" and self._table:
            self._cell = Cell()
            self.tables[self._table][-1].append(self._cell)
        elif tag == "a" and a.get("href"):
            self.hrefs.append(a["href"] or "")
            self._in_link = True
            if self._cell is not None:
                self._cell.hrefs.append(a["href"] or "")
                self._cell.linked += " "  # keep the texts of two links apart

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "td":
            self._cell = None
        elif tag == "a":
            self._in_link = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.text += data
            if self._in_link:
                self._cell.linked += data

    def rows(self, table: str) -> list[list[Cell]]:
        return [r for r in self.tables[table] if r]  # the header row has no td


def t_interval(values: list[float]) -> tuple[float, float, float]:
    n = len(values)
    mean = float(np.mean(values))
    half = float(stats.t.ppf(0.975, n - 1)) * float(np.std(values, ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d+", text)]


async def _register_worker(bus: Bus, swarm: str) -> None:
    kv = await bus.kv(streams.presence_bucket(swarm))
    await kv.put(WORKER, Presence(swarm=swarm, sender=WORKER, role="worker", name=WORKER, host="t", pid=1))


async def _feed(bus: Bus, swarm: str, synth: SyntheticTask) -> dict[str, ExperimentResult]:
    """Results for every config and seed, one constant predictor, usage, a forum post and a hypothesis."""
    rng = np.random.default_rng(7)
    hypothesis = Hypothesis(swarm=swarm, sender="alice", title=f"voting helps {EVIL}", task=synth.task)
    await bus.publish(hypothesis)
    sent: dict[str, ExperimentResult] = {}
    for method, acc, seeds, agent in CONFIGS:
        for seed in range(seeds):
            dev, final = synth.with_accuracy("dev", acc, rng), synth.with_accuracy("final", acc, rng)
            result = await submit(
                bus, swarm, synth, dev=dev, final=final, method=method, seed=seed, agent=agent, publish=False
            )
            if method == "vote" and seed == 0:  # one result with its whole lineage
                lineage = Lineage(hypothesis_id=hypothesis.id, request_id=result.lineage.request_id)
                result = msgspec.structs.replace(result, lineage=lineage)
            await bus.publish(result)
            sent[result.id] = result
    n = len(synth.ids("dev"))
    constant = await submit(bus, swarm, synth, dev=[1] * n, final=[1] * n, method="constant", agent="mallory")
    sent[constant.id] = constant
    for usd, tokens in ((0.25, 1200), (0.5, 3400)):
        await bus.publish(
            UsageReport(swarm=swarm, sender="alice", agent="alice", input_tokens=tokens, usd=usd)
        )
    await bus.publish(ForumPost(swarm=swarm, sender="mallory", title=EVIL, body=f"look {EVIL} & <b>bold</b>"))
    return sent


async def test_report_shows_verified_numbers_flags_costs_and_links_every_number_to_its_lineage(
    bus: Bus, swarm: str, tmp_path: Path
) -> None:
    synth = await publish_task(bus, swarm, n_eval=400)
    await _register_worker(bus, swarm)
    verdicts: Collector[Verdict] = Collector()
    flags: Collector[Flag] = Collector()
    await bus.subscribe(swarm, Kind.VERDICTS, verdicts, expect=Verdict, start=StartAt.all())
    await bus.subscribe(swarm, Kind.FLAGS, flags, expect=Flag, start=StartAt.all())
    forum: Collector[ForumPost] = Collector()
    await bus.subscribe(swarm, Kind.FORUM, forum, expect=ForumPost, start=StartAt.all())
    async with Scorer(bus, swarm, SCORER_CONFIG):
        sent = await _feed(bus, swarm, synth)
        await verdicts.wait_for(len(sent))
        await flags.wait_for(1)
        await forum.wait_for(2)  # mallory's post and the scorer's new-best announcement
        index = await write_report(bus, swarm, tmp_path / "report")

    out = index.parent
    assert index.name == INDEX_HTML and (out / REPORT_MD).is_file()
    for png in ("pgr-over-time-synth.png", "methods-synth.png"):
        data = (out / png).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, png
    page_text = index.read_text()
    page = Page(page_text)

    # The verified table: the scorer's verdicts, recomputed independently here.
    by_config: dict[str, list[Verdict]] = defaultdict(list)
    for v in await replay(bus, swarm, Kind.VERDICTS, Verdict):
        if v.leaderboard:
            by_config[v.config_key].append(v)
    rows = page.rows("verified-synth")
    assert [r[2].text for r in rows] == ["vote", "soft"]  # by final PGR; naive has two seeds only
    for row in rows:
        key = row[1].text
        runs = sorted(by_config[key], key=lambda v: v.seed)
        mean, lo, hi = t_interval([v.pgr["final"] for v in runs])
        # Shown as the leaderboard stores them: rounded to 4 decimals.
        assert numbers(row[5].text) == pytest.approx([mean], abs=6e-5)
        assert numbers(row[6].text) == pytest.approx([lo, hi], abs=6e-5)
        assert row[4].hrefs == ["#" + result_anchor(v.lineage.result_id or "") for v in runs]
        assert row[5].hrefs == ["#" + config_anchor("synth", key)]
        assert {a for v in runs if (a := v.agent)} == set(row[8].text.split(", "))
    methods = page.rows("methods-synth")
    assert [r[1].text for r in methods] == ["vote", "soft", "naive"]
    assert methods[2][3].text == "2" and methods[2][7].text == "no"

    # Every number in the result tables is a link, and every link lands on an anchor of the page.
    for table in ("verified-synth", "methods-synth", "best"):
        for row in page.rows(table):
            for cell in row:
                if figures := re.findall(r"\d+(?:\.\d+)?", cell.text):
                    assert re.findall(r"\d+(?:\.\d+)?", cell.linked) == figures, (table, cell)
    local = [h[1:] for h in page.hrefs if h.startswith("#")]
    assert local and set(local) <= set(page.ids) and len(page.ids) == len(set(page.ids))
    constant = next(r for r in sent.values() if r.method == "constant")
    assert result_anchor(constant.id) in page.ids and result_anchor(next(iter(sent))) in page.ids

    # Flags: listed with the detector, the suspect and a link to the flagged result.
    tally = page.rows("flag-tally")
    assert [(r[0].text, r[2].text, r[4].text, r[5].text) for r in tally] == [
        ("constant", "1", "1", "mallory")
    ]
    [flag_row] = page.rows("flag-list")
    assert flag_row[1].text == "constant" and flag_row[3].text == "mallory"
    assert flag_row[5].hrefs == ["#" + result_anchor(constant.id)]

    [hypothesis_row] = page.rows("hypotheses")
    assert hypothesis_row[5].hrefs == [rows[0][4].hrefs[0]]  # vote seed 0 tested it

    # The scorer's new-best post cites the best configuration's results: linked to their lineage.
    [announced] = [r for r in page.rows("forum-latest") if "new-best" in r[3].text]
    assert set(announced[5].hrefs) == set(rows[0][4].hrefs)

    # Cost: alice's usage over her active hours; bob and mallory made no LLM calls.
    cost = {r[0].text: r for r in page.rows("cost-table")}
    assert float(cost["alice"][5].text) == pytest.approx(0.75) and cost["alice"][6].text == "4600"
    hours = float(cost["alice"][4].text)
    assert float(cost["alice"][10].text) == pytest.approx(0.75 / hours, rel=1e-2)
    assert float(cost["bob"][5].text) == 0 and float(cost["mallory"][10].text) == 0
    assert WORKER not in cost and "scorer" not in cost

    # Agent-written text is escaped, never markup.
    assert "<script" not in page_text.lower() and "<b>bold" not in page_text
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page_text

    # The Markdown: same content, every relative link lands on an anchor, no raw HTML from agents.
    md = (out / REPORT_MD).read_text()
    targets = set(re.findall(r"\]\(#([A-Za-z0-9_-]+)\)", md))
    anchors = set(re.findall(r'<a id="([A-Za-z0-9_-]+)"></a>', md))
    assert targets and targets <= anchors
    assert "<script" not in md.lower() and "&lt;script&gt;" in md
    assert "](pgr-over-time-synth.png)" in md and "](methods-synth.png)" in md
    assert f"[{rows[0][5].text}](#{config_anchor('synth', rows[0][1].text)})" in md


async def test_an_empty_swarm_still_gets_a_report_that_says_so(bus: Bus, swarm: str, tmp_path: Path) -> None:
    index = await write_report(bus, swarm, tmp_path)
    text = index.read_text()
    assert "Nothing yet" in text and "No flags" in text
    assert sorted(os.listdir(tmp_path)) == sorted([REPORT_MD, INDEX_HTML])


async def test_a_missing_swarm_is_a_report_error(bus: Bus, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no streams"):
        await write_report(bus, "no-such-swarm", tmp_path)


async def _aar(*argv: str, cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *argv,
        cwd=cwd,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("AAR_")}, "PYTHONPATH": ROOT},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_aar_report_cli_writes_the_report_and_prints_where(
    bus: Bus, swarm: str, nats_url: str, tmp_path: Path
) -> None:
    await bus.publish(Hypothesis(swarm=swarm, sender="alice", title="a first idea"))
    rc, out, err = await _aar("report", "--nats", nats_url, "--swarm", swarm, "--out", "r", cwd=tmp_path)
    assert rc == 0, err
    assert f"HTML:     {tmp_path / 'r' / INDEX_HTML}" in out and str(tmp_path / "r" / REPORT_MD) in out
    html_text = (tmp_path / "r" / INDEX_HTML).read_text()
    assert "alice" in html_text and "No task has been prepared or scored" in html_text

    # The failures, side by side: a swarm that does not exist, no server, a role without the verdicts.
    observer = tmp_path / "observer.creds"
    observer.write_text(render_credentials(Role.OBSERVER, new_seed()))
    missing, unreachable, refused = await asyncio.gather(
        _aar("report", "--nats", nats_url, "--swarm", "no-such-swarm", cwd=tmp_path),
        _aar("report", "--nats", f"nats://127.0.0.1:{free_port()}", cwd=tmp_path),
        _aar("report", "--nats", nats_url, "--swarm", swarm, "--creds", str(observer), cwd=tmp_path),
    )
    assert missing[0] == 1 and "swarm 'no-such-swarm' has no streams" in missing[2]
    assert unreachable[0] == 2 and unreachable[2].startswith("aar: error: cannot connect")
    assert refused[0] == 2 and "use the admin credentials" in refused[2]
    assert not (tmp_path / "aar-report-default").exists()
