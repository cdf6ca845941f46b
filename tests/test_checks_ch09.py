"""The checks of chapter 09 accept the reference and reject plausible wrong answers, saying why."""

import math

import matplotlib
import torch
from check_cases import reference_and_wrong_answer_tests

from miniclip import checks, plots_training
from miniclip.checks.ch09_training import (
    micro_batch,
    micro_model,
    overfit_one_batch,
    overfit_with,
    schedule,
    step_with,
    train_step,
)
from miniclip.train import MAX_LOGIT_SCALE, learning_rate_at, parameter_groups

REFERENCES = [
    (checks.check_parameter_groups, parameter_groups),
    (checks.check_learning_rate_at, learning_rate_at),
    (checks.check_train_step, train_step),
    (checks.check_overfit_one_batch, overfit_one_batch),
]


# ---- wrong answers ----------------------------------------------------------------------


def groups_by(rule, trainable_only=True):
    def wrong(model, weight_decay):
        named = [(name, p) for name, p in model.named_parameters()
                 if p.requires_grad or not trainable_only]
        decay = [p for name, p in named if rule(name, p)]
        keep = [p for name, p in named if not rule(name, p)]
        return [{"params": decay, "weight_decay": weight_decay}, {"params": keep, "weight_decay": 0.0}]
    return wrong


def one_group(model, weight_decay):
    return [{"params": list(model.parameters()), "weight_decay": weight_decay}]


def default_decay(model, weight_decay):
    decay, keep = parameter_groups(model, weight_decay)
    return [decay, {"params": keep["params"]}]


def matrices_only(model, weight_decay):
    return [parameter_groups(model, weight_decay)[0]]


def open_clip_rule(name, parameter):
    excluded = (parameter.ndim < 2 or "bn" in name or "ln" in name or "bias" in name
                or "logit_scale" in name)
    return not excluded


WRONG_PARAMETER_GROUPS = {
    "by the name 'bias'": (groups_by(lambda name, p: not name.endswith("bias")), "LayerNorm gain"),
    "by the name 'weight'": (groups_by(lambda name, p: name.endswith("weight")), "LayerNorm gain"),
    "everything decayed": (one_group, "should not be"),
    "embeddings kept": (groups_by(lambda name, p: p.dim() >= 2 and "embedding" not in name),
                        "Embedding tables"),
    "no weight_decay key": (default_decay, "AdamW's is 0.01"),
    "gains and biases left out": (matrices_only, "in no group"),
    "logit_scale decayed": (groups_by(lambda name, p: p.dim() >= 2 or name == "logit_scale"),
                            "temperature"),
    "frozen parameters kept": (groups_by(lambda name, p: p.dim() >= 2, trainable_only=False),
                               "leave out the parameters with requires_grad=False"),
}


def test_open_clips_rule_by_dimension_and_name_passes(capsys):
    checks.check_parameter_groups(groups_by(open_clip_rule))
    assert capsys.readouterr().out.startswith("✓ parameter_groups")


def schedule_with(**knobs):
    return lambda step, total, peak, warmup: schedule(step, total, peak, warmup, **knobs)


WRONG_SCHEDULES = {
    "warm-up from zero": (schedule_with(from_zero=True), "starts at 0"),
    "warm-up not shortened": (schedule_with(cap=False), "not shortened"),
    "cosine over the whole run": (schedule_with(whole_run=True), "whole run"),
    "cosine climbs again": (schedule_with(clamp_end=False), "climbs again"),
    "no one half": (schedule_with(half=False), "2 × peak"),
    "linear decay": (schedule_with(linear=True), "linearly"),
    "a tensor": (lambda *args: torch.tensor(learning_rate_at(*args)), "Python float"),
}


def tensor_loss(model, optimizer, batch, learning_rate, grad_clip=1.0):
    step_with()(model, optimizer, batch, learning_rate, grad_clip)
    return torch.tensor(0.0)


def clamped_only(model, optimizer, batch, learning_rate, grad_clip=1.0):
    with torch.no_grad():
        model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
    return 0.0


WRONG_TRAIN_STEPS = {
    "learning rate not set": (step_with(set_lr=False), "set group['lr']"),
    "no clipping": (step_with(clip=False), "clip_grad_norm_"),
    "gradients never zeroed": (step_with(zero_grad=False), "still there"),
    "clamped before the step": (step_with(clamp="before"), "clamped before"),
    "never clamped": (step_with(clamp=None), "above ln 100"),
    "returns a tensor": (tensor_loss, "Python float"),
    "no optimizer step": (clamped_only, "optimizer.step() ran 0 times"),
}


def overfit_with_adamw_defaults(model, batch, steps, learning_rate):
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    return [train_step(model, optimizer, batch, learning_rate) for _ in range(steps)]


WRONG_OVERFITS = {
    "new optimizer each step": (overfit_with(fresh_optimizer=True), "make it once"),
    "AdamW's default weight decay": (overfit_with_adamw_defaults, "default weight_decay=0.01"),
    "weight decay": (overfit_with(weight_decay=0.1), "with weight decay"),
    "SGD": (overfit_with(sgd=True), "SGD"),
    "one step too many": (overfit_with(extra=1), "one per step"),
    "no list": (lambda *args: None, "return the list"),
}

WRONG_ANSWERS = [
    (checks.check_parameter_groups, WRONG_PARAMETER_GROUPS),
    (checks.check_learning_rate_at, WRONG_SCHEDULES),
    (checks.check_train_step, WRONG_TRAIN_STEPS),
    (checks.check_overfit_one_batch, WRONG_OVERFITS),
]


test_reference_passes_with_one_line, test_wrong_answer_fails_and_says_why = reference_and_wrong_answer_tests(
    REFERENCES, WRONG_ANSWERS)


def test_checks_leave_threads_and_random_state_alone():
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.check_train_step(train_step)
    assert torch.equal(torch.rand(3), expected) and torch.get_num_threads() == threads


def test_unfinished_exercise_prints_a_line_instead_of_raising(capsys):
    def train_step(model, optimizer, batch, learning_rate, grad_clip=1.0):
        raise NotImplementedError("Your code here")

    checks.check_train_step(train_step)
    assert capsys.readouterr().out.startswith("⏳ train_step: not written yet")


def test_show_solution_prints_the_reference(capsys):
    checks.show_solution("train_step")
    assert capsys.readouterr().out.startswith("# miniclip/checks/ch09_training.py\ndef train_step(")


def test_micro_batches_start_and_end_with_the_special_tokens():
    batch = micro_batch(4, seed=0)
    assert (batch["input_ids"][:, 0] == 48).all() and (batch["input_ids"][:, -1] == 49).all()
    assert micro_model().config.text.eos_token_id == 49


# ---- figures ------------------------------------------------------------------------------


def test_training_figure_draws_loss_temperature_and_rate_with_their_baselines():
    records = [{"step": s, "loss": 4 - s / 10, "lr": 1e-3, "temperature": 0.07} for s in range(1, 6)]
    figure = plots_training.training_figure(records, batch_size=64)
    assert not matplotlib.pyplot.fignum_exists(figure.number)
    loss_axis, temperature_axis, rate_axis = figure.axes
    labels = [line.get_label() for line in loss_axis.get_lines()]
    assert any(f"ln 64 = {math.log(64):.2f}" in label for label in labels), labels
    assert temperature_axis.get_yscale() == "log" and rate_axis.get_ylabel() == "learning rate"


def test_loss_vs_batch_figure_puts_chance_on_the_diagonal():
    figure = plots_training.loss_vs_batch_figure([4, 16], {"untrained": [1.4, 2.8]})
    chance = figure.axes[0].get_lines()[0]
    assert list(chance.get_xdata()) == list(chance.get_ydata())
    assert figure.axes[0].get_xlabel() == "ln N (nats)"
