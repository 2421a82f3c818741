"""``aar tasks prepare|list`` and ``aar baselines``: the operator's commands for tasks."""

from __future__ import annotations

import argparse
import json

from cli.errors import CliError
from cli.options import add_connection_flags, add_logging_flags, add_swarm_flag, bus_config, open_bus


def add_tasks_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tasks = sub.add_parser("tasks", help="prepare and list the swarm's tasks (operator)")
    tsub = tasks.add_subparsers(title="tasks commands", metavar="ACTION", required=True)
    prep = tsub.add_parser(
        "prepare",
        help="split tasks and publish label-free views (labels go to the label store)",
        description="Split each task deterministically into weak_train (gold labels for the weak "
        "supervisor), transfer pool, dev and final; publish the label-free view to the artifact store "
        "and the labels to the label store, which only the scorer and operator read.",
    )
    prep.add_argument(
        "sources",
        nargs="*",
        metavar="TASK",
        help="registered task names, hf:<dataset id> or JSONL/CSV/parquet paths "
        "(default: every default task)",
    )
    prep.add_argument("--split-seed", type=int, default=0)
    prep.add_argument("--weak-train", type=int, default=None, metavar="N")
    prep.add_argument("--dev", type=int, default=None, metavar="N")
    prep.add_argument("--final", type=int, default=None, metavar="N")
    prep.add_argument("--pool", type=int, default=None, metavar="N", help="cap on the transfer pool")
    prep.add_argument(
        "--min-pool",
        type=int,
        default=None,
        metavar="N",
        help="dev and final shrink so the pool keeps at least N examples (default 1000)",
    )
    prep.add_argument("--weak-model", default=None, help="default: the task's own pair, else tfidf")
    prep.add_argument("--strong-model", default=None, help="default: the task's own pair, else minilm")
    prep.add_argument("--text-column", default="text")
    prep.add_argument("--text-b-column", default=None)
    prep.add_argument("--label-column", default="label")
    prep.add_argument("--id-column", default=None)
    prep.set_defaults(command="tasks-prepare")
    listing = tsub.add_parser("list", help="the tasks prepared in a swarm")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(command="tasks-list")
    base = sub.add_parser(
        "baselines",
        help="record weak, strong-ceiling and naive accuracy per task (operator: reads labels)",
    )
    base.add_argument("--task", action="append", default=None, help="a prepared task (default: all)")
    base.add_argument("--seeds", type=int, default=5)
    base.add_argument("--json", action="store_true")
    base.set_defaults(command="baselines")
    for p in (prep, listing, base):
        add_swarm_flag(p)
        add_connection_flags(p)
        add_logging_flags(p)
        p.set_defaults(default_log_level="info")


async def run_tasks_prepare(args: argparse.Namespace) -> int:
    """Prepare each named task (or the defaults) and print one line per task."""
    from gpu_worker import catalog
    from gpu_worker.errors import TaskFailedError
    from gpu_worker.splits import SplitSizes
    from gpu_worker.tasks import Columns, task_names

    sizes: SplitSizes | None = None
    if any(v is not None for v in (args.weak_train, args.dev, args.final, args.pool, args.min_pool)):
        d = SplitSizes()
        sizes = SplitSizes(
            weak_train=args.weak_train or d.weak_train,
            dev=args.dev or d.dev,
            final=args.final or d.final,
            pool=args.pool,
            min_pool=args.min_pool or d.min_pool,
        )
    columns = Columns(
        text=args.text_column, label=args.label_column, text_b=args.text_b_column, id=args.id_column
    )
    async with open_bus(bus_config(args, name="aar-tasks", one_shot=True)) as bus:
        for source in args.sources or task_names(default_only=True):
            try:
                info = await catalog.prepare(
                    bus,
                    args.swarm,
                    source,
                    split_seed=args.split_seed,
                    sizes=sizes,
                    weak_model=args.weak_model,
                    strong_model=args.strong_model,
                    columns=columns,
                )
            except TaskFailedError as e:
                raise CliError(f"{source}: {e.reason}") from e
            sizes_text = " ".join(f"{k}={v}" for k, v in info.sizes.items())
            print(
                f"{info.task}: {sizes_text} view={info.view_digest[:12]} "
                f"({info.weak_model} -> {info.strong_model})",
                flush=True,
            )
    return 0


async def run_tasks_list(args: argparse.Namespace) -> int:
    """Print the prepared tasks."""
    from bus import streams
    from schemas import TaskInfo, to_builtins

    async with open_bus(bus_config(args, name="aar-tasks", one_shot=True)) as bus:
        items = await (await bus.kv(streams.tasks_bucket(args.swarm))).items()
    infos = [v for v in items.values() if isinstance(v, TaskInfo)]
    if args.json:
        print(json.dumps([to_builtins(i) for i in infos]))
        return 0
    for i in sorted(infos, key=lambda i: i.task):
        sizes = " ".join(f"{k}={v}" for k, v in i.sizes.items())
        pair = f"{i.weak_model} -> {i.strong_model}"
        print(f"{i.task:12} {i.task_kind:8} {sizes}  {pair}  view={i.view_digest[:12]}")
    if not infos:
        print(f"no tasks prepared in swarm {args.swarm!r}; run `aar tasks prepare`")
    return 0


async def run_baselines(args: argparse.Namespace) -> int:
    """Compute and record baselines; print weak, ceiling and naive PGR with their seed spread."""
    from bus import streams
    from gpu_worker import catalog
    from gpu_worker.errors import TaskFailedError
    from schemas import to_builtins

    async with open_bus(bus_config(args, name="aar-baselines", one_shot=True)) as bus:
        tasks = args.task or sorted((await (await bus.kv(streams.tasks_bucket(args.swarm))).items()).keys())
        if not tasks:
            raise CliError(f"no tasks prepared in swarm {args.swarm!r}; run `aar tasks prepare` first")
        for task in tasks:
            try:
                b = await catalog.record_baselines(bus, args.swarm, task, seeds=args.seeds)
            except LookupError as e:
                raise CliError(str(e)) from e
            except TaskFailedError as e:
                raise CliError(e.reason) from e
            if args.json:
                print(json.dumps(to_builtins(b)), flush=True)
                continue
            sp, weak, ceiling = b.spread, b.weak_acc["dev"], b.ceiling_acc["dev"]
            print(
                f"{task}: weak {weak:.3f}±{sp['weak_dev']:.3f}  ceiling {ceiling:.3f}"
                f"±{sp['ceiling_dev']:.3f}  gap {ceiling - weak:.3f}  naive PGR "
                f"{b.naive_pgr['dev']:.3f}±{sp['naive_pgr_dev']:.3f} (dev, {len(b.seeds)} seeds; "
                f"{b.weak_model} -> {b.strong_model})",
                flush=True,
            )
    return 0
