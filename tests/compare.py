"""How the tests measure "equal": relative errors of outputs and of gradients."""

import torch


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """max |ours - reference| / max |reference|."""
    return ((ours - reference).abs().max() / reference.abs().max().clamp_min(1e-12)).item()


def gradient_errors(ours: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per parameter name, the relative error of our gradient against the reference's.

    Some gradients are zero in exact arithmetic (a key bias shifts every score of a row
    equally, which softmax ignores); both sides then hold rounding noise, so a gradient's
    scale is never taken below 1% of the largest gradient in the model.
    """
    floor = 1e-2 * max(grad.abs().max().item() for grad in reference.values())
    return {
        f"grad {name}": (grad - reference[name]).abs().max().item()
        / max(reference[name].abs().max().item(), floor)
        for name, grad in ours.items()
    }


def grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: parameter.grad for name, parameter in model.named_parameters()}
