"""The machinery of the exercise checks: outcomes, comparisons, reference weights.

Every check is a function decorated with `@exercise(name, solution)`: it runs the
learner's answer on small fixed inputs, compares with `compare`, and returns a success
line; the decorator prints it, or turns NotImplementedError into a "not written yet"
line, and records `solution` for `show_solution`. The checks of each chapter live in a
module of their own beside this one (`ch02_attention.py`, ...).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

Mistakes = Sequence[tuple[Any, str]]  # (what a known wrong answer returns, a hint for it)
SOLUTIONS: dict[str, Any] = {}  # exercise name -> miniclip's reference, for show_solution


class CheckFailed(AssertionError):
    """The learner's answer disagrees with the reference; the message says where."""


def exercise(name: str, solution: Any) -> Callable:
    """Turn `check(answer) -> success message` into a check that prints its outcome."""
    SOLUTIONS[name] = solution

    def decorate(check: Callable[..., str]) -> Callable[..., None]:
        @functools.wraps(check)
        def run(answer, *args, **kwargs) -> None:
            __tracebackhide__ = True
            try:
                with torch.random.fork_rng(devices=[]):
                    message = check(answer, *args, **kwargs)
            except NotImplementedError:
                print(f"⏳ {name}: not written yet (it raises NotImplementedError). Fill in "
                      "the cell above, run it, then run this check again.")
                return
            except CheckFailed as failure:
                raise CheckFailed(f"{name}: {failure}") from None
            print(f"✓ {name}: {message}")

        return run

    return decorate


def show_solution(answer: str | Callable) -> None:
    """Print miniclip's reference for an exercise, given its name or the learner's answer."""
    name = answer if isinstance(answer, str) else answer.__name__
    if name not in SOLUTIONS:
        raise KeyError(f"no exercise named {name!r}; the exercises are {sorted(SOLUTIONS)}")
    reference = SOLUTIONS[name]
    module = inspect.getmodule(reference).__name__.replace(".", "/")
    print(f"# {module}.py\n{inspect.getsource(reference)}")


def describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} values"
    return "None" if value is None else f"a {type(value).__name__}"


def show(got: Any, expected: Any) -> tuple[str, str]:
    """Two numbers as text: floats to 6 significant digits, or more where 6 print them alike."""
    if not isinstance(got, float) or not isinstance(expected, float):
        return str(got), str(expected)
    for digits in (6, 9, 12, 17):
        shown = f"{got:.{digits}g}", f"{expected:.{digits}g}"
        if shown[0] != shown[1]:
            break
    return shown


def dtype_hint(got: torch.dtype, expected: torch.dtype) -> str:
    """Why a tensor may have come out as `got` where `expected` was wanted."""
    if expected.is_floating_point:
        return ("keep the inputs' dtype: a float64 tensor comes from numpy, from Python floats "
                "or from .double()" if got == torch.float64 else "keep the inputs' dtype")
    return ("token ids and masks are int64 (torch.long), as transformers' are: "
            "torch.tensor of Python ints gives that")


def difference(got: Any, expected: Any, atol: float, rtol: float,
               exact_dtype: bool = False) -> str | None:
    """What is wrong with `got`, in words, or None when it equals `expected` (and, with
    `exact_dtype`, has its dtype, not merely one of the same kind)."""
    if expected is None or not isinstance(got, torch.Tensor):
        if got is None and expected is None:
            return None
        if expected is None:
            return f"expected None, got {describe(got)}"
        return f"expected {describe(expected)}, got {describe(got)}"
    if got.shape != expected.shape:
        return f"shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    if (got.dtype == torch.bool) != (expected.dtype == torch.bool) or (
        expected.is_floating_point() != got.is_floating_point()
    ):  # integers hold ids, positions and masks; floats round them
        return f"dtype {got.dtype}, expected {expected.dtype}"
    if exact_dtype and got.dtype != expected.dtype:
        return f"dtype {got.dtype}, expected {expected.dtype} ({dtype_hint(got.dtype, expected.dtype)})"
    got = got.detach().cpu()
    if expected.dtype == torch.bool:
        wrong = got != expected
    else:
        got = got.to(expected.dtype)
        wrong = ~torch.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    if not wrong.any():
        return None
    if expected.dim() == 0:
        shown, wanted = show(got.item(), expected.item())
        return f"{shown}, expected {wanted}"
    index = wrong.nonzero()[0].tolist()
    shown, wanted = show(got[tuple(index)].item(), expected[tuple(index)].item())
    message = (f"entry {index} is {shown}, expected {wanted} ({int(wrong.sum())} of "
               f"{wrong.numel()} entries differ")
    if expected.is_floating_point():
        if got.isnan().any() and not expected.isnan().any():
            message += ", some are NaN"
        else:
            message += f", by up to {(got - expected).abs().max().item():.3g}"
    return message + ")"


def same(got: Any, wrong: Any, atol: float, rtol: float) -> bool:
    if not isinstance(got, torch.Tensor) or not isinstance(wrong, torch.Tensor):
        return got is None and wrong is None
    if got.shape != wrong.shape or (got.dtype == torch.bool) != (wrong.dtype == torch.bool):
        return False
    return difference(got, wrong, atol, rtol) is None


def compare(what: str, got: Any, expected: Any, mistakes: Mistakes = (),
            atol: float = 1e-5, rtol: float = 1e-4, exact_dtype: bool = False) -> None:
    """Raise CheckFailed, naming `what`, unless `got` equals `expected` (see `difference`)."""
    problem = difference(got, expected, atol, rtol, exact_dtype)
    if problem is None:
        return
    hint = next((hint for wrong, hint in mistakes if same(got, wrong, atol, rtol)), None)
    raise CheckFailed(f"{what}: {problem}" + (f"\nHint: {hint}" if hint else ""))


def compare_tower_output(call: str, got: Any, expected: Any, theirs: Any, their_name: str,
                         variants: dict[str, Mistakes]) -> None:
    """A tower's output (chapters 04 and 05): its last_hidden_state and pooler_output equal the
    reference's and transformers', and no hidden_states or attentions that were not asked for."""
    if not hasattr(got, "last_hidden_state") or not hasattr(got, "pooler_output"):
        raise CheckFailed(f"{call} returned {describe(got)}; return EncoderOutput("
                          "last_hidden_state, pooler_output, hidden_states, attentions)")
    for name in ("last_hidden_state", "pooler_output"):
        compare(f"{call}: {name}", getattr(got, name), getattr(expected, name), variants[name])
        compare(f"{call}: {name}, against transformers' {their_name}",
                getattr(got, name), getattr(theirs, name))
    compare(f"{call}: hidden_states when not asked for", got.hidden_states, None)
    compare(f"{call}: attentions when not asked for", got.attentions, None)


@contextlib.contextmanager
def explained(what: str, error_type: type[Exception], fragment: str, hint: str) -> Iterator[None]:
    """Turn an `error_type` raised by the learner's code, whose message holds `fragment`, into a
    CheckFailed that names the call and says what most likely caused it."""
    try:
        yield
    except error_type as error:
        if fragment not in str(error):
            raise
        raise CheckFailed(f"{what} raised {type(error).__name__}: {error}\nHint: {hint}") from None


def keeping_inputs(what: str, function: Callable, *inputs: Any, **options: Any) -> Any:
    """`function(*inputs, **options)` on copies of the tensor inputs; a CheckFailed if it changed
    one of them in place (the reference, computed from the originals, would then be wrong)."""
    copies = [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]
    result = function(*copies, **options)
    for x, copy in zip(inputs, copies):
        if isinstance(x, torch.Tensor) and not torch.equal(x, copy):
            raise CheckFailed(f"{what} changed its input of shape {tuple(x.shape)} in place\nHint: "
                              "`x += ...`, `x.mul_(...)`, `x.unsqueeze_(...)` and `x.copy_(...)` "
                              "overwrite the caller's tensor, which autograd may still need for "
                              "the backward pass; write x = x + ... and return the new tensor.")
    return result


FLAGS = ((True, True), (True, False), (False, True))  # output_hidden_states, output_attentions:
# each alone too, so that a layer or tower that swaps the two shows


def compare_listed(call: str, name: str, got: Any, want: Any, hint: str) -> None:
    """hidden_states or attentions: None when not asked for, else a tuple equal to `want`'s."""
    if want is None:
        compare(f"{call}: {name}, not asked for", got, None)
        return
    if not isinstance(got, (list, tuple)) or len(got) != len(want):
        length = f" of length {len(got)}" if isinstance(got, (list, tuple)) else ""
        raise CheckFailed(f"{call}: {name} is {describe(got)}{length}; expected a tuple of "
                          f"{len(want)} tensors: {hint}")
    for index, (tensor, expected) in enumerate(zip(got, want)):
        compare(f"{call}: {name}[{index}]", tensor, expected)


def pair(what: str, result: Any) -> tuple[Any, Any]:
    """Unpack a module's (output, extra) pair, or say that it is not one."""
    if not isinstance(result, tuple) or len(result) != 2:
        raise CheckFailed(f"{what} returned {describe(result)}; it should return a pair "
                          "(output, attention weights or None)")
    return result


def load(module: nn.Module, state_dict: dict[str, torch.Tensor], name: str) -> nn.Module:
    """Copy reference weights into the learner's module; their names must match transformers'."""
    have, want = set(module.state_dict()), set(state_dict)
    if have != want:
        raise CheckFailed(
            f"your {name} has parameters {sorted(have - want) or 'none extra'} and lacks "
            f"{sorted(want - have) or 'none'}; it needs exactly {sorted(want)}, transformers' "
            "names, so that their weights load with load_state_dict")
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as error:
        raise CheckFailed(f"the weights of a reference {name} do not fit yours: {error}") from None
    return module.eval()


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Random biases and LayerNorm gains/shifts (not 0 and 1), so swapping two of them shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if parameter.dim() == 1:
                base = 1.0 if "norm" in name and name.endswith("weight") else 0.0
                parameter.copy_(base + 0.3 * torch.randn(parameter.shape, generator=generator))
    return module.eval()


def hf_config(**fields) -> Any:
    """A transformers CLIPTextConfig that runs the explicit ("eager") attention."""
    from transformers import CLIPTextConfig

    config = CLIPTextConfig(**fields)
    config._attn_implementation = "eager"  # the path that returns attention weights
    return config


def additive(allowed: torch.Tensor) -> torch.Tensor:
    """transformers' form of a boolean mask: 0 where allowed, the float minimum elsewhere."""
    return torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def right_padded(lengths: Sequence[int], length: int) -> torch.Tensor:
    """A tokenizer's (B, T) attention_mask: 1 on the first `lengths[b]` tokens, 0 after."""
    return (torch.arange(length) < torch.tensor(lengths)[:, None]).long()
