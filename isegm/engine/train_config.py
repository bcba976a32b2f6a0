"""What a training run is told: optimisation and bookkeeping (:class:`TrainConfig`) and the loss
weights (:class:`LossConfig`). Model scripts (``models/*.py``) fill these in; the loop
(:mod:`isegm.engine.trainer`) and the step (:mod:`isegm.engine.train_step`) read them."""

from __future__ import annotations

from dataclasses import dataclass, field

from .optim import OPTIMIZERS, WEIGHT_DECAY_RULES

__all__ = ["TrainConfig", "LossConfig"]


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
