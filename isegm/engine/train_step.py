"""One optimisation step of iterative interactive-segmentation training (SPEC §5, §7).

Per step: draw 0..``max_num_next_clicks`` extra clicks; simulate them one after the other with
the model in eval mode, each from the current errors (the same click rule as evaluation,
:func:`isegm.inference.clicker.next_clicks_batch`) and with the previous prediction fed back as
the previous-mask channel; then one forward pass with gradient, the losses, and the update
under AMP (fp16 with a scaler, or bf16), with optional gradient clipping and a guard that
refuses a step whose loss or gradients are not finite.

Every random draw of a step is derived from ``(seed, epoch, step, rank)``, so a step needs no
RNG state. :class:`TrainStep` owns the model, optimizer, scaler and losses; the loop
(:class:`isegm.engine.trainer.Trainer`, a subclass) moves ``epoch`` / ``step_in_epoch`` /
``global_step`` forward and saves and restores them.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from isegm.inference.clicker import next_clicks_batch
from isegm.model.losses import NormalizedFocalLossSigmoid, ScoreLoss, TokenContrastiveLoss
from isegm.utils import distributed as dist_utils

from .optim import build_optimizer
from .train_config import LossConfig, TrainConfig

__all__ = ["TrainStep", "NonFiniteLossError", "add_click_slots"]

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Too many consecutive steps had a non-finite loss."""



def add_click_slots(points: torch.Tensor, extra: int) -> torch.Tensor:
    """Append ``extra`` empty rows to the positive and to the negative half of ``points
    [B, 2N, 3]`` so that the simulated clicks never overwrite the sampled ones."""
    if extra <= 0:
        return points
    B, n2, _ = points.shape
    pad = points.new_full((B, extra, 3), -1)
    return torch.cat([points[:, : n2 // 2], pad, points[:, n2 // 2 :], pad], dim=1)


class TrainStep:
    """The model, its optimizer, AMP scaler and losses, and one step on a batch.

    Args:
        model: the model (moved to ``device``; wrapped in DDP when ``world_size > 1``).
        train_cfg, loss_cfg: see :class:`~isegm.engine.train_config.TrainConfig`,
            :class:`~isegm.engine.train_config.LossConfig`.
        device: compute device of this process.
    """

    def __init__(
        self, model: nn.Module, train_cfg: TrainConfig, loss_cfg: LossConfig,
        device: torch.device,
    ) -> None:
        self.cfg, self.loss_cfg = train_cfg, loss_cfg
        self.device = torch.device(device)
        self.rank, self.world = dist_utils.get_rank(), dist_utils.get_world_size()
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
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.nonfinite_streak = 0

    # ------------------------------------------------------------------ one step
    def _autocast(self):
        if self.cfg.amp == "off":
            return torch.autocast(self.device.type, enabled=False)
        dtype = torch.float16 if self.cfg.amp == "fp16" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

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

    def _dump_images(self, vis: dict) -> None:
        """What to do with the first sample of a step (``image_dump_interval``): nothing here;
        the loop writes it to ``vis/`` and TensorBoard."""


def _step_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _loss_dtype(t: torch.Tensor) -> torch.Tensor:
    """Half-precision (AMP) outputs in float32 for the losses; float32 and float64 unchanged, so
    a float64 model's step stays in float64 (the reference one-step tests)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
