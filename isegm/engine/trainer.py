"""Iterative interactive-segmentation training (RITM / SimpleClick / MST recipe, SPEC §5, §7).

Per step: draw 0..``max_num_next_clicks`` extra clicks; simulate them one after the other with
the model in eval mode, each from the current errors (the same click rule as evaluation,
:func:`isegm.inference.clicker.next_clicks_batch`) and with the previous prediction fed back as
the previous-mask channel; then one forward pass with gradient.

What a week of GPU time needs on top of the reference trainer: exact resume (model, optimizer,
scaler, epoch and position inside the epoch; every random draw is derived from
``(seed, epoch, step, rank)``, so no RNG state has to be stored), atomic checkpoints
(``last.pth`` every epoch and every ``save_last_every_steps``, ``NNN.pth`` every
``checkpoint_interval`` epochs, ``best.pth`` on validation IoU or NoC@90), AMP (fp16 with a
scaler, or bf16), optional gradient clipping, and a guard that refuses a step whose loss or
gradients are not finite.
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
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from isegm.inference.clicker import next_clicks_batch
from isegm.model.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    load_state_dict_strict,
    read_checkpoint,
    save_checkpoint,
)
from isegm.model.losses import NormalizedFocalLossSigmoid, ScoreLoss, TokenContrastiveLoss
from isegm.utils import distributed as dist_utils

from .optim import OPTIMIZERS, WEIGHT_DECAY_RULES, build_optimizer

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


class NonFiniteLossError(RuntimeError):
    """Too many consecutive steps had a non-finite loss."""


class TrainingInterrupted(Exception):
    """Ctrl-C (SIGINT) or the time limit stopped the run at a step boundary after ``last.pth``
    was saved.

    Attributes:
        epoch, step: where the saved checkpoint resumes.
        time_limit: True when ``TrainConfig.time_limit_s`` ran out (a planned stop), False for
            Ctrl-C.
    """

    def __init__(self, epoch: int, step: int, time_limit: bool = False) -> None:
        super().__init__(f"stopped at epoch {epoch} step {step}")
        self.epoch, self.step, self.time_limit = epoch, step, time_limit


class _StopRequest:
    """SIGINT handler for the training loop: the first Ctrl-C asks to stop at the next step
    boundary (so ``last.pth`` resumes exactly); a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopRequest:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: Ctrl-C is not ours to handle
            self._previous = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _ignore_sigint(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the trainer (which stops at a step boundary)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping of a training run (defaults: the MST 448 recipe)."""

    epochs: int = 100
    batch_size: int = 32  # global, split over processes
    lr: float = 5e-6
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    layer_decay: float | None = None
    milestones: tuple[int, ...] = (60, 80)
    lr_gamma: float = 0.1
    max_num_next_clicks: int = 3
    click_reset_prob: float = 0.01
    amp: str = "off"  # off | fp16 | bf16
    grad_clip: float | None = None
    checkpoint_interval: int = 2
    save_last_every_steps: int = 0
    image_dump_interval: int = 300
    tb_dump_period: int = 25
    workers: int = 2
    seed: int = 0
    max_nonfinite_steps: int = 20
    max_steps_per_epoch: int | None = None
    validate_every: int = 1  # epochs between validations; 0: never (the original validates never)
    # --- the original's training where the project chose otherwise (README "Reproducing
    # published training"); the defaults are the project's choices
    # 'project': no decay on 1-D params, pos_embed, gammas; the click embedding at layer 0.
    # 'reference': the original's AdamW groups (isegm.engine.optim.reference_param_groups)
    weight_decay_rule: str = "project"
    # 'adamw', or 'adam' (weight decay as L2 on the gradient: the original SimpleClick scripts;
    # the same update as AdamW while the weight decay is 0)
    optimizer: str = "adamw"
    # weight decay under layer_decay (None: weight_decay); the original uses 0.02 there
    layer_decay_weight_decay: float | None = None
    # iterative training clicks: 'deepest' (the evaluation's click) or 'inner-half' (the
    # original's random pixel in the inner half of the larger error region; ignore = background)
    train_clicks: str = "deepest"
    # draw the number of extra clicks and the reset per process (the original) instead of one
    # draw per global step
    clicks_per_rank: bool = False
    # epochs the MultiStepLR schedule is ahead: the original's --start-epoch 1 pre-steps it,
    # so its first drop comes after milestone - 1 trained epochs
    lr_epoch_offset: int = 0
    # stop at the first step boundary after this many seconds of this run (None: no limit);
    # last.pth is saved there, so a long run can train in chunks of fixed wall time
    time_limit_s: float | None = None

    def __post_init__(self) -> None:
        if self.amp not in ("off", "fp16", "bf16"):
            raise ValueError(f"amp must be off, fp16 or bf16, got {self.amp!r}")
        if self.time_limit_s is not None and not self.time_limit_s >= 0:
            raise ValueError(f"time_limit_s must be >= 0, got {self.time_limit_s!r}")
        if self.weight_decay_rule not in WEIGHT_DECAY_RULES:
            raise ValueError(f"weight_decay_rule must be one of {WEIGHT_DECAY_RULES}, "
                             f"got {self.weight_decay_rule!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {tuple(OPTIMIZERS)}, "
                             f"got {self.optimizer!r}")
        if self.train_clicks not in ("deepest", "inner-half"):
            raise ValueError(f"train_clicks must be deepest or inner-half, "
                             f"got {self.train_clicks!r}")
        if self.validate_every < 0:
            raise ValueError(f"validate_every must be >= 0, got {self.validate_every!r}")


@dataclass
class LossConfig:
    """Loss weights; the token (contrastive) and score losses read ``outputs['tokens']``."""

    instance_weight: float = 1.0
    token_weight: float = 0.0
    score_weight: float = 0.0
    score_mode: str = "focal"
    # the original's +CL loss (TokenContrastiveLoss reference_quirks)
    token_reference_quirks: bool = False
    # ignore cells in the score loss: 'background' (the project) or 'reference' (the original:
    # counted in the mean, zero focal loss / MSE against -1)
    score_ignore: str = "background"
    focal_alpha: float = 0.5
    focal_gamma: float = 2.0
    patches: dict = field(default_factory=lambda: {"s": 8, "l": 32})


class ResumableSampler(torch.utils.data.Sampler):
    """Yields ``(epoch, index)`` for this process: a seeded permutation per epoch, split
    round-robin over ``world_size`` processes (so one global batch of a multi-process run is the
    same samples as the same-size batch of a single-process run), truncated to whole batches, and
    able to start at a batch inside the epoch (resume)."""

    def __init__(
        self,
        size: int,
        batch_size: int,
        world_size: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        self.size, self.batch_size = size, batch_size
        self.world_size, self.rank, self.shuffle, self.seed = world_size, rank, shuffle, seed
        self.epoch, self.start_batch = 0, 0

    def batches_per_epoch(self) -> int:
        return self.size // (self.batch_size * self.world_size)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        else:
            order = np.arange(self.size)
        n = self.batches_per_epoch() * self.batch_size * self.world_size
        mine = order[:n][self.rank :: self.world_size]
        for i in mine[self.start_batch * self.batch_size :]:
            yield self.epoch, int(i)

    def __len__(self) -> int:
        return (self.batches_per_epoch() - self.start_batch) * self.batch_size


# kill -9 this process after that many steps: lets the tests interrupt a run at an exact point
_KILL_AFTER_STEPS = int(os.environ.get("ISEGM_KILL_AFTER_STEPS", "0") or 0)
# the same with SIGINT (Ctrl-C)
_INTERRUPT_AFTER_STEPS = int(os.environ.get("ISEGM_INTERRUPT_AFTER_STEPS", "0") or 0)


def add_click_slots(points: torch.Tensor, extra: int) -> torch.Tensor:
    """Append ``extra`` empty rows to the positive and to the negative half of ``points
    [B, 2N, 3]`` so that the simulated clicks never overwrite the sampled ones."""
    if extra <= 0:
        return points
    B, n2, _ = points.shape
    pad = points.new_full((B, extra, 3), -1)
    return torch.cat([points[:, : n2 // 2], pad, points[:, n2 // 2 :], pad], dim=1)


def _state_dict_of(ckpt: dict, key: str, path: str | Path) -> dict:
    """``ckpt[key]`` checked to be a dict of tensors (a checkpoint is data from outside)."""
    sd = ckpt.get(key)
    if not isinstance(sd, Mapping):
        raise CheckpointError(
            f"{path}: its '{key}' entry is {type(sd).__name__}, not a dict of weights"
        )
    bad = [str(k) for k, v in sd.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(
            f"{path}: its '{key}' entry holds {len(bad)} non-tensor value(s), e.g. {bad[0]!r}"
        )
    return dict(sd)


def _read(path: str | Path) -> dict:
    """:func:`read_checkpoint` without torch's unpickler warnings about foreign pickles (the
    file is refused or read safely either way; its one-line error says what is wrong)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return read_checkpoint(path)


def model_weights(path: str | Path) -> dict:
    """The model weights of a checkpoint for ``--weights``: ``'model'`` (this project's files,
    MAE) or ``'state_dict'`` (the published files), read without running code from the file.

    Raises:
        CheckpointError: one line naming the file and what is wrong.
    """
    ckpt = _read(path)
    for key in ("model", "state_dict"):
        if key in ckpt:
            return _state_dict_of(ckpt, key, path)
    raise CheckpointError(
        f"{path}: no model weights in this file (no 'model' or 'state_dict' entry)"
    )


def _step_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


class Trainer:
    """Runs training for an :class:`~isegm.model.is_model.ISModel`.

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
        self.cfg, self.loss_cfg = train_cfg, loss_cfg
        self.device = torch.device(device)
        self.rank, self.world = dist_utils.get_rank(), dist_utils.get_world_size()
        self.exp_dir = Path(exp_dir)
        if train_cfg.batch_size % self.world:
            raise ValueError(
                f"--batch-size {train_cfg.batch_size} is not divisible by the "
                f"number of processes ({self.world})"
            )
        self.local_batch = train_cfg.batch_size // self.world
        self.model = model.to(self.device)
        self.net: nn.Module = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DDP(self.model, device_ids=ids, output_device=ids[0] if ids else None)
        wd = train_cfg.weight_decay
        if train_cfg.layer_decay and train_cfg.layer_decay_weight_decay is not None:
            wd = train_cfg.layer_decay_weight_decay
        self.optimizer = build_optimizer(
            self.model,
            train_cfg.lr,
            wd,
            train_cfg.betas,
            layer_decay=train_cfg.layer_decay,
            rule=train_cfg.weight_decay_rule,
            name=train_cfg.optimizer,
        )
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=train_cfg.amp == "fp16", growth_interval=20
        )
        self.instance_loss = NormalizedFocalLossSigmoid(loss_cfg.focal_alpha, loss_cfg.focal_gamma)
        self.token_loss = TokenContrastiveLoss(loss_cfg.patches, loss_cfg.token_reference_quirks)
        self.score_loss = ScoreLoss(
            loss_cfg.score_mode, patches=loss_cfg.patches, ignore=loss_cfg.score_ignore
        )
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
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.best_metric = -math.inf
        self.nonfinite_streak = 0
        self.writer = None
        self._stop: _StopRequest | None = None
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
            worker_init_fn=_ignore_sigint if workers > 0 else None,
        )

    def _load_state(self, path: Path) -> None:
        """Restores a checkpoint written by :meth:`save` (read without running code from it).

        Raises:
            CheckpointError: one line: unreadable file, weights-only or foreign checkpoint,
                or a training state that does not fit this run.
        """
        state = _read(path)
        if state.get("format") != CHECKPOINT_FORMAT or "optimizer" not in state:
            raise CheckpointError(
                f"{path}: not a training checkpoint of this trainer (no optimizer state: a "
                f"weights-only or foreign file); to start a new run from its weights use "
                f"--weights {path}"
            )
        load_state_dict_strict(self.model, _state_dict_of(state, "model", path), str(path))
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

    def _autocast(self):
        if self.cfg.amp == "off":
            return torch.autocast(self.device.type, enabled=False)
        dtype = torch.float16 if self.cfg.amp == "fp16" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    # ------------------------------------------------------------------ one step
    def batch_forward(
        self, batch: dict, rng: np.random.Generator, train: bool
    ) -> tuple[torch.Tensor, dict, dict]:
        images = batch["images"].to(self.device, non_blocking=True)
        gt = batch["instances"].to(self.device, non_blocking=True)
        points = batch["points"].to(self.device, non_blocking=True)
        points, prev = self.simulate_clicks(images, gt, points, rng)
        with torch.set_grad_enabled(train), self._autocast():
            out = self.net(torch.cat([images, prev], 1), points)
        losses = self.compute_losses(out, gt)
        with torch.no_grad():
            pred = out["instances"].detach().float() > 0
            inter = (pred & (gt > 0.5)).flatten(1).sum(1).float()
            union = (pred | (gt > 0.5)).flatten(1).sum(1).float()
            iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
        scalars = {k: v.detach() for k, v in losses.items()} | {"iou": iou.mean()}
        first = {
            "images": images[0],
            "points": points[0],
            "gt": gt[0],
            "logits": out["instances"][0].detach(),
        }  # for the image dumps
        return losses["overall"], scalars, first

    @torch.no_grad()
    def simulate_clicks(
        self, images: torch.Tensor, gt: torch.Tensor, points: torch.Tensor,
        rng: np.random.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The clicks and the previous mask the step trains on: 0..``max_num_next_clicks``
        extra clicks simulated with the model in eval mode (or, with ``click_reset_prob``, one
        click from scratch), each from the current errors. Returns ``(points, prev_mask)``."""
        points = add_click_slots(points, self.cfg.max_num_next_clicks)
        prev = torch.zeros_like(gt, dtype=images.dtype)
        num_iters = int(rng.integers(0, self.cfg.max_num_next_clicks + 1))
        reset = rng.random() < self.cfg.click_reset_prob
        if reset:  # start over from a single click in the object
            return next_clicks_batch(prev, gt, torch.full_like(points, -1), click_indx=1), prev
        was_training = self.model.training
        self.model.eval()
        for c in range(num_iters):
            with self._autocast():
                logits = self.model(torch.cat([images, prev], 1), points)["instances"]
            prev = torch.sigmoid(_loss_dtype(logits)).to(images.dtype)
            points = self._next_clicks(prev, gt, points, c + 1, rng)
        self.model.train(was_training)
        return points, prev

    def _next_clicks(self, prev, gt, points, click_indx: int, rng: np.random.Generator):
        """One simulated training click per sample (``TrainConfig.train_clicks``)."""
        if self.cfg.train_clicks == "inner-half":
            return next_clicks_batch(prev, gt, points, click_indx=click_indx,
                                     mode="inner-half", rng=rng, ignore_label=None)
        return next_clicks_batch(prev, gt, points, click_indx=click_indx)

    def compute_losses(self, out: dict, gt: torch.Tensor) -> dict[str, torch.Tensor]:
        lc = self.loss_cfg
        tokens = []
        if lc.token_weight > 0 or lc.score_weight > 0:  # the token losses run in >= float32
            tokens = [
                {k: _loss_dtype(v) if torch.is_floating_point(v) else v for k, v in rec.items()}
                for rec in out.get("tokens", [])
            ]
        losses = {"instance": self.instance_loss(_loss_dtype(out["instances"]), gt).mean()}
        if lc.token_weight > 0:
            losses["token"] = self.token_loss(tokens, gt)
        if lc.score_weight > 0:
            losses["score"] = self.score_loss(tokens, gt)
        overall = lc.instance_weight * losses["instance"]
        overall = (
            overall
            + lc.token_weight * losses.get("token", 0)
            + lc.score_weight * losses.get("score", 0)
        )
        losses["overall"] = overall
        return losses

    def train_step(self, batch: dict) -> dict | None:
        """One optimisation step; returns the (process-averaged) scalars, or None if skipped."""
        draw = [self.cfg.seed, self.epoch, self.step_in_epoch]
        rng = np.random.default_rng(draw + [self.rank] if self.cfg.clicks_per_rank else draw)
        torch.manual_seed(_step_seed(self.cfg.seed, self.epoch, self.step_in_epoch, self.rank))
        self.optimizer.zero_grad(set_to_none=True)
        loss, scalars, vis = self.batch_forward(batch, rng, train=True)
        finite = dist_utils.all_reduce_min(torch.isfinite(loss).float().detach())
        if finite.item() < 1:
            return self._skip_step("non-finite loss")
        self.scaler.scale(loss).backward()
        if self.scaler.is_enabled():
            self.scaler.unscale_(self.optimizer)  # the check and the clipping see true gradients
        bad = self._first_nonfinite_grad()
        if bad is not None:
            if self.scaler.is_enabled():
                self.scaler.update()  # an fp16 overflow: the scaler lowers its scale
            self.optimizer.zero_grad(set_to_none=True)
            return self._skip_step(f"non-finite gradient in {bad}")
        self.nonfinite_streak = 0
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        scalars = {k: dist_utils.all_reduce_mean(_loss_dtype(v)) for k, v in scalars.items()}
        if (
            self.rank == 0
            and self.cfg.image_dump_interval
            and self.global_step % self.cfg.image_dump_interval == 0
        ):
            self._dump_images(vis)
        return scalars

    def _first_nonfinite_grad(self) -> str | None:
        """Name of the first parameter whose gradient holds a NaN or an infinity, or None.

        One fused norm per parameter and a single host sync: a NaN or infinite entry makes its
        tensor's norm non-finite. The gradients are the same on every process after DDP's
        all-reduce, so every process takes the same decision."""
        named = [(n, p.grad) for n, p in self.model.named_parameters() if p.grad is not None]
        if not named:
            return None
        norms = torch.stack(torch._foreach_norm([g for _, g in named]))
        bad = ~torch.isfinite(norms)
        if not bool(bad.any()):
            return None
        return named[int(bad.nonzero()[0, 0])][0]

    def _skip_step(self, why: str) -> None:
        """Refuses this step (no update) with one log line; stops the run after
        ``max_nonfinite_steps`` refused steps in a row."""
        self.nonfinite_streak += 1
        logger.warning(
            "%s at epoch %d step %d: step skipped (%d in a row)",
            why,
            self.epoch,
            self.step_in_epoch,
            self.nonfinite_streak,
        )
        if self.nonfinite_streak >= self.cfg.max_nonfinite_steps:
            raise NonFiniteLossError(
                f"stopping: {self.nonfinite_streak} consecutive steps with a non-finite loss "
                f"or gradient"
            )
        return None

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
        self._stop = _StopRequest()
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


def _loss_dtype(t: torch.Tensor) -> torch.Tensor:
    """Half-precision (AMP) outputs in float32 for the losses; float32 and float64 unchanged, so
    a float64 model's step stays in float64 (the reference one-step tests)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v
