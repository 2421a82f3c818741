"""``aar up``'s operator step: make sure each task is prepared and has baselines, once.

A task whose view is in the tasks bucket and whose baselines were recorded for that same view is
left alone, so a second ``aar up`` starts at once. The first run builds the feature cache (the
weak model's probabilities and the strong model's embeddings, in the user cache dir), with progress
bars; the workers then find those features in the same cache.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from bus import Bus, streams
from cli.errors import CliError
from schemas import Baseline, TaskInfo

log = logging.getLogger("aar.up")

DEFAULT_TASKS = ("code",)
BASELINE_SEEDS = 3
_FILE_SUFFIXES = (".jsonl", ".csv", ".parquet")


async def ready_tasks(bus: Bus, swarm: str) -> dict[str, TaskInfo]:
    """Tasks of the swarm that are prepared and have baselines for their current view."""
    infos = await (await bus.kv(streams.tasks_bucket(swarm))).items()
    baselines = await (await bus.kv(streams.baselines_bucket(swarm))).items()
    ready: dict[str, TaskInfo] = {}
    for task, info in infos.items():
        base = baselines.get(task)
        if isinstance(info, TaskInfo) and isinstance(base, Baseline) and base.view_digest == info.view_digest:
            ready[task] = info
    return ready


def task_name(source: str) -> str:
    """The name a task source gets on the bus: a registered name, or a data file's stem.

    Raises:
        CliError: neither a registered task nor an existing .jsonl/.csv/.parquet file.
    """
    from gpu_worker.tasks import task_names

    if source in task_names():
        return source
    path = Path(source)
    if path.suffix.lower() in _FILE_SUFFIXES and path.is_file():
        return path.stem
    raise CliError(
        f"unknown task {source!r}: not a registered task ({', '.join(task_names())}) "
        "nor an existing .jsonl, .csv or .parquet file"
    )


async def ensure_tasks(bus: Bus, swarm: str, sources: list[str], *, say: bool = True) -> list[str]:
    """Prepare and baseline each task not ready yet; return the task names in the given order.

    A data file's task is ready when a task of its name is: after changing the file, prepare it
    again with ``aar tasks prepare`` and ``aar baselines``.

    Raises:
        CliError: a task is unknown or fails to prepare.
    """
    from gpu_worker import catalog  # torch and the models load here, not for every command
    from gpu_worker.errors import TaskFailedError

    names = {source: task_name(source) for source in sources}
    ready = await ready_tasks(bus, swarm)
    for source, task in names.items():
        if task in ready:
            log.info("task ready", extra={"task": task, "view": ready[task].view_digest[:12]})
            continue
        began = time.monotonic()
        if say:
            print(f"aar: preparing task {task!r} (first run: builds the feature cache)", flush=True)
        try:
            await catalog.prepare(bus, swarm, source, sender="aar-up")
            base = await catalog.record_baselines(
                bus, swarm, task, seeds=BASELINE_SEEDS, sender="aar-up", progress=say
            )
        except TaskFailedError as e:
            raise CliError(e.reason if e.reason.startswith("task ") else f"task {source}: {e.reason}") from e
        if say:
            print(
                f"aar: task {task!r} ready in {time.monotonic() - began:.0f}s: weak "
                f"{base.weak_acc['dev']:.3f}, strong ceiling {base.ceiling_acc['dev']:.3f}, naive PGR "
                f"{base.naive_pgr['dev']:.2f} (dev, {len(base.seeds)} seeds)",
                flush=True,
            )
    return list(names.values())
