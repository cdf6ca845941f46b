"""Chapter 12's checks accept the reference and reject plausible wrong answers, saying why; its
figures draw what they say."""

import torch
import torch.nn.functional as F
from check_cases import reference_and_wrong_answer_tests

from miniclip import checks, plots_limits
from miniclip.checks.ch12_limits import binding_score, gathered_gradient
from miniclip.loss import clip_loss


def dot_products(image, true, false):
    return ((image * true).sum(-1) > (image * false).sum(-1)).float().mean().item()


def false_wins(image, true, false):
    return 1 - binding_score(image, true, false)


def count(image, true, false):
    return binding_score(image, true, false) * len(image)


def retrieval(image, true, false):
    cosines = F.normalize(image, dim=-1) @ F.normalize(true, dim=-1).t()
    return (cosines.argmax(dim=1) == torch.arange(len(image))).float().mean().item()


def per_image(image, true, false):
    image, true, false = (F.normalize(x, dim=-1) for x in (image, true, false))
    return ((image * true).sum(-1) > (image * false).sum(-1)).float()


WRONG_BINDING = {
    "dot products": (dot_products, "dot products, not cosines"),
    "false wins": (false_wins, "*false* caption wins"),
    "a count": (count, "a count"),
    "retrieval": (retrieval, "retrieval"),
    "per image": (per_image, "returned a torch.float32 tensor of shape (12,); return one number"),
    "per image, a list": (lambda *embeds: per_image(*embeds).tolist(), "a list of 12 values"),
}


def own_only(gradients, rank):
    share = gradients[0].size(0) // len(gradients)
    return gradients[rank][rank * share : (rank + 1) * share]


def mean(gradients, rank):
    return gathered_gradient(gradients, rank) / len(gradients)


def n_times_own(gradients, rank):
    return len(gradients) * own_only(gradients, rank)


def whole(gradients, rank):
    return torch.stack(gradients).sum(0)


def interleaved(gradients, rank):
    return torch.stack(gradients).sum(0)[rank :: len(gradients)]


def first_rows(gradients, rank):
    return gathered_gradient(gradients, 0)


def share_of_two(gradients, rank):
    """B hard-coded to 2, the share of the chapter's example."""
    return torch.stack(gradients).sum(0)[2 * rank : 2 * rank + 2]


WRONG_GATHERED = {
    "own gradient only": (own_only, "sum all processes' gradients"),
    "mean": (mean, "the all-reduce sums"),
    "N times own": (n_times_own, "right only when every process computes the same loss"),
    "whole tensor": (whole, "the whole gathered gradient"),
    "interleaved rows": (interleaved, "rank order"),
    "rank 0's rows": (first_rows, "the rows of rank 0"),
    "B hard-coded": (share_of_two, "gradients[0].size(0) // len(gradients)"),
}

REFERENCES = [(checks.check_binding_score, binding_score), (checks.check_gathered_gradient, gathered_gradient)]
WRONG_ANSWERS = [(checks.check_binding_score, WRONG_BINDING), (checks.check_gathered_gradient, WRONG_GATHERED)]


test_reference_passes_with_one_line, test_wrong_answer_fails_and_says_why = reference_and_wrong_answer_tests(
    REFERENCES, WRONG_ANSWERS)


def test_gathered_gradient_makes_processes_equal_one_process():
    """The fact chapter 12 teaches: N processes, each backpropagating the summed gradient of its
    own share, then averaged (DistributedDataParallel), equal one process on the whole batch."""
    torch.manual_seed(0)
    tower = torch.nn.Linear(5, 4)
    inputs, texts = torch.randn(6, 5), F.normalize(torch.randn(6, 4), dim=-1)

    def loss_of(features):
        return clip_loss(10 * texts @ F.normalize(features, dim=-1).t())

    loss_of(tower(inputs)).backward()
    expected = tower.weight.grad.clone()
    world_size, share, total = 3, 2, torch.zeros_like(expected)
    with torch.no_grad():
        everyone = tower(inputs)
    gradients = []
    for _ in range(world_size):  # every process computes the same loss of the whole batch
        gathered = everyone.clone().requires_grad_()
        gradients.append(torch.autograd.grad(loss_of(gathered), gathered)[0])
    for rank in range(world_size):
        tower.zero_grad()
        own = tower(inputs[rank * share : (rank + 1) * share])
        own.backward(gathered_gradient(gradients, rank))
        total += tower.weight.grad / world_size
    torch.testing.assert_close(total, expected)


def test_figures_have_titles_and_labels():
    fig = plots_limits.score_bars_figure(["a", "b"], [0.4, 0.9], [0.5, 0.1], title="scores",
                                         xlabel="test set", ylabel="fraction")
    ax = fig.axes[0]
    assert ax.get_title() == "scores" and ax.get_ylabel() == "fraction" and ax.get_xlabel() == "test set"
    assert [bar.get_height() for bar in ax.patches] == [0.4, 0.9]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    fig = plots_limits.truncation_figure([1, 2, 40], [0.1, 0.05, 0.0], cap=32, title="cap")
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("token position") and ax.lines[1].get_xdata()[0] == 31
    counts = torch.tensor([1.0, 5.0, 0.0])
    fig = plots_limits.prediction_counts_figure(["x", "y", "z"], counts, title="answers")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["y", "x", "z"]  # most often first
