"""Every W2S method on every default task, by direct call, over several seeds (splits and heads).

Run: ``python -m bench.w2s_direct [--seeds 5] [--tasks rt code roget]``. For each seed the task is
re-split (split seed = seed) and the weak model retrained, so the spread covers data and training.
The best method is chosen on dev PGR and reported on final PGR, which selection never sees. The
last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from gpu_worker.pipeline import prepare_features, run_experiment
from gpu_worker.prompting import PromptSpec
from gpu_worker.scoring import baselines, score
from gpu_worker.splits import SplitSizes, make_split
from gpu_worker.tasks import load_task, task_names, task_spec

# (label, method, params): each method at its defaults plus a few variants worth knowing about.
CONFIGS: list[tuple[str, str, dict[str, Any]]] = [
    ("naive", "naive", {}),
    ("soft", "soft", {}),
    ("soft_t0.5", "soft", {"temperature": 0.5}),
    ("conf_filter", "conf_filter", {}),
    ("conf_filter_0.3", "conf_filter", {"keep": 0.3}),
    ("aux_conf", "aux_conf", {}),
    ("product", "product", {}),
    ("window", "window", {}),
    ("bootstrap", "bootstrap", {}),
    ("s2s", "s2s", {}),
    ("s2s_filter", "s2s", {"mode": "filter"}),
    ("knn", "knn", {}),
    ("knn_filter", "knn", {"mode": "filter"}),
    ("knn_soft", "knn", {"mode": "soft"}),
    ("gce", "gce", {}),
    ("sce", "sce", {}),
    ("ensemble", "ensemble", {}),
    ("elicit", "elicit", {}),
    ("elicit_pca", "elicit", {"mode": "pca"}),
    ("transition", "transition", {}),
    ("propagate", "propagate", {}),
    ("propagate_all", "propagate", {"k": 25, "keep": 1.0, "include_eval": True}),
    ("propagate_k100", "propagate", {"k": 100, "keep": 0.5}),
]
# Prompting the strong LM (SmolLM2): with --prompt only, since the first pass over a task's texts
# is slow on a CPU (about 0.1 s a text; cached afterwards).
PROMPT_CONFIGS: list[tuple[str, str, dict[str, Any]]] = [
    ("zeroshot", "zeroshot", {}),
    ("zeroshot_prior", "zeroshot", {"calibration": "prior"}),
    ("prompt_mix", "prompt_consistency", {}),
    ("prompt_agree", "prompt_consistency", {"mode": "agree"}),
]


@dataclass
class TaskResult:
    weak: list[float] = field(default_factory=list)
    ceiling: list[float] = field(default_factory=list)
    pgr_dev: dict[str, list[float]] = field(default_factory=dict)
    pgr_final: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)


def _ms(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def run_task(
    task: str,
    seeds: int,
    eval_size: int | None,
    configs: list[tuple[str, str, dict[str, Any]]],
    prompt: PromptSpec | None = None,
) -> TaskResult:
    spec = task_spec(task)
    sizes = SplitSizes(dev=eval_size or spec.eval_size, final=eval_size or spec.eval_size)
    data = load_task(task)
    res = TaskResult()
    for seed in range(seeds):
        view, labels = make_split(data, seed, sizes)
        feats = prepare_features(view, spec.weak_model, spec.strong_model, progress=True, prompt=prompt)
        base = baselines(view, labels, feats, seed=seed)
        res.weak.append(base.weak["final"])
        res.ceiling.append(base.ceiling["final"])
        for label, method, params in configs:
            t0 = time.perf_counter()
            acc = score(run_experiment(view, feats, method, params, seed), labels)
            res.seconds.append(time.perf_counter() - t0)
            res.pgr_dev.setdefault(label, []).append(base.pgr(acc["dev"], "dev"))
            res.pgr_final.setdefault(label, []).append(base.pgr(acc["final"], "final"))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", nargs="*", default=task_names(default_only=True))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--eval-size", type=int, default=None, help="dev and final size (default: per task)")
    ap.add_argument("--only", nargs="*", default=None, help="config labels to run (default: all)")
    # One thread is faster for these small matrices on shared cores (OpenMP spin-waits otherwise);
    # run two processes to use two cores.
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prompt", action="store_true", help="also run the prompting methods (slow first pass)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    catalogue = CONFIGS + (PROMPT_CONFIGS if args.prompt else [])
    configs = [c for c in catalogue if args.only is None or c[0] in args.only or c[0] == "naive"]
    print(
        f"# {platform.platform()} {platform.processor()} torch {torch.__version__} threads "
        f"{torch.get_num_threads()} OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    results: dict[str, TaskResult] = {}
    summary: dict[str, Any] = {}
    for task in args.tasks:
        prompt = PromptSpec() if args.prompt else None
        r = results[task] = run_task(task, args.seeds, args.eval_size, configs, prompt)
        spec = task_spec(task)
        print(
            f"\n== {task} (weak {spec.weak_model}, strong {spec.strong_model}; {args.seeds} seeds; "
            f"mean ± std over seeds)",
            flush=True,
        )
        print(
            f"  weak acc {_ms(r.weak)[0]:.3f} ± {_ms(r.weak)[1]:.3f}   ceiling acc {_ms(r.ceiling)[0]:.3f} "
            f"± {_ms(r.ceiling)[1]:.3f}   gap {_ms(r.ceiling)[0] - _ms(r.weak)[0]:.3f}   (final split)"
        )
        for label in r.pgr_dev:
            d, f = _ms(r.pgr_dev[label]), _ms(r.pgr_final[label])
            print(f"  {label:16s} PGR dev {d[0]:+.3f} ± {d[1]:.3f}   final {f[0]:+.3f} ± {f[1]:.3f}")
        best = max(r.pgr_dev, key=lambda k: _ms(r.pgr_dev[k])[0])
        summary[task] = {
            "weak_model": spec.weak_model,
            "strong_model": spec.strong_model,
            "weak": round(_ms(r.weak)[0], 4),
            "ceiling": round(_ms(r.ceiling)[0], 4),
            "naive_pgr": round(_ms(r.pgr_final["naive"])[0], 4),
            "naive_pgr_std": round(_ms(r.pgr_final["naive"])[1], 4),
            "best_method": best,
            "best_pgr": round(_ms(r.pgr_final[best])[0], 4),
            "best_pgr_std": round(_ms(r.pgr_final[best])[1], 4),
            "seconds_per_experiment": round(statistics.fmean(r.seconds), 3),
        }
        print(
            f"  -> naive {summary[task]['naive_pgr']:+.3f}, best (chosen on dev) {best} "
            f"{summary[task]['best_pgr']:+.3f} ± {summary[task]['best_pgr_std']:.3f} on final; "
            f"{summary[task]['seconds_per_experiment']:.2f} s/experiment",
            flush=True,
        )
    labels = list(next(iter(results.values())).pgr_dev)
    overall = max(labels, key=lambda k: statistics.fmean(_ms(r.pgr_dev[k])[0] for r in results.values()))
    out = {
        "naive_pgr": round(statistics.fmean(_ms(r.pgr_final["naive"])[0] for r in results.values()), 4),
        "best_pgr": round(statistics.fmean(_ms(r.pgr_final[overall])[0] for r in results.values()), 4),
        "best_method": overall,
        "seeds": args.seeds,
        "tasks": summary,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
