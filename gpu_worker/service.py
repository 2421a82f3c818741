"""The worker service: pulls experiment requests off the bus, runs them, publishes results.

Plain torch/numpy work runs in threads (``asyncio.to_thread``) so the loop keeps heartbeating the
job (``in_progress``), streaming progress and answering the server. Workers never hold labels: a task
reaches a worker as its label-free view, from the object store.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import msgspec

from bus import Bus, Delivery, HandlerError, PublishError, WorkQueue, streams
from bus.presence import Heartbeat
from bus.streams import DEFAULT_RETRY
from gpu_worker.errors import BadParamsError, TaskFailedError
from gpu_worker.methods.base import get_method
from gpu_worker.models.finetune import FinetuneConfig
from gpu_worker.pipeline import (
    Predictions,
    TaskFeatures,
    method_input,
    predictions_from_probs,
    prepare_features,
    run_experiment,
    run_finetune_experiment,
)
from gpu_worker.prompting import PromptSpec
from gpu_worker.sandbox import SandboxLimits, run_custom
from schemas import (
    ArtifactRef,
    ExperimentProgress,
    ExperimentRequest,
    ExperimentResult,
    Lineage,
    TaskInfo,
)
from schemas.artifacts import EVAL_SPLITS, PredictionSet, TaskView

log = logging.getLogger("aar.worker")

PROGRESS_EVERY_S = 1.0
# The request method that fine-tunes the strong model (CUDA when present) instead of a head.
FINETUNE = "finetune"


def resolve_device(device: str) -> str:
    """``auto`` becomes ``cuda`` when a CUDA device is visible, else ``cpu``."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    if device == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise ValueError("--device cuda asked for, but torch sees no CUDA device")
    return "cpu"


@dataclass(slots=True)
class _Prepared:
    info: TaskInfo
    view: TaskView
    feats: TaskFeatures


class Worker:
    """A GPU (or CPU) worker of one swarm; ``async with Worker(bus, swarm, name=...)`` runs it."""

    def __init__(
        self,
        bus: Bus,
        swarm: str,
        *,
        name: str,
        device: str = "auto",
        concurrency: int = 1,
        heartbeat_s: float = 10.0,
        sandbox: SandboxLimits | None = None,
    ) -> None:
        self.bus, self.swarm, self.name = bus, swarm, name
        self.device = resolve_device(device)
        if self.device == "cpu":
            import torch

            # Head-only work is small matrices: one thread per job is ~5x faster than OpenMP
            # spin-waiting over shared cores (bench.w2s_direct); run N jobs to use N cores.
            torch.set_num_threads(1)
        self._concurrency, self._heartbeat_s = concurrency, heartbeat_s
        self._sandbox = sandbox or SandboxLimits()
        # By (view digest, weak model, strong model, prompt model or "").
        self._prepared: dict[tuple[str, str, str, str], _Prepared] = {}
        self._locks: dict[tuple[str, str, str, str], asyncio.Lock] = {}
        self._busy = 0
        self.done = 0
        self.failed = 0
        self._heartbeat = Heartbeat(bus, swarm, name=name, role="worker", describe=self._describe)
        self._queue: WorkQueue | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Announce presence, then start pulling requests."""
        await self._heartbeat.start()
        self._queue = await self.bus.work(
            self.swarm,
            self._handle,
            expect=ExperimentRequest,
            concurrency=self._concurrency,
            heartbeat_s=self._heartbeat_s,
        )
        log.info("worker started", extra={"worker": self.name, "device": self.device, "swarm": self.swarm})

    async def close(self, grace_s: float = 30.0) -> None:
        """Finish the jobs in hand (up to ``grace_s``), then leave. Safe to call twice."""
        queue, self._queue = self._queue, None
        if queue is not None:
            await queue.close(grace_s)
        await self._heartbeat.close()
        log.info("worker stopped", extra={"worker": self.name, "done": self.done, "failed": self.failed})

    # -- one request ------------------------------------------------------------------------

    async def _handle(self, req: ExperimentRequest, delivery: Delivery) -> None:
        started = time.time()
        self._busy += 1
        try:
            result = await self._run(req, started)
        except TaskFailedError as e:
            if e.retryable and delivery.deliveries < DEFAULT_RETRY.max_deliver:
                raise HandlerError(e.reason, retryable=True) from e
            result = self._failed(req, e.reason, started)
        except (asyncio.CancelledError, HandlerError):
            raise
        except Exception as e:
            log.exception("experiment crashed", extra={"request": req.id})
            if delivery.deliveries < DEFAULT_RETRY.max_deliver:
                raise  # transient until proven otherwise: redelivered with backoff
            result = self._failed(req, f"{type(e).__name__}: {e}", started)
        finally:
            self._busy -= 1
        # Its id derives from the request's, so a job finished twice (a worker died before its ack)
        # is stored once and scored once.
        await self.bus.publish(result)
        if result.status == "ok":
            self.done += 1
        else:
            self.failed += 1

    async def _run(self, req: ExperimentRequest, started: float) -> ExperimentResult:
        timings: dict[str, float] = {"queued": max(0.0, started - req.ts)}
        t0 = time.perf_counter()
        await self._progress(req, "preparing", 0, 3)
        prepared = await self._prepare(req)
        timings["prepare"] = time.perf_counter() - t0
        await self._progress(req, "running", 1, 3)
        t1 = time.perf_counter()
        if req.code is not None:
            preds = await self._run_custom(req, prepared, req.code)
        elif req.method == FINETUNE:
            preds = await self._finetune(req, prepared)
        else:
            preds = await asyncio.to_thread(
                run_experiment, prepared.view, prepared.feats, req.method, req.params, req.seed
            )
        timings["method"] = time.perf_counter() - t1
        await self._progress(req, "uploading", 2, 3)
        t2 = time.perf_counter()
        placed = await self._upload(prepared, preds)
        timings["upload"] = time.perf_counter() - t2
        timings["total"] = time.perf_counter() - t0
        return self._result(req, status="ok", **placed, timings=timings, data_hash=prepared.info.view_digest)

    def _failed(self, req: ExperimentRequest, reason: str, started: float) -> ExperimentResult:
        log.warning("experiment failed", extra={"request": req.id, "reason": reason[:300]})
        return self._result(
            req, status="failed", error=reason[:60_000] or "failed", timings={"total": time.time() - started}
        )

    def _result(self, req: ExperimentRequest, **outcome: Any) -> ExperimentResult:
        """The result answering ``req``; its id derives from the request's, so a rerun is stored once."""
        return ExperimentResult(
            id=_result_id(req),
            swarm=self.swarm,
            sender=self.name,
            worker=self.name,
            task=req.task,
            method=req.method,
            params=dict(req.params),
            seed=req.seed,
            code_hash=req.code.sha256 if req.code else None,
            agent=req.sender,
            lineage=Lineage(hypothesis_id=req.lineage.hypothesis_id, request_id=req.id),
            **outcome,
        )

    async def _prepare(self, req: ExperimentRequest) -> _Prepared:
        info = await self._task_info(req.task)
        weak = req.weak_model or info.weak_model
        strong = req.strong_model or info.strong_model
        # Prompt scores cost an LM pass over every text: only for the methods that read them.
        prompting = req.code is None and req.method != FINETUNE and get_method(req.method).uses_prompt
        prompt = PromptSpec(model=info.prompt_model) if prompting else None
        key = (info.view_digest, weak, strong, info.prompt_model if prompting else "")
        async with self._locks.setdefault(key, asyncio.Lock()):
            if (hit := self._prepared.get(key)) is not None:
                return hit
            artifacts = await self.bus.artifacts(self.swarm)
            view = TaskView.from_bytes(await artifacts.get(info.view))
            feats = await asyncio.to_thread(prepare_features, view, weak, strong, prompt=prompt)
            prepared = self._prepared[key] = _Prepared(info, view, feats)
            return prepared

    async def _task_info(self, task: str) -> TaskInfo:
        tasks = await self.bus.kv(streams.tasks_bucket(self.swarm))
        info = await tasks.get(task)
        if not isinstance(info, TaskInfo):
            known = ", ".join(sorted((await tasks.items()).keys())) or "none (run `aar tasks prepare`)"
            raise TaskFailedError(f"unknown task {task!r}; prepared tasks: {known}", retryable=False)
        return info

    async def _run_custom(
        self, req: ExperimentRequest, prepared: _Prepared, code: ArtifactRef
    ) -> Predictions:
        artifacts = await self.bus.artifacts(self.swarm)
        source = (await artifacts.get(code)).decode("utf-8", errors="replace")
        inp = method_input(prepared.feats, prepared.view.n_classes)
        arrays = {
            "x_pool": inp.x_pool,
            "weak_pool": inp.weak_pool,
            "x_eval": inp.x_eval,
            "weak_eval": inp.weak_eval,
        }
        run = await run_custom(source, arrays, prepared.view.n_classes, req.seed, self._sandbox)
        return predictions_from_probs(
            prepared.view, run.probs, req.method, req.seed, {"sandbox": run.seconds}
        )

    async def _finetune(self, req: ExperimentRequest, prepared: _Prepared) -> Predictions:
        cfg = finetune_config(req.params, self.device)
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        started = time.monotonic()
        last_sent = 0.0
        sent: list[concurrent.futures.Future[None]] = []

        def on_step(step: int, total: int, loss: float) -> None:
            # Called from the training thread: hand the progress to the loop, at most once a second.
            nonlocal last_sent
            now = time.monotonic()
            if now - last_sent < PROGRESS_EVERY_S and step < total:
                return
            last_sent = now
            eta = (now - started) / step * (total - step) if step else None
            report = self._progress(req, "finetune", step, total, loss=loss, eta_s=eta)
            sent.append(asyncio.run_coroutine_threadsafe(report, loop))

        try:
            return await asyncio.to_thread(
                run_finetune_experiment,
                prepared.view,
                prepared.feats,
                cfg,
                req.seed,
                stop=stop,
                progress=on_step,
            )
        finally:
            stop.set()  # a cancelled job stops training at the next step instead of running on
            # Progress lands before the result does.
            await asyncio.gather(*(asyncio.wrap_future(f) for f in sent), return_exceptions=True)

    async def _upload(self, prepared: _Prepared, preds: Predictions) -> dict[str, Any]:
        """The result's prediction fields: packed sets in the view's order, inline or stored."""
        sets = {}
        for split in EVAL_SPLITS:
            by_id: Mapping[str, int] = getattr(preds, split)
            ids = prepared.view.split(split).ids
            sets[split] = PredictionSet.in_view_order(
                task=preds.task,
                split=split,
                view_digest=prepared.info.view_digest,
                labels=[by_id[i] for i in ids],
            )
        return await (await self.bus.artifacts(self.swarm)).place_predictions(sets)

    # -- what the swarm sees of this worker -----------------------------------------------

    async def _progress(
        self,
        req: ExperimentRequest,
        stage: str,
        step: int,
        total: int,
        *,
        loss: float | None = None,
        eta_s: float | None = None,
    ) -> None:
        progress = ExperimentProgress(
            swarm=self.swarm,
            sender=self.name,
            worker=self.name,
            stage=stage,
            step=step,
            total_steps=total,
            loss=loss,
            eta_s=eta_s,
            lineage=Lineage(hypothesis_id=req.lineage.hypothesis_id, request_id=req.id),
        )
        try:
            await self.bus.publish(progress)
        except PublishError as e:  # progress is advisory: never fail a job over it
            log.warning("progress not published", extra={"request": req.id, "error": str(e)})

    def _describe(self) -> dict[str, object]:
        cached = sorted({f"{w}+{s}" for _, w, s, _ in self._prepared})
        return {
            "capabilities": [self.device, *cached][:32],
            "state": "busy" if self._busy else "ready",
            "info": {
                "device": self.device,
                "concurrency": str(self._concurrency),
                "done": str(self.done),
                "failed": str(self.failed),
                "busy": str(self._busy),
            },
        }


def finetune_config(params: Mapping[str, Any], device: str) -> FinetuneConfig:
    """The fine-tuning settings a request asks for, on this worker's device.

    Raises:
        BadParamsError: an unknown setting or a value of the wrong type.
    """
    known = {f.name for f in dataclasses.fields(FinetuneConfig)} - {"device"}
    if unknown := sorted(set(params) - known):
        raise BadParamsError(f"finetune: unknown params {unknown}; known: {sorted(known)}")
    try:
        return msgspec.convert({**params, "device": device}, FinetuneConfig)
    except msgspec.ValidationError as e:
        raise BadParamsError(f"finetune: {e}") from e


def _result_id(req: ExperimentRequest) -> str:
    return "r" + hashlib.sha256(req.id.encode()).hexdigest()[:31]
