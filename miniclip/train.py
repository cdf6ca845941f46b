"""Training a CLIP: the loop, its schedule, its checkpoints, on one process or many.

Chapter 09 builds this file, following section 2.5 of the CLIP paper (Radford et al.,
2021): AdamW with decoupled weight decay on the weight matrices only (not on gains,
biases, the class embedding or the temperature), a linear warm-up then a cosine decay
of the learning rate, and the learned temperature clipped so that the logits are never
scaled by more than 100. Around that: gradient clipping, gradient accumulation that
trains exactly as one large contrastive batch would, mixed precision on a GPU,
checkpoints that resume exactly, and several processes (`torchrun`) that compute the
loss over the batch of all of them, as the paper's large batches need.

    train(TrainConfig(data="shapes", preset="tiny", out="runs/shapes", minutes=5))
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from miniclip import distributed
from miniclip.checkpoint import checkpoints, latest_checkpoint, load_training_state, save_checkpoint
from miniclip.config import CLIPConfig
from miniclip.data import Collate, load_dataset
from miniclip.data.seeding import keyed_rng
from miniclip.evaluate import Encoder, retrieval
from miniclip.image import AUGMENTATIONS, ImageProcessor, augment_image
from miniclip.loss import clip_loss
from miniclip.model import CLIP
from miniclip.tokenizer import Tokenizer

MAX_LOGIT_SCALE = math.log(100)  # the paper clips the temperature at 0.01
TIMING_STEPS = 10  # with --minutes, the step count is planned after these steps, then every as many
DEFAULT_STEPS = 1000  # when neither steps nor minutes are given
TOKENIZER_SAMPLE = 2000  # items whose captions a learnt vocabulary is trained on


@dataclass
class TrainConfig:
    """Everything a run needs; saved with each checkpoint so that a resumed run is the same run."""

    data: str = "shapes"
    preset: str = "tiny"
    out: str = "runs/shapes-tiny"
    steps: int | None = None  # optimizer steps (1000 if neither this nor minutes is given); or:
    minutes: float | None = None  # a time budget, turned into a step count after a few steps
    batch_size: int = 128  # pairs per contrastive batch (per step), over all processes
    accumulate: int = 1  # micro-batches that batch goes through the model in, to save memory
    learning_rate: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50
    grad_clip: float = 1.0
    precision: str = "auto"  # "fp32", "bf16", "fp16"; auto: bf16 on a GPU, fp32 on a CPU
    compile: bool = False
    device: str = "auto"
    seed: int = 0
    checkpoint_every: int = 200
    eval_every: int = 100
    eval_size: int = 256
    log_every: int = 10
    workers: int = 0
    vocab_size: int | None = None  # None: OpenAI's 49,408 tokens; else a BPE learnt from the captions
    augment: str = "none"  # or "crop", "affine": miniclip.image.augment_image, drawn per item and epoch
    data_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.batch_size < 2:
            raise ValueError(
                f"batch_size must be at least 2 (a contrastive batch needs negatives), got {self.batch_size}")
        if self.accumulate < 1:
            raise ValueError(f"accumulate is a number of micro-batches per step, at least 1; got {self.accumulate}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}")
        if self.steps is not None and self.minutes is not None:
            raise ValueError(f"give steps or minutes, not both (got steps={self.steps}, minutes={self.minutes})")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps is a number of optimizer steps, at least 1; got {self.steps}")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"minutes is a time budget, more than 0; got {self.minutes}")
        for name in ("checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} is a number of steps, at least 1 (the end of a run "
                                 f"always saves and logs); got {getattr(self, name)}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every is a number of steps, or 0 for no validation; got {self.eval_every}")


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices (linear, convolution and embedding weights) and nothing else."""
    decay, no_decay = [], []
    for _, parameter in sorted(model.named_parameters()):
        if parameter.requires_grad:
            (decay if parameter.dim() >= 2 else no_decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},  # gains, biases, class embedding, logit_scale
    ]


def learning_rate_at(step: int, total_steps: int, peak: float, warmup_steps: int) -> float:
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then a cosine decay to 0."""
    warmup_steps = min(warmup_steps, max(total_steps // 5, 1))
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return peak * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def clamp_logit_scale(model: nn.Module) -> None:
    with torch.no_grad():
        unwrap(model).logit_scale.clamp_(0, MAX_LOGIT_SCALE)


def unwrap(model: nn.Module) -> nn.Module:
    """The CLIP inside DistributedDataParallel and torch.compile wrappers."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or model._orig_mod
    return model


class OneCaption:
    """A dataset view whose item (epoch, i) is item i with one caption, drawn from (seed, epoch, i),
    and its picture augmented (`augment`, see `miniclip.image.augment_image`) from the same draws.

    Keying the draws by the item, not by the order of draws, makes a resumed run, or one
    whose items are loaded by several DataLoader workers, pick the same captions and pictures.
    """

    def __init__(self, dataset, seed: int, augment: str = "none"):
        self.dataset, self.seed, self.augment = dataset, seed, augment

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, i = key
        image, captions = self.dataset[i]
        rng = keyed_rng(self.seed, epoch, i)
        pick = rng.integers(len(captions))
        return augment_image(image, self.augment, rng), [captions[int(pick)]]


def gathered_embeddings(forward: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Text and image embeddings of every process's share of a batch, (N*B, D) each.

    Every process sees every process's embeddings, with the gradient path back to its own
    share (open_clip's gather_with_grad; see `miniclip.distributed`). `forward` is the
    model itself, or its DistributedDataParallel / compiled wrapper.
    """
    output = forward(batch["input_ids"], batch["pixel_values"], batch["attention_mask"])
    text = distributed.gather_with_grad(output.text_embeds.float())  # (N*B, D)
    image = distributed.gather_with_grad(output.image_embeds.float())
    return text, image


def contrastive_loss(text: torch.Tensor, image: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """clip_loss of (N*B, D) text and image embeddings, in float32 even under autocast: at a
    scale near 100, bfloat16 logits would be off by a quarter or more."""
    with torch.autocast(text.device.type, enabled=False):
        return clip_loss(scale.float() * text.float() @ image.float().t())  # logits (N*B, N*B)


def batch_loss(model: nn.Module, forward: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The contrastive loss of this process's share of a batch, over the whole batch:
    each image is contrasted with all texts of the global batch."""
    text, image = gathered_embeddings(forward, batch)
    return contrastive_loss(text, image, unwrap(model).logit_scale.exp())


def split_batch(batch: dict[str, torch.Tensor], parts: int) -> list[dict[str, torch.Tensor]]:
    """`parts` micro-batches of equal size, in order."""
    size = len(batch["input_ids"])
    if size % parts:
        raise ValueError(f"a batch of {size} pairs does not split into {parts} equal micro-batches")
    return [{key: value[k * size // parts : (k + 1) * size // parts] for key, value in batch.items()}
            for k in range(parts)]


@contextmanager
def buffers_kept(model: nn.Module) -> Iterator[None]:
    """Undo, on leaving, what a forward pass wrote into the model's buffers (BatchNorm's statistics)."""
    saved = [buffer.clone() for buffer in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(model.buffers(), saved):
                buffer.copy_(value)


def accumulated_backward(
    model: nn.Module, forward: nn.Module, micro: list[dict[str, torch.Tensor]],
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    autocast: Callable[[], Any] = nullcontext, no_sync: Callable[[], Any] = nullcontext,
) -> float:
    """The gradient of the contrastive loss of all `micro` batches taken as one batch, built
    with one micro-batch's activations in memory at a time; returns that loss.

    A loss per micro-batch would contrast each image with the texts of its own micro-batch
    only: fewer negatives, another objective. Instead (as GradCache, Gao et al. 2021, and
    open_clip's `accum_freq`): embed every micro-batch once without a graph, which keeps
    no activations; then, for each micro-batch j, embed it again with its graph and take
    the loss L of the whole batch, the other micro-batches' embeddings standing in as
    constants. Its backward adds dL/df_j df_j/dtheta, and the sum over j is dL/dtheta,
    the gradient of one pass over the whole batch. The temperature, on which L depends
    directly, takes its gradient in the last pass only; the first pass leaves BatchNorm's
    running statistics as it found it (a ResNet's batch statistics are each
    micro-batch's, the one way in which its steps differ from one large batch's).
    The trainer passes `backward` (its fp16 gradient scaler's), `autocast`, and `no_sync`
    (DistributedDataParallel then reduces the gradients once, after the last pass).
    """
    if len(micro) == 1:  # the batch fits: one pass, nothing to cache
        with autocast():
            loss = batch_loss(model, forward, micro[0])
        backward(loss)
        return loss.item()
    with torch.no_grad(), buffers_kept(unwrap(model)), autocast():
        constants = [gathered_embeddings(forward, batch) for batch in micro]  # [(text, image), ...]
    for j, batch in enumerate(micro):
        last = j == len(micro) - 1
        with nullcontext() if last else no_sync():
            with autocast():
                embeddings = constants.copy()
                embeddings[j] = gathered_embeddings(forward, batch)  # the same values, with a graph
                text = torch.cat([text for text, _ in embeddings])  # the whole batch's
                image = torch.cat([image for _, image in embeddings])
                scale = unwrap(model).logit_scale.exp()
                loss = contrastive_loss(text, image, scale if last else scale.detach())
            backward(loss)
    return loss.item()


def batch_keys(
    length: int, batch_size: int, seed: int, start: int, rank: int = 0, world_size: int = 1
) -> Iterator[list[tuple[int, int]]]:
    """This process's (epoch, item) keys of batch `start`, `start` + 1, ... (one per step).

    Batch m covers positions m * batch_size ... of an endless stream of epochs, each a
    seeded shuffle, so where a run starts from is a number and resuming needs nothing
    else. Process `rank` takes its 1/world_size slice of each batch.
    """
    if batch_size > length:
        raise ValueError(f"batch size {batch_size} is larger than the dataset ({length} items)")
    per_epoch = length // batch_size  # the last partial batch of an epoch is dropped
    share = batch_size // world_size
    micro = start
    while True:
        epoch, position = divmod(micro, per_epoch)
        order = torch.randperm(length, generator=torch.Generator().manual_seed(seed * 10_007 + epoch))
        batch = order[position * batch_size : (position + 1) * batch_size].tolist()
        yield [(epoch, i) for i in batch[rank * share : (rank + 1) * share]]
        micro += 1


class Trainer:
    """One training run: build or resume, loop, log, checkpoint."""

    def __init__(self, config: TrainConfig, resume: bool = False):
        self.config = config
        self.run_dir = Path(config.out)
        if not resume and (found := checkpoints(self.run_dir / "checkpoints")):
            # A new run here would mix its metrics with the old run's and could leave an
            # older, later-numbered checkpoint as the newest: refuse, and lose nothing.
            raise FileExistsError(
                f"{self.run_dir} already holds a training run (checkpoints up to {found[-1].name}): "
                "continue it with --resume, or train into another --out")
        self.rank, self.world_size, self.device = distributed.setup(config.device)
        if not resume:
            self.drop_metrics_after(0)  # an earlier run here saved no checkpoint: its log goes too
        if config.batch_size % (self.world_size * config.accumulate):
            raise ValueError(
                f"batch size {config.batch_size} does not split over {self.world_size} process(es) "
                f"times {config.accumulate} micro-batches (--accumulate)")
        self.tokenizer = self.make_tokenizer(resume)
        model_config = CLIPConfig.preset(config.preset)
        text = model_config.text
        text.vocab_size = self.tokenizer.vocab_size
        text.bos_token_id, text.eos_token_id = self.tokenizer.bos_token_id, self.tokenizer.eos_token_id
        text.pad_token_id = self.tokenizer.pad_token_id
        self.tokenizer.context_length = text.max_position_embeddings  # what a saved tokenizer cuts at
        torch.manual_seed(config.seed)
        self.model = CLIP(model_config).to(self.device)
        self.optimizer = torch.optim.AdamW(
            parameter_groups(self.model, config.weight_decay), lr=config.learning_rate,
            betas=(0.9, 0.98), eps=1e-6,  # the paper's values for its ViTs
            fused=True,  # one kernel for all parameters: several times faster than a loop
        )
        self.step = 0
        self.total_steps = config.steps if config.steps is not None else (None if config.minutes else DEFAULT_STEPS)
        self.timings = [(0.0, 0)]  # with --minutes: (seconds, steps) since the start, at each plan
        self.previous_plan: int | None = None  # a resumed run's step count, while it plans another
        saved_scaler = self.resume() if resume else {}
        self.precision = resolve_precision(config.precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        if saved_scaler and self.scaler.is_enabled():
            self.scaler.load_state_dict(saved_scaler)  # fp16: the loss scale it had reached
        self.forward = self.model
        self.no_sync = nullcontext  # DistributedDataParallel's, with several processes
        if self.world_size > 1:
            self.forward = nn.parallel.DistributedDataParallel(self.model)
            self.no_sync = self.forward.no_sync
        if config.compile:
            self.forward = torch.compile(self.forward)
        self.train_data = OneCaption(self.load("train"), config.seed, config.augment)
        self.interrupted = False  # set by Ctrl-C during `run`
        self.validation: tuple[str, Any] | None = None  # (split, dataset), loaded when first needed
        self.collate = Collate(self.tokenizer, ImageProcessor(self.model.config.vision.image_size),
                               context_length=self.model.config.text.max_position_embeddings,
                               caption="first", padding="longest")

    def load(self, split: str):
        options = dict(self.config.data_options)
        if self.config.data == "shapes":
            options.setdefault("image_size", CLIPConfig.preset(self.config.preset).vision.image_size)
            options.setdefault("cache", split == "train")  # draw each scene once, not once per epoch
        return load_dataset(self.config.data, split=split, seed=self.config.seed, **options)

    def make_tokenizer(self, resume: bool) -> Tokenizer:
        """OpenAI's vocabulary, or one learnt from the training captions (kept with the run)."""
        if self.config.vocab_size is None:
            return Tokenizer.from_openai()
        saved = self.run_dir / "tokenizer"
        if resume and (saved / "vocab.json").exists():
            return Tokenizer.from_pretrained(saved)
        data = self.load("train")
        texts = [caption for i in range(min(len(data), TOKENIZER_SAMPLE)) for caption in data[i][1]]
        tokenizer = Tokenizer.train(texts, self.config.vocab_size)
        if self.rank == 0:
            tokenizer.save_pretrained(saved)
        return tokenizer

    def resume(self) -> dict[str, Any]:
        """Load the newest intact checkpoint; returns the fp16 gradient scaler's saved state."""
        found = latest_checkpoint(self.run_dir / "checkpoints")
        if found is None:
            self.log(f"no checkpoint in {self.run_dir / 'checkpoints'}; starting afresh")
            self.drop_metrics_after(0)  # what a run that saved nothing had logged
            return {}
        checkpoint, state = found
        saved = state["train"]
        defaults = {"augment": "none"}  # settings that runs of older versions did not record
        for key in ("data", "preset", "batch_size", "accumulate", "seed", "learning_rate", "weight_decay",
                    "vocab_size", "data_options", "augment"):
            if saved.get(key, defaults.get(key)) != getattr(self.config, key):
                raise ValueError(
                    f"--resume: this run was started with {key}={saved.get(key, defaults.get(key))!r}, not "
                    f"{getattr(self.config, key)!r}; resume with the same settings or pick another --out")
        self.model.load_state_dict(CLIP.from_pretrained(checkpoint).state_dict())
        load_training_state(checkpoint, state, self.optimizer)
        self.step = state["step"]
        self.total_steps = self.resumed_total_steps(saved.get("minutes"), state["total_steps"])
        self.drop_metrics_after(self.step)
        planned = "to be planned" if self.total_steps is None else str(self.total_steps)
        self.log(f"resumed from {checkpoint} at step {self.step} of {planned}")
        return state.get("grad_scaler", {})

    def resumed_total_steps(self, saved_minutes: float | None, saved_total: int | None) -> int | None:
        """The step count a resumed run trains to (None: plan it from the speed, with --minutes).

        --steps sets it (and may extend a run); --minutes with another budget than the run's
        plans the rest anew, that many minutes from now; otherwise the run keeps its plan,
        so that an interrupted run ends where it would have. A --minutes run stopped before
        it had planned anything plans from now, on its own budget.
        """
        config = self.config
        if config.steps is not None:
            return config.steps
        if config.minutes is not None and config.minutes != saved_minutes:
            self.previous_plan = saved_total  # the learning rate follows it until the new plan
            return None
        if saved_total is None:
            config.minutes = saved_minutes
        return saved_total

    def drop_metrics_after(self, step: int) -> None:
        """Forget the metrics of steps after `step`: a resumed run logs them again."""
        path = self.run_dir / "metrics.jsonl"
        if self.rank != 0 or not path.exists():
            return

        def up_to_step(line: str) -> bool:
            try:
                return json.loads(line)["step"] <= step
            except (json.JSONDecodeError, KeyError, TypeError):  # a line cut short by a crash
                return False

        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if up_to_step(line)]
        if len(kept) < len(lines):
            partial = path.with_suffix(".jsonl.partial")
            partial.write_text("".join(kept))
            partial.replace(path)

    # --- the loop -----------------------------------------------------------------

    def autocast(self):
        if self.precision in ("bf16", "fp16"):
            return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])
        return nullcontext()

    def backward(self, batch: dict[str, torch.Tensor]) -> float:
        """Gradients of the contrastive loss of this process's share of a batch, over the
        whole batch, in `accumulate` micro-batches; returns the loss."""
        batch = {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}
        return accumulated_backward(self.model, self.forward, split_batch(batch, self.config.accumulate),
                                    backward=lambda loss: self.scaler.scale(loss).backward(),
                                    autocast=self.autocast, no_sync=self.no_sync)

    def batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """This process's slice of each step's batch, from the current step on.

        With `workers` > 0, DataLoader processes draw and preprocess the next batches while
        the model trains on this one.
        """
        config = self.config
        keys = batch_keys(len(self.train_data), config.batch_size, config.seed,
                          self.step, self.rank, self.world_size)
        loader = torch.utils.data.DataLoader(
            self.train_data, batch_sampler=keys, collate_fn=self.collate,
            num_workers=config.workers, pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if config.workers else None,
        )
        return iter(loader)

    def train_step(self, batches: Iterator[dict[str, torch.Tensor]]) -> float:
        config = self.config
        try:
            batch = next(batches)
        except Exception:
            if self.interrupted:  # Ctrl-C reached the DataLoader's workers too, and they stopped
                raise KeyboardInterrupt from None
            raise
        total = self.total_steps or self.previous_plan or 10**9  # before a --minutes plan: no end yet
        learning_rate = learning_rate_at(self.step, total, config.learning_rate, config.warmup_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        loss = self.backward(batch)
        self.scaler.unscale_(self.optimizer)
        nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        clamp_logit_scale(self.model)
        self.step += 1
        return loss

    def run(self, on_step: Callable[[Trainer, dict], None] | None = None) -> Path:
        """Train to the planned step count; Ctrl-C saves a checkpoint and returns."""
        config = self.config
        self.log(f"training {config.preset} on {config.data}, {self.device}, "
                 f"{self.world_size} process(es), precision {self.precision}, run folder {self.run_dir}")
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "train_config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1))
        batches = self.batches()
        started, first_step = time.perf_counter(), self.step
        progress = self.progress_bar()
        try:
            with self.ctrl_c_between_steps():
                self.loop(batches, started, first_step, on_step, progress)
        except KeyboardInterrupt:
            progress.close()
            self.save()
            self.plot()
            self.log(f"interrupted at step {self.step}; saved. Continue with --resume.")
            raise
        progress.close()
        self.save()
        self.plot()
        self.log(f"done: {self.step} steps in {time.perf_counter() - started:.0f} s; see {self.run_dir}")
        return self.run_dir

    @contextmanager
    def ctrl_c_between_steps(self) -> Iterator[None]:
        """Ctrl-C (SIGINT) lets the step under way finish, then stops the loop at the step
        boundary, so that the checkpoint saved holds the weights of the step it names.
        A second Ctrl-C stops at once. Only where Python takes signals (its main thread)."""
        self.interrupted = False
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_ctrl_c(signum, frame) -> None:
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True
            self.log("Ctrl-C: stopping after this step (press again to stop at once)")

        previous = signal.signal(signal.SIGINT, on_ctrl_c)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def loop(self, batches: Iterator[dict[str, torch.Tensor]], started: float, first_step: int,
             on_step: Callable[[Trainer, dict], None] | None, progress: Progress) -> None:
        """Steps to the planned count; after Ctrl-C, raises KeyboardInterrupt between two steps."""
        config = self.config
        planning = self.total_steps is None  # --minutes: the step count is not known yet
        window_start, window_step = started, self.step
        while self.total_steps is None or self.step < self.total_steps:
            loss = self.train_step(batches)
            if planning and (self.step - first_step) % TIMING_STEPS == 0:
                planning = self.plan_steps(time.perf_counter() - started, self.step - first_step)
            record = {"step": self.step, "loss": round(loss, 5),
                      "lr": self.optimizer.param_groups[0]["lr"],
                      "temperature": math.exp(-unwrap(self.model).logit_scale.item())}
            last = self.step == self.total_steps
            logging = self.step % config.log_every == 0 or last
            if logging:
                now = time.perf_counter()
                samples = (self.step - window_step) * config.batch_size
                record["samples_per_s"] = round(samples / max(now - window_start, 1e-9), 1)
                record["elapsed_s"] = round(now - started, 1)
                window_start, window_step = now, self.step
            validating = config.eval_every and (self.step % config.eval_every == 0 or last)
            if validating:
                record.update(self.validate())
            if logging or validating:
                self.write_metrics(record)
            progress.update(record, self.total_steps)
            if on_step is not None:
                on_step(self, record)
            if self.step % config.checkpoint_every == 0:
                self.save()
            if distributed.any_process(self.interrupted):  # all processes stop at the same step
                raise KeyboardInterrupt

    def plan_steps(self, seconds: float, steps: int) -> bool:
        """With --minutes: set the step count that fills the budget at the speed so far.

        Called every few steps until 90% of the budget is spent, so that a machine that
        slows down or speeds up mid-run still ends on time; the learning-rate schedule
        follows the refined count (late changes move it little, near the end of the
        cosine). The speed is that of the latest half of the time so far, not of all of
        it: the first steps are unlike the rest (the first epoch draws the images that
        later ones read from a cache; clocks settle). Returns whether to plan again.
        """
        # the latest (seconds, steps) mark at or before half the time so far
        since, since_step = max(mark for mark in self.timings if mark[0] <= seconds / 2)
        self.timings.append((seconds, steps))
        per_step = (seconds - since) / (steps - since_step)
        budget = self.config.minutes * 60 * 0.97  # leave room for the last checkpoint
        total = max(self.step + int((budget - seconds) / per_step), self.step + 1)
        total = distributed.broadcast_int(total)  # every process must stop at the same step
        again = bool(distributed.broadcast_int(int(seconds < 0.9 * budget)))  # one decision for all processes
        if self.total_steps is None or not again:
            state = "planning" if again else "final plan:"
            self.log(f"{per_step * 1000:.0f} ms per step: {state} {total} steps for {self.config.minutes} minutes")
        self.total_steps = total
        return again

    def validate(self) -> dict[str, float | str]:
        """Retrieval recall on a fixed slice of held-out data (process 0 only): the data set's
        "val" split, or its "test" split where it has none (emoji; Fashion-MNIST without a
        `val_size`). The record names the split."""
        if self.rank != 0:
            return {}
        if self.validation is None:
            try:
                self.validation = "val", self.load("val")
            except ValueError:  # no such split
                self.validation = "test", self.load("test")
            if len(self.validation[1]) == 0 and self.validation[0] == "val":  # val_fraction=0, say
                self.validation = "test", self.load("test")
            if len(self.validation[1]) == 0:
                raise ValueError(f"{self.config.data}: nothing held out to validate on (its "
                                 f"{self.validation[0]!r} split is empty); hold some items out, "
                                 "or train with eval_every=0 (--eval-every 0)")
        split, data = self.validation
        model = unwrap(self.model)
        model.eval()
        encoder = Encoder(model, self.tokenizer, ImageProcessor(model.config.vision.image_size), str(self.device))
        recall = retrieval(encoder, data, limit=self.config.eval_size)
        model.train()
        return {**{f"val_{key}": round(value, 4) for key, value in recall.items() if key.endswith(("@1", "@5"))},
                "val_split": split}

    def save(self) -> None:
        if self.rank == 0:
            extra = {"total_steps": self.total_steps, "train": dataclasses.asdict(self.config),
                     "grad_scaler": self.scaler.state_dict()}  # {} unless fp16
            save_checkpoint(self.run_dir / "checkpoints", unwrap(self.model), self.optimizer,
                            self.step, extra, tokenizer=self.tokenizer)
        distributed.barrier()

    def plot(self) -> None:
        if self.rank == 0:
            from miniclip.report import plot_training

            plot_training(self.run_dir)

    def write_metrics(self, record: dict) -> None:
        if self.rank == 0:
            with open(self.run_dir / "metrics.jsonl", "a") as file:
                file.write(json.dumps(record) + "\n")

    def log(self, message: str) -> None:
        if self.rank == 0:
            print(message, file=sys.stderr, flush=True)

    def progress_bar(self) -> Progress:
        enabled = self.rank == 0 and os.environ.get("MINICLIP_PROGRESS", "1") != "0"
        return Progress(enabled, self.step, self.total_steps)


class Progress:
    """A tqdm bar with loss, learning rate, temperature and samples/s (off when disabled)."""

    def __init__(self, enabled: bool, step: int, total: int | None):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=step, unit="step", dynamic_ncols=True)

    def update(self, record: dict, total: int | None) -> None:
        if self.bar is None:
            return
        if self.bar.total != total:
            self.bar.total = total
        self.bar.update(1)
        shown = {"loss": f"{record['loss']:.3f}", "lr": f"{record['lr']:.1e}",
                 "T": f"{record['temperature']:.3f}"}
        if "samples_per_s" in record:
            shown["samples/s"] = f"{record['samples_per_s']:.0f}"
        self.bar.set_postfix(shown, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision is one of auto, {', '.join(PRECISIONS)}; got {precision!r}")
    if precision != "fp32" and device.type != "cuda":
        raise ValueError(f"mixed precision ({precision}) is for GPUs; on {device} use fp32")
    return precision


def train(config: TrainConfig, resume: bool = False, on_step=None) -> Path:
    """Run a whole training; returns the run folder (checkpoints, metrics.jsonl, plots)."""
    trainer = Trainer(config, resume=resume)
    try:
        return trainer.run(on_step)
    finally:
        distributed.cleanup()
