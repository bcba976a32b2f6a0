"""The training loop of iterative interactive-segmentation training (RITM / SimpleClick / MST
recipe, SPEC §5, §7): epochs, validation, checkpoints, logging and resume around the step of
:mod:`isegm.engine.train_step`.

What a week of GPU time needs on top of the reference trainer: exact resume (model, optimizer,
scaler, epoch and position inside the epoch; every random draw is derived from
``(seed, epoch, step, rank)``, so no RNG state has to be stored), atomic checkpoints
(``last.pth`` every epoch and every ``save_last_every_steps``, ``NNN.pth`` every
``checkpoint_interval`` epochs, ``best.pth`` on validation IoU or NoC@90), a clean stop on
Ctrl-C or a time limit, and TensorBoard scalars and image dumps.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import logging
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from isegm.model.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    load_state_dict_strict,
    save_checkpoint,
)
from isegm.utils import distributed as dist_utils

from .sampler import ResumableSampler
from .stopping import StopRequest, TrainingInterrupted, ignore_sigint
from .train_checkpoint import model_weights, read_quietly, state_dict_of
from .train_config import LossConfig, TrainConfig
from .train_step import NonFiniteLossError, TrainStep

__all__ = [
    "TrainingInterrupted",
    "TrainConfig",
    "LossConfig",
    "Trainer",
    "ResumableSampler",
    "NonFiniteLossError",
    "model_weights",
]

logger = logging.getLogger(__name__)

# kill -9 this process after that many steps: lets the tests interrupt a run at an exact point
_KILL_AFTER_STEPS = int(os.environ.get("ISEGM_KILL_AFTER_STEPS", "0") or 0)
# the same with SIGINT (Ctrl-C)
_INTERRUPT_AFTER_STEPS = int(os.environ.get("ISEGM_INTERRUPT_AFTER_STEPS", "0") or 0)


class Trainer(TrainStep):
    """Runs training for an :class:`~isegm.model.is_model.ISModel`: the loop around
    :class:`~isegm.engine.train_step.TrainStep`.

    Args:
        model: the model (moved to ``device``; wrapped in DDP when ``world_size > 1``).
        train_cfg, loss_cfg: see :class:`TrainConfig`, :class:`LossConfig`.
        trainset, valset: :class:`~isegm.data.base.ISDataset` instances (valset optional).
        exp_dir: experiment folder (``checkpoints/``, ``vis/``, ``tb/``).
        device: compute device of this process.
        resume: a checkpoint written by this trainer to continue from.
    """

    def __init__(
        self,
        model: nn.Module,
        train_cfg: TrainConfig,
        loss_cfg: LossConfig,
        trainset,
        valset,
        exp_dir: Path,
        device: torch.device,
        resume: Path | None = None,
    ) -> None:
        self.exp_dir = Path(exp_dir)
        super().__init__(model, train_cfg, loss_cfg, device)
        self.trainset, self.valset = trainset, valset
        self.sampler = ResumableSampler(
            len(trainset),
            self.local_batch,
            self.world,
            self.rank,
            shuffle=True,
            seed=train_cfg.seed,
        )
        if self.sampler.batches_per_epoch() == 0:
            raise ValueError(
                f"the training set has {len(trainset)} items, fewer than one global "
                f"batch of {train_cfg.batch_size}"
            )
        self.loader = self._loader(trainset, self.sampler)
        self.best_metric = -math.inf
        self.writer = None
        self._stop: StopRequest | None = None
        # the time limit counts from run(), which resets these
        self._started, self._first_step = time.monotonic(), self.global_step
        if resume is not None:
            self._load_state(resume)

    # ------------------------------------------------------------------ setup
    def _loader(self, dataset, sampler) -> torch.utils.data.DataLoader:
        workers = self.cfg.workers
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=self.local_batch,
            sampler=sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            persistent_workers=workers > 0,
            prefetch_factor=4 if workers > 0 else None,
            worker_init_fn=ignore_sigint if workers > 0 else None,
        )

    def _load_state(self, path: Path) -> None:
        """Restores a checkpoint written by :meth:`save` (read without running code from it).

        Raises:
            CheckpointError: one line: unreadable file, weights-only or foreign checkpoint,
                or a training state that does not fit this run.
        """
        state = read_quietly(path)
        if state.get("format") != CHECKPOINT_FORMAT or "optimizer" not in state:
            raise CheckpointError(
                f"{path}: not a training checkpoint of this trainer (no optimizer state: a "
                f"weights-only or foreign file); to start a new run from its weights use "
                f"--weights {path}"
            )
        load_state_dict_strict(self.model, state_dict_of(state, "model", path), str(path))
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            if state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            self.epoch, self.step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])
            self.global_step = int(state["global_step"])
            self.best_metric = float(state.get("best_metric", -math.inf))
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
            text = " ".join(str(e).split())[:200] or type(e).__name__
            raise CheckpointError(
                f"{path}: its training state does not fit this run ({text})"
            ) from None
        if self.step_in_epoch >= self.sampler.batches_per_epoch():
            self.epoch, self.step_in_epoch = self.epoch + 1, 0
        logger.info("resumed from %s at epoch %d, step %d", path, self.epoch, self.step_in_epoch)

    def _state(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "best_metric": self.best_metric,
            "train_cfg": _plain(dataclasses.asdict(self.cfg)),
            "loss_cfg": _plain(dataclasses.asdict(self.loss_cfg)),
        }

    def save(self, name: str) -> None:
        if self.rank == 0:
            save_checkpoint(
                self.exp_dir / "checkpoints" / f"{name}.pth", self.model, **self._state()
            )

    def _set_lr(self, epoch: int) -> float:
        shifted = epoch + self.cfg.lr_epoch_offset
        factor = self.cfg.lr_gamma ** bisect.bisect_right(sorted(self.cfg.milestones), shifted)
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * factor
        return self.cfg.lr * factor

    # ------------------------------------------------------------------ loops
    def run(self) -> None:
        """Trains until ``cfg.epochs``.

        Raises:
            TrainingInterrupted: Ctrl-C or the time limit; ``last.pth`` was saved at the step
                boundary where the run stopped, so ``--resume-exp`` continues exactly.
        """
        from torch.utils.tensorboard import SummaryWriter

        self._started, self._first_step = time.monotonic(), self.global_step
        if self.rank == 0:
            self.writer = SummaryWriter(str(self.exp_dir / "tb"), purge_step=self.global_step)
        self._stop = StopRequest()
        try:
            with self._stop:
                while self.epoch < self.cfg.epochs:
                    self.train_epoch()
                    if self._stop_requested():
                        self._interrupted()
                    improved = False
                    every = self.cfg.validate_every
                    if self.valset is not None and every and (self.epoch + 1) % every == 0:
                        metric = self.validate()
                        improved = metric > self.best_metric
                        self.best_metric = max(metric, self.best_metric)
                    self._finish_epoch_checkpoint(best=improved)
                    self.epoch += 1
                    self.step_in_epoch = 0
                    self.save("last")  # start of the next epoch
                    if self.epoch < self.cfg.epochs and self._stop_requested():
                        self._interrupted()
            self._write_checksums()
        finally:
            if self.writer is not None:
                self.writer.close()

    def _out_of_time(self) -> bool:
        """Past ``time_limit_s``, once this run has made at least one step (so every chunk of a
        run trained in chunks moves forward, even with a limit shorter than a step)."""
        limit = self.cfg.time_limit_s
        return (limit is not None and self.global_step > self._first_step
                and time.monotonic() - self._started >= limit)

    def _stop_requested(self) -> bool:
        """Whether any process got Ctrl-C or ran out of time (all processes stop at the same
        step)."""
        asked = (self._stop is not None and self._stop.requested) or self._out_of_time()
        if self.world == 1:
            return asked
        keep_going = torch.tensor(0.0 if asked else 1.0, device=self.device)
        return dist_utils.all_reduce_min(keep_going).item() < 1

    def _interrupted(self) -> None:
        self.save("last")
        ctrl_c = self._stop is not None and self._stop.requested
        raise TrainingInterrupted(self.epoch, self.step_in_epoch, time_limit=not ctrl_c)

    def _write_checksums(self) -> None:
        """Per-rank sums of the weights, written by rank 0: after DDP they must be identical."""
        with torch.no_grad():
            total = float(sum(p.detach().double().sum() for p in self.model.parameters()))
        sums = [total]
        if self.world > 1:
            sums = [None] * self.world
            torch.distributed.all_gather_object(sums, total)
        if self.rank == 0:
            (self.exp_dir / "weights_checksum.json").write_text(json.dumps({"per_rank": sums}))

    def _finish_epoch_checkpoint(self, best: bool) -> None:
        self.step_in_epoch = self.sampler.batches_per_epoch()
        if best:
            self.save("best")
        if self.cfg.checkpoint_interval and (self.epoch + 1) % self.cfg.checkpoint_interval == 0:
            self.save(f"{self.epoch + 1:03d}")

    def train_epoch(self) -> None:
        from tqdm import tqdm

        lr = self._set_lr(self.epoch)
        self.model.train()
        self.trainset.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch, self.step_in_epoch)
        total = self.sampler.batches_per_epoch()
        if self.cfg.max_steps_per_epoch:
            total = min(total, self.cfg.max_steps_per_epoch)
        bar = tqdm(
            total=total,
            initial=self.step_in_epoch,
            desc=f"epoch {self.epoch}",
            disable=self.rank != 0,
            dynamic_ncols=True,
            leave=False,
        )
        t0, seen, ema_iou = time.perf_counter(), 0, None
        tb_acc: dict[str, list[float]] = {}
        for batch in self.loader:
            if self.step_in_epoch >= total:
                break
            scalars = self.train_step(batch)
            self.step_in_epoch += 1
            self.global_step += 1
            seen += self.cfg.batch_size
            if scalars is not None and self.rank == 0:
                vals = {k: float(v) for k, v in scalars.items()}
                ema_iou = vals["iou"] if ema_iou is None else 0.9 * ema_iou + 0.1 * vals["iou"]
                for k, v in vals.items():
                    tb_acc.setdefault(k, []).append(v)
                if self.global_step % self.cfg.tb_dump_period == 0:
                    for k, v in tb_acc.items():
                        self.writer.add_scalar(
                            f"TrainLosses/{k}" if k != "iou" else "TrainMetrics/IoU",
                            float(np.mean(v)),
                            self.global_step,
                        )
                    self.writer.add_scalar("TrainStates/learning_rate", lr, self.global_step)
                    tb_acc.clear()
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(
                    loss=f"{vals['overall']:.4f}", iou=f"{ema_iou:.3f}", sps=f"{rate:.1f}"
                )
            bar.update(1)
            if (
                self.cfg.save_last_every_steps
                and self.step_in_epoch % self.cfg.save_last_every_steps == 0
                and self.step_in_epoch < total
            ):
                self.save("last")
            if (
                _KILL_AFTER_STEPS and self.global_step == _KILL_AFTER_STEPS
            ):  # fault injection (tests)
                os.kill(os.getpid(), signal.SIGKILL)
            if _INTERRUPT_AFTER_STEPS and self.global_step == _INTERRUPT_AFTER_STEPS:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C at an exact point (tests)
            if self.step_in_epoch < total and self._stop_requested():
                break
        bar.close()
        if self.rank == 0 and self.step_in_epoch >= total:
            logger.info(
                "epoch %d done: %d steps, %.1f samples/s",
                self.epoch,
                self.step_in_epoch,
                seen / max(time.perf_counter() - t0, 1e-9),
            )

    def _validate_noc(self) -> float:
        """NoC@85/90 of the evaluation protocol (:class:`~isegm.engine.validation.NocValidation`);
        the best checkpoint is the lowest NoC@90 (then NoC@85)."""
        scores = self.valset.run(self.model, self.device)
        self.model.train()
        if not scores["objects"]:
            return -math.inf
        if self.rank == 0:
            logger.info("validation after epoch %d: NoC@85 %.2f, NoC@90 %.2f (%d objects)",
                        self.epoch, scores["noc85"], scores["noc90"], scores["objects"])
            self.writer.add_scalar("ValMetrics/NoC@85", scores["noc85"], self.global_step)
            self.writer.add_scalar("ValMetrics/NoC@90", scores["noc90"], self.global_step)
        return -(scores["noc90"] + 1e-3 * scores["noc85"])

    @torch.no_grad()
    def validate(self) -> float:
        """Mean IoU of the final prediction on the validation set (same click simulation,
        seeds independent of the epoch so that epochs are comparable); with a
        :class:`~isegm.engine.validation.NocValidation`, minus its NoC@90. Higher is better."""
        from .validation import NocValidation

        if isinstance(self.valset, NocValidation):
            return self._validate_noc()
        self.model.eval()
        self.valset.set_epoch(0)
        sampler = ResumableSampler(
            len(self.valset), self.local_batch, self.world, self.rank, shuffle=False
        )
        loader = self._loader(self.valset, sampler) if len(sampler) else []
        ious, losses = [], []
        for step, batch in enumerate(loader):
            rng = np.random.default_rng([self.cfg.seed, 0x7A1, step])
            loss, scalars, _ = self.batch_forward(batch, rng, train=False)
            ious.append(scalars["iou"])
            losses.append(loss.detach().float())
        self.model.train()
        if not ious:
            return -math.inf
        iou = float(dist_utils.all_reduce_mean(torch.stack(ious).mean()))
        loss = float(dist_utils.all_reduce_mean(torch.stack(losses).mean()))
        if self.rank == 0:
            logger.info("validation after epoch %d: IoU %.4f, loss %.4f", self.epoch, iou, loss)
            self.writer.add_scalar("ValMetrics/IoU", iou, self.global_step)
            self.writer.add_scalar("ValLosses/overall", loss, self.global_step)
        return iou

    def _dump_images(self, vis: dict) -> None:
        from isegm.utils.vis import draw_training_sample

        canvas = draw_training_sample(
            vis["images"], vis["points"], vis["gt"], torch.sigmoid(vis["logits"].float())
        )
        out = self.exp_dir / "vis" / "train"
        out.mkdir(parents=True, exist_ok=True)
        import cv2

        cv2.imwrite(
            str(out / f"{self.global_step:06d}_instance_segmentation.jpg"),
            cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, 85],
        )
        if self.writer is not None:
            self.writer.add_image("TrainSamples", canvas, self.global_step, dataformats="HWC")


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v
