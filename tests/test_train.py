"""Training: the loop learns, resumes exactly, survives a damaged checkpoint, and
splits over processes without changing the maths."""

import itertools
import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from compare import gradient_errors, grads
from safetensors.torch import load_file, save_file

from miniclip import CLIP, CLIPConfig, ImageProcessor
from miniclip.checkpoint import latest_checkpoint
from miniclip.config import TextConfig, VisionConfig
from miniclip.data import shapes
from miniclip.train import (
    MAX_LOGIT_SCALE,
    OneCaption,
    TrainConfig,
    Trainer,
    accumulated_backward,
    batch_loss,
    buffers_kept,
    clamp_logit_scale,
    contrastive_loss,
    learning_rate_at,
    parameter_groups,
    split_batch,
    train,
)

MICRO = CLIPConfig(
    text=TextConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                    num_attention_heads=2, max_position_embeddings=8, bos_token_id=48, eos_token_id=49),
    vision=VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                        num_attention_heads=2, image_size=16, patch_size=8),
    projection_dim=16,
)


def micro_batch(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, 49, (n, 8), generator=generator)
    input_ids[:, -1] = 49
    return {"input_ids": input_ids, "attention_mask": torch.ones(n, 8, dtype=torch.long),
            "pixel_values": torch.randn(n, 3, 16, 16, generator=generator)}


def test_weight_decay_only_on_matrices():
    model = CLIP(MICRO)
    decay, no_decay = parameter_groups(model, 0.1)
    names = {id(p): name for name, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    kept = {names[id(p)] for p in no_decay["params"]}
    assert "logit_scale" in kept and "vision_model.embeddings.class_embedding" in kept
    assert not any(name.endswith(("bias", "layer_norm1.weight")) for name in decayed)
    assert "text_model.encoder.layers.0.self_attn.q_proj.weight" in decayed
    assert decayed | kept == set(names.values()) and no_decay["weight_decay"] == 0.0


def test_schedule_warms_up_then_decays_to_zero():
    rates = [learning_rate_at(step, 100, 1.0, 10) for step in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(rates[9:]))
    assert rates[-1] < 0.001 and rates[55] == pytest.approx(0.5, abs=0.02)


def test_temperature_is_clamped_at_one_hundredth():
    model = CLIP(MICRO)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    clamp_logit_scale(model)
    assert model.logit_scale.item() == pytest.approx(MAX_LOGIT_SCALE)
    assert model.temperature == pytest.approx(0.01)


def test_overfitting_one_batch_drives_the_loss_near_zero():
    torch.manual_seed(0)
    model = CLIP(MICRO)
    optimizer = torch.optim.AdamW(parameter_groups(model, 0.0), lr=1e-2)
    batch = micro_batch(8)
    for _ in range(60):
        loss = batch_loss(model, model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert loss.item() < 0.05, f"loss after 60 steps on one batch: {loss.item():.3f}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size)
    torch.manual_seed(0)
    model = CLIP(MICRO)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    batch = micro_batch(6)
    share = {key: value[rank * 3 : (rank + 1) * 3] for key, value in batch.items()}
    loss = batch_loss(model, ddp, share)
    loss.backward()
    tensors = {f"grad.{name}": p.grad for name, p in model.named_parameters()}
    save_file({"loss": loss.detach()[None], **tensors}, os.path.join(folder, f"rank{rank}.safetensors"))
    torch.distributed.destroy_process_group()


def test_two_processes_with_gathered_features_equal_one_process_on_the_whole_batch(tmp_path):
    mp.spawn(_ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    torch.manual_seed(0)
    model = CLIP(MICRO)
    loss = batch_loss(model, model, micro_batch(6))
    loss.backward()
    for rank in range(2):
        result = load_file(tmp_path / f"rank{rank}.safetensors")
        assert result["loss"].item() == pytest.approx(loss.item(), rel=1e-6)
        theirs = {name: result[f"grad.{name}"] for name, _ in model.named_parameters()}
        errors = gradient_errors(theirs, grads(model))
        worst = max(errors, key=errors.get)
        assert errors[worst] < 1e-5, f"{worst} differs by {errors[worst]:.1e} (relative)"


def test_accumulated_micro_batches_give_the_loss_and_gradients_of_the_whole_batch():
    torch.manual_seed(0)
    model = CLIP(MICRO)
    batch = micro_batch(8)
    loss = batch_loss(model, model, batch)
    loss.backward()
    whole = {name: grad.clone() for name, grad in grads(model).items()}
    model.zero_grad()
    accumulated = accumulated_backward(model, model, split_batch(batch, 4))
    assert accumulated == pytest.approx(loss.item(), rel=1e-6)
    errors = gradient_errors(grads(model), whole)
    worst = max(errors, key=errors.get)
    assert errors[worst] < 1e-5, f"{worst} differs by {errors[worst]:.1e} (relative)"


def test_the_pass_without_a_graph_leaves_batchnorm_statistics_alone():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    before = {name: buffer.clone() for name, buffer in model.named_buffers()}
    with torch.no_grad(), buffers_kept(model):
        model(torch.randn(2, 3, 8, 8))
        assert not torch.equal(model[1].running_mean, before["1.running_mean"])  # it did write
    for name, buffer in model.named_buffers():
        assert torch.equal(buffer, before[name]), name


def test_a_batch_that_does_not_split_into_micro_batches_is_refused(tmp_path):
    with pytest.raises(ValueError, match="batch size 8 does not split over 1 process.* times 3 micro-batches"):
        Trainer(small_run(tmp_path, accumulate=3))
    with pytest.raises(ValueError, match="accumulate is a number of micro-batches per step, at least 1; got 0"):
        small_run(tmp_path, accumulate=0)


def small_run(folder, steps=6, **changes) -> TrainConfig:
    settings = dict(data="shapes", preset="tiny", out=str(folder), steps=steps, batch_size=8,
                    warmup_steps=2, checkpoint_every=2, eval_every=0, log_every=1,
                    data_options={"length": 64})
    settings.update(changes)
    return TrainConfig(**settings)


class Interrupt:
    def __init__(self, at: int):
        self.at = at

    def __call__(self, trainer, record):
        if trainer.step == self.at:
            raise KeyboardInterrupt


def final_weights(folder):
    checkpoint, _ = latest_checkpoint(folder / "checkpoints")
    return load_file(checkpoint / "model.safetensors")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("straight")
    train(small_run(folder))
    return folder


def test_resume_after_ctrl_c_equals_an_uninterrupted_run(tmp_path, uninterrupted):
    with pytest.raises(KeyboardInterrupt):
        train(small_run(tmp_path), on_step=Interrupt(at=3))
    assert latest_checkpoint(tmp_path / "checkpoints")[1]["step"] == 3  # Ctrl-C saved step 3
    train(small_run(tmp_path), resume=True)
    expected, resumed = final_weights(uninterrupted), final_weights(tmp_path)
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key


def test_ctrl_c_during_a_step_saves_that_step_whole(tmp_path, uninterrupted):
    import signal

    trainer = Trainer(small_run(tmp_path))
    step = trainer.optimizer.step

    def step_then_ctrl_c(*args, **kwargs):  # Ctrl-C lands after the update, before the count
        result = step(*args, **kwargs)
        if trainer.step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return result

    trainer.optimizer.step = step_then_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert latest_checkpoint(tmp_path / "checkpoints")[1]["step"] == 3  # the step it was in, finished
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C is Python's again
    train(small_run(tmp_path), resume=True)
    expected, resumed = final_weights(uninterrupted), final_weights(tmp_path)
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key


def assert_same_weights(ours, theirs, tolerance=3e-5):
    for key in theirs:
        error = (ours[key] - theirs[key]).abs().max().item()
        assert error < tolerance, f"{key} differs by {error:.1e}"


def test_accumulation_trains_like_one_large_batch(tmp_path, uninterrupted):
    train(small_run(tmp_path, accumulate=4))  # micro-batches of 2 pairs
    assert_same_weights(final_weights(tmp_path), final_weights(uninterrupted))


def steps_at(folder, precision: str, accumulate: int = 1) -> tuple[list[float], torch.Tensor]:
    """Four steps of a small run at `precision` on the CPU: the losses, and how far the weights moved.

    The trainer refuses 16-bit precision on a CPU (it is for GPUs, which CI lacks); the
    test sets it after building, and PyTorch's CPU autocast and gradient scaler take the
    same calls as the GPU's.
    """
    trainer = Trainer(small_run(folder, accumulate=accumulate))
    trainer.precision = precision
    trainer.scaler = torch.amp.GradScaler("cpu", enabled=precision == "fp16")
    start = [parameter.detach().clone() for parameter in trainer.model.parameters()]
    batches = trainer.batches()
    losses = [trainer.train_step(batches) for _ in range(4)]
    moved = [(parameter.detach() - before).flatten() for parameter, before in zip(trainer.model.parameters(), start)]
    return losses, torch.cat(moved)


@pytest.fixture(scope="module")
def fp32_steps(tmp_path_factory):
    return steps_at(tmp_path_factory.mktemp("fp32"), "fp32")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("accumulate", [1, 2])
def test_mixed_precision_trains_as_fp32_does_to_its_rounding(tmp_path, fp32_steps, precision, accumulate):
    losses, moved = steps_at(tmp_path, precision, accumulate)
    expected_losses, expected_moved = fp32_steps
    assert losses != expected_losses  # half precision ran: its rounding shows
    assert losses == pytest.approx(expected_losses, rel=0.03)
    assert torch.nn.functional.cosine_similarity(moved, expected_moved, dim=0) > 0.98


# PyTorch's own compile machinery still calls torch.jit.script_method, deprecated in 2.13
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compile_takes_the_model_whole_and_computes_what_it_computes_eagerly():
    # fullgraph=True raises at the first graph break: the checks that read tensor values
    # (token ids in range, an end-of-text token in every row, any padding) stand aside.
    torch.manual_seed(0)
    model = CLIP(MICRO).eval()
    batch = micro_batch(4)
    batch["attention_mask"][0, 5:] = 0
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        eager = model(batch["input_ids"], batch["pixel_values"], batch["attention_mask"])
        graph = compiled(batch["input_ids"], batch["pixel_values"], batch["attention_mask"])
    torch.testing.assert_close(graph.logits_per_text, eager.logits_per_text, atol=1e-5, rtol=1e-5)


def _trainer_worker(rank: int, world_size: int, port: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    train(small_run(folder, accumulate=2))  # 2 processes x 2 micro-batches of 2 pairs; ends the group


def test_two_processes_accumulating_train_like_one_with_the_whole_batch(tmp_path, uninterrupted):
    mp.spawn(_trainer_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    assert_same_weights(final_weights(tmp_path), final_weights(uninterrupted))


def test_a_damaged_checkpoint_is_skipped_for_the_one_before(tmp_path, uninterrupted):
    import shutil

    shutil.copytree(uninterrupted, tmp_path / "run")
    checkpoints = tmp_path / "run" / "checkpoints"
    newest = sorted(checkpoints.iterdir())[-1]
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # a truncated write
    with pytest.warns(UserWarning, match=f"skipping damaged checkpoint {newest.name}"):
        _, state = latest_checkpoint(checkpoints)
    assert state["step"] == 4
    with pytest.warns(UserWarning, match=f"skipping damaged checkpoint {newest.name}"):
        trainer = Trainer(small_run(tmp_path / "run"), resume=True)
    assert trainer.step == 4


def test_a_new_run_refuses_a_folder_that_holds_one(uninterrupted):
    before = sorted(path.name for path in (uninterrupted / "checkpoints").iterdir())
    with pytest.raises(FileExistsError, match="continue it with --resume"):
        Trainer(small_run(uninterrupted))
    assert sorted(path.name for path in (uninterrupted / "checkpoints").iterdir()) == before


def test_the_command_line_names_the_problem_without_a_traceback(uninterrupted, capsys):
    from miniclip.__main__ import main

    assert main(["train", "--steps", "2", "--batch-size", "8", "--out", str(uninterrupted)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"miniclip train: error: {uninterrupted} already holds a training run")
    assert "Traceback" not in error


def test_miniclip_traceback_lets_the_error_through(uninterrupted, monkeypatch):
    from miniclip.__main__ import main

    monkeypatch.setenv("MINICLIP_TRACEBACK", "1")
    with pytest.raises(FileExistsError, match="already holds a training run"):
        main(["train", "--steps", "2", "--batch-size", "8", "--out", str(uninterrupted)])


def test_resume_refuses_other_settings(tmp_path, uninterrupted):
    with pytest.raises(ValueError, match="batch_size=8"):
        Trainer(small_run(uninterrupted, batch_size=16), resume=True)
    with pytest.raises(ValueError, match="augment='none', not 'affine'"):
        Trainer(small_run(uninterrupted, augment="affine"), resume=True)
    with pytest.raises(ValueError, match="weight_decay=0.1, not 0.5"):  # AdamW's groups keep the old one
        Trainer(small_run(uninterrupted, weight_decay=0.5), resume=True)


def test_resume_keeps_the_plan_unless_told_otherwise(uninterrupted):
    assert Trainer(small_run(uninterrupted, steps=None), resume=True).total_steps == 6
    assert Trainer(small_run(uninterrupted, steps=9), resume=True).total_steps == 9  # --steps extends
    replanned = Trainer(small_run(uninterrupted, steps=None, minutes=1), resume=True)
    assert replanned.total_steps is None
    replanned.train_step(replanned.batches())  # timing the new plan: the old one's rate, not the peak
    assert replanned.optimizer.param_groups[0]["lr"] == learning_rate_at(6, 6, 1e-3, 2)


def test_metrics_of_a_run_that_saved_no_checkpoint_are_not_kept(tmp_path):
    for resume in (False, True):
        tmp_path.joinpath("metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
        Trainer(small_run(tmp_path), resume=resume)
        assert tmp_path.joinpath("metrics.jsonl").read_text() == ""


def test_validation_falls_back_to_the_test_split_and_names_it(tmp_path, monkeypatch):
    trainer = Trainer(small_run(tmp_path, eval_size=8))
    load = trainer.load
    monkeypatch.setattr(trainer, "load", lambda split: [] if split == "val" else load(split))  # val_fraction=0
    assert trainer.validate()["val_split"] == "test"
    trainer.validation = None
    monkeypatch.setattr(trainer, "load", lambda split: [])
    with pytest.raises(ValueError, match=r"nothing held out to validate on .* \(--eval-every 0\)"):
        trainer.validate()


def test_a_minutes_run_stopped_before_its_plan_resumes_and_plans(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train(small_run(tmp_path, steps=None, minutes=0.05), on_step=Interrupt(at=3))
    _, state = latest_checkpoint(tmp_path / "checkpoints")
    assert state["step"] == 3 and state["total_steps"] is None  # stopped before the first plan
    trainer = Trainer(small_run(tmp_path, steps=None), resume=True)  # neither --steps nor --minutes
    assert trainer.config.minutes == 0.05 and trainer.total_steps is None
    trainer.run()
    assert trainer.step == trainer.total_steps > 3


def test_resume_of_an_fp16_run_keeps_its_loss_scale(tmp_path, monkeypatch):
    # fp16 is for GPUs; PyTorch's CPU autocast and gradient scaler take the same calls
    monkeypatch.setattr("miniclip.train.resolve_precision", lambda precision, device: "fp16")
    trainer = Trainer(small_run(tmp_path))
    trainer.train_step(trainer.batches())
    trainer.scaler.update(new_scale=512.0)  # where overflows would have brought it down
    trainer.save()
    assert Trainer(small_run(tmp_path), resume=True).scaler.get_scale() == 512.0


def test_more_processes_than_gpus_are_refused_before_they_start(monkeypatch):
    from miniclip import distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ValueError, match="process 1 of this machine needs GPU 1, but PyTorch sees 1"):
        distributed.setup("auto")


def test_a_resumed_run_logs_each_step_once(tmp_path, uninterrupted):
    import shutil

    shutil.copytree(uninterrupted, tmp_path / "run")
    newest = sorted((tmp_path / "run" / "checkpoints").iterdir())[-1]
    shutil.rmtree(newest)  # a crash after step 6 was logged, before its checkpoint was written
    with open(tmp_path / "run" / "metrics.jsonl", "a") as file:
        file.write('{"step": 7, "lo')  # and a line cut short
    trainer = Trainer(small_run(tmp_path / "run"), resume=True)
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert trainer.step == 4 and steps == [1, 2, 3, 4]
    trainer.run()
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_validation_runs_at_its_own_steps_not_only_at_logged_ones(tmp_path):
    train(small_run(tmp_path, steps=4, log_every=4, eval_every=3, eval_size=8))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records] == [3, 4]
    assert "val_i2t_recall@5" in records[0] and "samples_per_s" not in records[0]
    assert records[0]["val_split"] == "val"  # shapes has one
    assert "val_i2t_recall@5" in records[1] and "samples_per_s" in records[1]


@pytest.mark.parametrize("changes, message", [
    ({"steps": 0}, "steps is a number of optimizer steps, at least 1; got 0"),
    ({"steps": None, "minutes": 0}, "minutes is a time budget, more than 0; got 0"),
    ({"minutes": 1}, "give steps or minutes, not both"),
    ({"checkpoint_every": 0}, "checkpoint_every is a number of steps, at least 1"),
    ({"eval_every": -1}, "eval_every is a number of steps, or 0 for no validation; got -1"),
])
def test_settings_that_mean_nothing_are_refused(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        small_run(tmp_path, **changes)


def test_the_loss_is_taken_in_float32_under_autocast():
    generator = torch.Generator().manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(16, 8, generator=generator), dim=-1)
    image = torch.nn.functional.normalize(torch.randn(16, 8, generator=generator), dim=-1)
    scale = torch.tensor(100.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = contrastive_loss(text, image, scale)
        assert (scale * text @ image.t()).dtype == torch.bfloat16  # what autocast would do to the logits
    assert loss.dtype == torch.float32
    assert torch.equal(loss, contrastive_loss(text, image, scale))


def test_augmented_pictures_are_drawn_per_item_and_epoch():
    data = OneCaption(shapes.Shapes("train", length=8, image_size=32), seed=0, augment="affine")
    plain = OneCaption(data.dataset, seed=0)
    assert data[0, 3][1] == plain[0, 3][1]  # the caption drawn as without augmentation
    first = data[0, 3][0]
    data[1, 3], data[0, 5]  # whatever is drawn in between, in this worker or another,
    assert data[0, 3][0] == first  # item 3 of epoch 0 is the same picture
    assert data[0, 3][0] != data[1, 3][0] and data[0, 3][0] != data[0, 4][0]
    assert data[0, 3][0] != plain[0, 3][0]
    with pytest.raises(ValueError, match="augment must be one of"):
        small_run("unused", augment="flip")


def test_resume_of_an_augmented_run_equals_an_uninterrupted_one(tmp_path):
    train(small_run(tmp_path / "straight", steps=4, augment="affine"))
    with pytest.raises(KeyboardInterrupt):
        train(small_run(tmp_path / "resumed", steps=4, augment="affine"), on_step=Interrupt(at=2))
    train(small_run(tmp_path / "resumed", steps=4, augment="affine"), resume=True)
    expected, resumed = final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed")
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key
    train(small_run(tmp_path / "plain", steps=4))
    plain = final_weights(tmp_path / "plain")
    assert not torch.equal(plain["visual_projection.weight"], expected["visual_projection.weight"])


def test_a_run_leaves_metrics_and_plots(uninterrupted):
    lines = (uninterrupted / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 6
    assert (uninterrupted / "training.png").exists()


def test_the_training_plot_says_when_a_run_was_not_validated(uninterrupted):
    from miniclip.report import plot_training

    figure = plot_training(uninterrupted, save=False)
    recall = figure.axes[3]
    assert not recall.lines  # eval_every=0: nothing to draw
    assert "not validated" in recall.texts[0].get_text()
    assert all(len(axis.lines) > 0 for axis in figure.axes[:3])


def test_batch_larger_than_the_data_is_refused(tmp_path):
    with pytest.raises(ValueError, match="larger than the dataset"):
        train(small_run(tmp_path, batch_size=128, data_options={"length": 64}))


def test_a_learnt_vocabulary_travels_with_the_checkpoint_and_the_export(tmp_path):
    import transformers
    from PIL import Image

    from miniclip.evaluate import evaluate_run, load_run
    from miniclip.export import export_run

    train(small_run(tmp_path / "run", steps=2, vocab_size=600))
    model, tokenizer, _ = load_run(tmp_path / "run")
    assert model.config.text.vocab_size == tokenizer.vocab_size == 600
    assert model.config.text.eos_token_id == tokenizer.eos_token_id == 599
    results = evaluate_run(tmp_path / "run", limit=16)
    assert 0 <= results["zero_shot_top1"] <= 1 and "t2i_recall@10" in results
    assert 0 <= results["zero_shot_seen_top1"] <= 1
    assert json.loads((tmp_path / "run" / "eval.json").read_text()) == results
    per_class = results["zero_shot_per_class"]  # the held-out pairs among 16 test images
    assert set(per_class) <= {f"{c} {k}" for c, k in shapes.HELD_OUT_PAIRS}
    assert sum(row["images"] for row in per_class.values()) == 16

    export_run(tmp_path / "run", tmp_path / "hf")
    classify = transformers.pipeline("zero-shot-image-classification", model=str(tmp_path / "hf"))
    labels = ["red circle", "blue square"]
    image = Image.new("RGB", (64, 64), "red")
    scores = {s["label"]: s["score"] for s in classify(image, candidate_labels=labels)}
    # the pipeline's probabilities equal miniclip's on the same prompts
    texts = tokenizer([f"This is a photo of {label}." for label in labels], padding="longest")
    pixels = ImageProcessor(model.config.vision.image_size)([image])["pixel_values"]
    with torch.no_grad():
        output = model(texts["input_ids"], pixels, texts["attention_mask"])
    probabilities = output.logits_per_image.softmax(dim=-1)[0]
    for label, probability in zip(labels, probabilities.tolist()):
        assert scores[label] == pytest.approx(probability, abs=1e-4)


def test_the_command_line_trains_a_resnet(tmp_path):
    from miniclip.__main__ import main
    from miniclip.evaluate import load_run

    out = str(tmp_path / "resnet")
    assert main(["train", "--vision", "resnet", "--steps", "2", "--batch-size", "8", "--out", out,
                 "--eval-every", "0", "--vocab-size", "600"]) == 0
    model, _, settings = load_run(out)
    assert settings["preset"] == "tiny-resnet" and model.config.vision.kind == "resnet"
    exported = tmp_path / "exported"
    assert main(["export", out, "--hf", str(exported)]) == 2  # transformers has no ResNet CLIP
    assert not exported.exists()


def test_data_options_from_the_command_line_stay_with_the_run_and_bind_a_resume(tmp_path, capsys):
    from miniclip.__main__ import main
    from miniclip.evaluate import load_run

    out = str(tmp_path / "mixed")
    assert main(["train", "--data-option", "background=mixed", "--data-option", "length=16", "--steps", "1",
                 "--batch-size", "8", "--out", out, "--eval-every", "0"]) == 0
    assert load_run(out)[2]["data_options"] == {"background": "mixed", "length": 16}
    assert main(["train", "--data-option", "length=16", "--steps", "2", "--batch-size", "8",
                 "--out", out, "--resume"]) == 2
    assert "started with data_options={'background': 'mixed', 'length': 16}" in capsys.readouterr().err
    assert main(["train", "--data-option", "length", "--out", str(tmp_path / "bad")]) == 2
    assert "--data-option 'length': write KEY=VALUE" in capsys.readouterr().err


def test_minutes_plan_the_step_count_and_refine_it(tmp_path):
    trainer = Trainer(small_run(tmp_path / "run", steps=None, minutes=1))
    trainer.step = 10
    assert trainer.plan_steps(seconds=6.0, steps=10)  # 0.6 s per step, early: plan again later
    assert trainer.total_steps == 10 + int((60 * 0.97 - 6.0) / 0.6)
    trainer.step = 30
    assert trainer.plan_steps(seconds=12.0, steps=30)  # at the speed since 6 s: 0.3 s per step
    assert trainer.total_steps == 30 + int((60 * 0.97 - 12.0) / 0.3)
    trainer.step = 50
    assert trainer.plan_steps(seconds=40.0, steps=50)  # at the speed since 12 s: 1.4 s per step
    assert trainer.total_steps == 50 + int((60 * 0.97 - 40.0) / ((40.0 - 12.0) / (50 - 30)))
    trainer.step = 60
    assert not trainer.plan_steps(seconds=53.0, steps=60)  # past 90% of the budget: final
    assert trainer.total_steps == 60 + int((60 * 0.97 - 53.0) / ((53.0 - 12.0) / (60 - 30)))


def test_a_minutes_run_plans_its_step_count_and_reaches_it(tmp_path):
    trainer = Trainer(small_run(tmp_path / "run", steps=None, minutes=0.05))
    trainer.run()
    assert trainer.total_steps is not None and trainer.step == trainer.total_steps >= 1
    assert latest_checkpoint(tmp_path / "run" / "checkpoints") is not None


def test_per_class_accuracy_names_each_class_and_what_it_is_taken_for():
    from miniclip.evaluate import per_class_accuracy

    labels = torch.tensor([0, 0, 0, 0, 2, 2])
    predictions = torch.tensor([0, 1, 1, 3, 2, 2])
    table = per_class_accuracy(predictions, labels, ["a", "b", "c", "d"])
    assert table == {
        "a": {"accuracy": 0.25, "images": 4, "most_taken_for": "b"},
        "c": {"accuracy": 1.0, "images": 2, "most_taken_for": None},
    }


@pytest.mark.parametrize("preset, twin", [("tiny", "tiny-resnet"), ("vit-b-32", "rn50")])
def test_vision_resnet_takes_the_presets_resnet_twin(preset, twin, monkeypatch):
    import miniclip.__main__ as cli

    chosen = {}
    monkeypatch.setattr("miniclip.train.train", lambda config, resume: chosen.setdefault("preset", config.preset))
    assert cli.main(["train", "--preset", preset, "--vision", "resnet", "--out", "unused"]) == 0
    assert chosen["preset"] == twin


def test_vision_resnet_refuses_a_preset_without_a_twin(capsys):
    from miniclip.__main__ import main

    assert main(["train", "--preset", "small", "--vision", "resnet", "--out", "unused"]) == 2
    assert "the preset 'small' has no ResNet twin" in capsys.readouterr().err
    assert main(["train", "--preset", "tiny-resnet", "--vision", "vit", "--out", "unused"]) == 2
    assert "the preset 'tiny-resnet' is a ResNet; its ViT twin is 'tiny'" in capsys.readouterr().err


def test_the_command_line_offers_every_data_set():
    from miniclip.__main__ import DATA
    from miniclip.data import DATASETS

    assert sorted(DATA) == sorted(DATASETS)


def test_folder_data_without_its_folder_is_named(uninterrupted, tmp_path, capsys):
    from miniclip.__main__ import main

    for command in (["train", "--out", str(tmp_path / "run")], ["evaluate", str(uninterrupted)]):
        assert main([*command, "--data", "folder"]) == 2
        assert "folder needs the option 'root' (on the command line: --data-root DIR)" in capsys.readouterr().err


def test_evaluate_takes_where_the_data_lies(monkeypatch, capsys):
    import miniclip.__main__ as cli

    asked = {}
    monkeypatch.setattr("miniclip.evaluate.evaluate_run",
                        lambda run, data, limit, device, options: asked.update(options=options) or {})
    assert cli.main(["evaluate", "run", "--data", "fashion", "--data-root", "/elsewhere"]) == 0
    assert asked["options"] == {"root": "/elsewhere"}


def test_under_torchrun_one_process_evaluates(monkeypatch):
    import miniclip.__main__ as cli

    measured = []
    monkeypatch.setattr("miniclip.train.train", lambda config, resume: config.out)
    monkeypatch.setattr("miniclip.evaluate.evaluate_run", lambda run: measured.append(run) or {})
    for rank in ("1", "0"):
        monkeypatch.setenv("RANK", rank)
        assert cli.main(["train", "--out", f"run-{rank}", "--evaluate"]) == 0
    assert measured == ["run-0"]


def test_the_plot_of_an_older_run_names_the_split_it_validated_on(tmp_path):
    from miniclip.report import plot_training

    settings = {"data": "emoji", "batch_size": 8, "eval_size": 256, "eval_every": 10}
    (tmp_path / "train_config.json").write_text(json.dumps(settings))
    record = {"step": 10, "loss": 1.0, "lr": 1e-3, "temperature": 0.07, "val_i2t_recall@1": 0.1,
              "val_i2t_recall@5": 0.3, "val_t2i_recall@1": 0.1, "val_t2i_recall@5": 0.3}  # no val_split
    (tmp_path / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    assert "'test'" in plot_training(tmp_path, save=False).axes[3].get_title()  # emoji has no val
