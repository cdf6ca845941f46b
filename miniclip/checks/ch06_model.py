"""Checks of the joint space: scaled cosine logits, the CLIP module, loading transformers' weights
(chapter 06)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from miniclip import model as model_module
from miniclip.checks.core import (
    CheckFailed,
    compare,
    describe,
    exercise,
    explained,
    randn,
    randomize,
)
from miniclip.config import CLIPConfig, TextConfig, VisionConfig

__all__ = ["check_clip", "check_cosine_logits", "check_from_hf"]


def cosine_logits(
    text_features: torch.Tensor, image_features: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """(N_t, D) and (N_i, D) features -> (N_t, N_i) logits_per_text = exp(logit_scale) * cosines.

    The three lines of `CLIP.forward` in miniclip/model.py that compare the two towers.
    """
    text_embeds = F.normalize(text_features, dim=-1)  # unit length: t / |t|
    image_embeds = F.normalize(image_features, dim=-1)
    return logit_scale.exp() * text_embeds @ image_embeds.t()  # (N_t, N_i)


@exercise("cosine_logits", cosine_logits)
def check_cosine_logits(cosine_logits_fn: Callable) -> str:
    # rows of very different lengths, so that a missing normalisation shows
    text = randn(3, 8, seed=60) * torch.tensor([[0.1], [1.0], [10.0]])
    image = randn(5, 8, seed=61) * torch.tensor([[3.0], [0.2], [1.0], [7.0], [0.5]])
    for logit_scale in (math.log(1 / 0.07), math.log(100)):
        scale = torch.tensor(logit_scale)
        t, i = F.normalize(text, dim=-1), F.normalize(image, dim=-1)
        cosines = t @ i.t()
        mistakes = [
            (scale.exp() * text @ image.t(),
             ("the features were not normalised: divide each row by its length first "
              "(F.normalize(x, dim=-1)), or the longest vectors win every comparison.")),
            (scale.exp() * F.normalize(text, dim=0) @ F.normalize(image, dim=0).t(),
             ("normalised over the batch axis (dim=0); each feature vector, a row, must have "
              "length 1: normalise over dim=-1.")),
            (scale.exp() * t @ image.t(), "only the text features were normalised; normalise both."),
            (scale.exp() * text @ i.t(), "only the image features were normalised; normalise both."),
            (cosines, ("that is the cosine similarity alone; multiply it by the scale "
                       "exp(logit_scale) = 1/τ.")),
            (scale * cosines, ("multiplied by logit_scale itself; it is the *logarithm* of the "
                               "scale, so multiply by logit_scale.exp().")),
            (cosines / scale.exp(), "divided by exp(logit_scale); multiply by it (it is 1/τ)."),
            (cosines / 0.07, ("scaled by the initial 1/0.07; use the logit_scale given, it is "
                              "learned and moves away from its initial value.")),
        ]
        what = (f"cosine_logits(text_features (3, 8), image_features (5, 8), "
                f"logit_scale=ln {math.exp(logit_scale):.4g})")
        inputs = {"text_features": text, "image_features": image, "logit_scale": scale}
        copies = {name: value.clone() for name, value in inputs.items()}
        got = cosine_logits_fn(*copies.values())
        changed = [name for name in inputs if not torch.equal(copies[name], inputs[name])]
        if changed:
            arguments = "argument" if len(changed) == 1 else "arguments"
            hint = ("`logit_scale.exp_()` overwrites the caller's logit_scale with its exponential; "
                    "logit_scale.exp() makes a new tensor." if changed == ["logit_scale"] else
                    "`x /= x.norm(...)` overwrites the caller's tensor (and, in training, "
                    "values that autograd still needs); make a new one: "
                    "x = x / x.norm(dim=-1, keepdim=True), or F.normalize(x, dim=-1).")
            raise CheckFailed(f"{what} changed its {arguments} {' and '.join(changed)} in place"
                              f"\nHint: {hint}")
        if isinstance(got, torch.Tensor) and got.shape == (5, 3):
            raise CheckFailed(f"{what}: shape (5, 3), expected (3, 5)\nHint: that is "
                              "logits_per_image; return logits_per_text, one row per text "
                              "(text_embeds @ image_embeds.t()).")
        compare(what, got, cosine_logits(text, image, scale), mistakes, exact_dtype=True)
    inputs = {"text_features": text.clone().requires_grad_(),
              "image_features": image.clone().requires_grad_(),
              "logit_scale": torch.tensor(math.log(20), requires_grad=True)}
    logits = cosine_logits_fn(*inputs.values())
    gradients_reach("cosine_logits(...) with inputs that require grad, then "
                    "(logits * weights).sum().backward()", logits, inputs)
    return ("exp(logit_scale) · cos(text i, image j), a (N_texts, N_images) matrix, whatever "
            "the lengths of the features")


NO_GRADIENT_HINTS = {
    "logit_scale": ("the scale was read as a Python number (.item(), math.exp(...)) or detached, so "
                    "autograd cannot reach it and the temperature never learns; multiply by "
                    "logit_scale.exp(), a tensor."),
    "text": ("the text side was cut off from autograd (torch.no_grad() or .detach() in "
             "encode_text, say); the loss must reach the text tower and its projection."),
    "vis": ("the image side was cut off from autograd (torch.no_grad() or .detach() in "
              "encode_image, say); the loss must reach the image tower and its projection."),
}


def gradients_reach(what: str, logits, tensors: dict[str, torch.Tensor]) -> None:
    """Backpropagate a weighted sum of `logits`; each of `tensors` must get a finite, non-zero
    gradient (a learned temperature and two towers that learn)."""
    if not isinstance(logits, torch.Tensor) or not logits.requires_grad:
        raise CheckFailed(f"{what}: the logits are {describe(logits)} that autograd cannot "
                          "trace back to the inputs\nHint: compute them with tensor operations "
                          "only: no torch.no_grad(), .detach(), .item(), numpy or math.")
    weights = torch.randn(logits.shape, generator=torch.Generator().manual_seed(65))
    try:
        (logits * weights).sum().backward()
    except RuntimeError as error:
        first = " ".join(str(error).split())[:240]
        raise CheckFailed(f"{what} raised RuntimeError: {first}\nHint: an in-place operation "
                          "(x /= x.norm(...), x.div_(...)) overwrote a tensor that autograd still "
                          "needs; make a new one: x = x / x.norm(dim=-1, keepdim=True), or "
                          "F.normalize(x, dim=-1).") from None
    for name, tensor in tensors.items():
        gradient = tensor.grad
        if gradient is None or not torch.isfinite(gradient).all() or not gradient.abs().sum() > 0:
            side = next((key for key in NO_GRADIENT_HINTS if key in name), None)  # vis: vision, visual
            found = "no gradient" if gradient is None else "a zero or non-finite gradient"
            raise CheckFailed(f"{what}: {found} reached {name}"
                              + (f"\nHint: {NO_GRADIENT_HINTS[side]}" if side else ""))


def small_config() -> CLIPConfig:
    """Towers of different widths (24 and 32) and a joint space of 16, so that a mix-up shows."""
    return CLIPConfig(
        text=TextConfig(vocab_size=64, hidden_size=24, intermediate_size=48, num_hidden_layers=1,
                        num_attention_heads=4, max_position_embeddings=8, bos_token_id=62,
                        eos_token_id=63),
        vision=VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                            num_attention_heads=4, image_size=16, patch_size=8),
        projection_dim=16,
    )


def reference_pair(seed: int):
    """A random transformers.CLIPModel with non-trivial biases and logit_scale = ln 20, and
    miniclip's CLIP with the same weights."""
    from transformers import CLIPModel

    config = small_config()
    torch.manual_seed(seed)
    theirs = randomize(CLIPModel(config.to_hf()), seed=seed)
    with torch.no_grad():
        theirs.logit_scale.fill_(math.log(20))
    ours = model_module.CLIP(config).eval()
    ours.load_state_dict(theirs.state_dict())
    return config, theirs, ours


def small_batch(config: CLIPConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Three texts and two images: a rectangular (3, 2) logits_per_text.

    Text 0 fills the 6 positions, text 1 is padded on the right, text 2 on the left. Right
    padding cannot change the pooled vector (the causal mask already hides it from
    <|endoftext|>); left padding can, so only the attention_mask keeps text 2 right.
    """
    generator = torch.Generator().manual_seed(62)
    input_ids = torch.randint(3, 60, (3, 6), generator=generator)
    attention_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]])
    input_ids[attention_mask == 0] = config.text.pad_token_id
    input_ids[0, 5] = input_ids[1, 3] = input_ids[2, 5] = config.text.eos_token_id
    size = config.vision.image_size
    pixel_values = torch.randn(2, 3, size, size, generator=generator)
    return input_ids, attention_mask, pixel_values


def check_width(what: str, got, projected: int, hidden: int, projection: str) -> None:
    """A features tensor of the tower's width means the projection was forgotten."""
    if isinstance(got, torch.Tensor) and got.dim() == 2 and got.size(-1) == hidden != projected:
        raise CheckFailed(f"{what}: shape {tuple(got.shape)}, expected ({got.size(0)}, {projected})"
                          f"\nHint: that is the tower's pooled output; map it into the joint "
                          f"space with self.{projection}.")


@exercise("CLIP", model_module.CLIP)
def check_clip(clip_class: type) -> str:
    config, theirs, reference = reference_pair(seed=63)
    fresh = clip_class(config)
    scale = getattr(fresh, "logit_scale", None)
    if not isinstance(scale, nn.Parameter):
        raise CheckFailed(f"CLIP(config).logit_scale is {describe(scale)}, expected an "
                          "nn.Parameter\nHint: the temperature is learned with the weights: "
                          "nn.Parameter(torch.tensor(config.logit_scale_init_value)).")
    compare("CLIP(config).logit_scale, freshly built", scale.detach(),
            torch.tensor(config.logit_scale_init_value), [
                (torch.tensor(0.07), ("that is τ itself; store the logarithm of the scale 1/τ: "
                                      "config.logit_scale_init_value = ln(1/0.07).")),
                (torch.tensor(1 / 0.07), ("that is the scale 1/τ; store its logarithm, "
                                          "config.logit_scale_init_value = ln(1/0.07) = 2.659.")),
                (torch.tensor([config.logit_scale_init_value]),
                 ("a vector of one number; the scale is a 0-d tensor, as transformers' is: "
                  "torch.tensor(value), not torch.tensor([value]).")),
            ], atol=1e-6)
    other = dataclasses.replace(config, logit_scale_init_value=math.log(10))
    other_scale = getattr(clip_class(other), "logit_scale", None)
    compare("CLIP(config).logit_scale, freshly built from a config with logit_scale_init_value "
            "= ln 10", other_scale.detach() if isinstance(other_scale, torch.Tensor) else other_scale,
            torch.tensor(other.logit_scale_init_value), [
                (torch.tensor(config.logit_scale_init_value),
                 ("that is ln(1/0.07), the default; read the initial value from the config, "
                  "config.logit_scale_init_value, which a config may set otherwise.")),
            ], atol=1e-6)
    yours = fresh
    have, want = set(yours.state_dict()), set(theirs.state_dict())
    if have != want:
        raise CheckFailed(
            f"your CLIP has parameters {sorted(have - want) or 'none extra'} and lacks "
            f"{sorted(want - have) or 'none'}; its names must be transformers.CLIPModel's so that "
            "its weights load with load_state_dict\nHint: the projections are "
            "nn.Linear(..., bias=False), named text_projection and visual_projection.")
    try:
        yours.load_state_dict(theirs.state_dict())
    except RuntimeError as error:
        raise CheckFailed(f"the weights of transformers.CLIPModel do not fit yours: {error}\nHint: "
                          "text_projection maps config.text.hidden_size to projection_dim, "
                          "visual_projection config.vision.hidden_size to projection_dim.") from None
    yours.eval()

    input_ids, attention_mask, pixel_values = small_batch(config)
    text_width, image_width = config.text.hidden_size, config.vision.hidden_size
    dim = config.projection_dim
    with torch.no_grad():
        text_tower = reference.text_model(input_ids, attention_mask)
        image_tower = reference.vision_model(pixel_values)
        their_text = theirs.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
        their_image = theirs.get_image_features(pixel_values=pixel_values)
        if not isinstance(their_text, torch.Tensor):  # transformers >= 5: an output object
            their_text, their_image = their_text.pooler_output, their_image.pooler_output
        their_output = theirs(input_ids=input_ids, pixel_values=pixel_values,
                              attention_mask=attention_mask)

        call = "encode_text(input_ids, attention_mask) for 3 texts, padded on the right and left"
        got = yours.encode_text(input_ids, attention_mask)
        check_width(call, got, dim, text_width, "text_projection")
        text_features = reference.encode_text(input_ids, attention_mask)
        compare(call, got, text_features, [
            (F.normalize(text_features, dim=-1),
             ("normalised; encode_text returns the projected features *before* normalisation, as "
              "OpenAI's encode_text and transformers' get_text_features do. forward normalises.")),
            (reference.text_projection(text_tower.last_hidden_state[:, 0]),
             ("pooled at position 0, <|startoftext|>, which has seen no word (the attention is "
              "causal); use the tower's pooler_output, taken at <|endoftext|>.")),
            (reference.encode_text(input_ids),
             ("attention_mask was not passed on to the text tower; text 2 is padded on the "
              "left, where only the mask hides the padding.")),
        ])
        compare(f"{call}, against transformers' get_text_features", got, their_text)

        call = "encode_image(pixel_values) for 2 images"
        got = yours.encode_image(pixel_values)
        check_width(call, got, dim, image_width, "visual_projection")
        image_features = reference.encode_image(pixel_values)
        compare(call, got, image_features, [
            (F.normalize(image_features, dim=-1),
             ("normalised; encode_image returns the projected features *before* normalisation, as "
              "transformers' get_image_features does. forward normalises.")),
            (reference.visual_projection(image_tower.last_hidden_state.mean(dim=1)),
             ("the mean over all tokens; CLIP's image is pooled at its class token, after "
              "post_layernorm: the tower's pooler_output.")),
        ])
        compare(f"{call}, against transformers' get_image_features", got, their_image)

        call = "forward(input_ids, pixel_values, attention_mask) for 3 texts and 2 images"
        output = yours(input_ids, pixel_values, attention_mask)
        expected = reference(input_ids, pixel_values, attention_mask)
        for name in ("logits_per_text", "logits_per_image", "text_embeds", "image_embeds"):
            if not hasattr(output, name):
                raise CheckFailed(f"{call} returned {describe(output)} without .{name}; return a "
                                  "CLIPOutput(logits_per_image=..., logits_per_text=..., "
                                  "text_embeds=..., image_embeds=...)")
        text_embeds = F.normalize(text_features, dim=-1)
        image_embeds = F.normalize(image_features, dim=-1)
        cosines = text_embeds @ image_embeds.t()  # (3, 2)
        scale = reference.logit_scale
        for name, got in (("logits_per_text", output.logits_per_text),
                          ("logits_per_image", output.logits_per_image)):
            want = getattr(expected, name)
            if isinstance(got, torch.Tensor) and got.shape == want.t().shape != want.shape:
                other = "logits_per_image" if name == "logits_per_text" else "logits_per_text"
                raise CheckFailed(f"{call}: .{name} has shape {tuple(got.shape)}, expected "
                                  f"{tuple(want.shape)}\nHint: that is {other}; {name} has one "
                                  f"row per {'text' if name == 'logits_per_text' else 'image'}, "
                                  "and the other matrix is its transpose.")
            flip = (lambda x: x) if name == "logits_per_text" else (lambda x: x.t())
            compare(f"{call}: .{name}", got, want, [
                (flip(cosines), "the cosines alone; multiply by logit_scale.exp()."),
                (flip(scale * cosines), ("multiplied by logit_scale itself; it is the logarithm of "
                                         "the scale: multiply by logit_scale.exp().")),
                (flip(cosines / 0.07), ("scaled by the initial 1/0.07; use the learned "
                                        "self.logit_scale (here ln 20).")),
                (flip(scale.exp() * text_features @ image_features.t()),
                 "the features were not normalised before the product."),
                (flip(scale.exp() * F.normalize(reference.encode_text(input_ids), dim=-1)
                      @ image_embeds.t()),
                 "attention_mask was not passed on to the text tower."),
            ])
            compare(f"{call}: .{name}, against transformers.CLIPModel", got, getattr(their_output, name))
        for name, want, raw in (("text_embeds", text_embeds, text_features),
                                ("image_embeds", image_embeds, image_features)):
            got = getattr(output, name)
            compare(f"{call}: .{name}", got, want, [
                (raw, "not normalised; the embeddings CLIPOutput returns have length 1."),
            ])
            compare(f"{call}: .{name}, against transformers.CLIPModel", got, getattr(their_output, name))
    learned = ["logit_scale", "text_projection.weight", "visual_projection.weight",
               "text_model.embeddings.token_embedding.weight",
               "vision_model.embeddings.patch_embedding.weight"]
    yours.zero_grad(set_to_none=True)
    logits = yours(input_ids, pixel_values, attention_mask).logits_per_text
    gradients_reach(f"{call}, then (logits_per_text * weights).sum().backward()", logits,
                    {name: yours.get_parameter(name) for name in learned})
    return ("projections without bias, logit_scale = ln(1/0.07), both logit matrices, gradients "
            "to the temperature and both towers; same names, same outputs as transformers.CLIPModel")


@exercise("from_hf", model_module.CLIP.from_hf)
def check_from_hf(from_hf: Callable) -> str:
    from transformers import PreTrainedModel

    config, theirs, _ = reference_pair(seed=64)
    try:
        yours = from_hf(theirs)
    except NotImplementedError:  # a RuntimeError too, but it means "not written yet"
        raise
    except RuntimeError as error:  # load_state_dict's size mismatch
        words = " ".join(str(error).split())
        first = words if len(words) <= 200 else words[:200] + " ..."
        raise CheckFailed(f"from_hf(hf_model) raised RuntimeError: {first}\nHint: build the "
                          "config from the model's own, CLIPConfig.from_hf(hf_model.config), "
                          "not from a preset.") from None
    if isinstance(yours, PreTrainedModel):
        raise CheckFailed(f"from_hf(hf_model) returned a transformers {type(yours).__name__}; "
                          "return a miniclip CLIP holding its weights")
    if not isinstance(yours, nn.Module):
        raise CheckFailed(f"from_hf(hf_model) returned {describe(yours)}; return a miniclip CLIP")
    theirs_state, yours_state = theirs.state_dict(), yours.state_dict()
    if set(yours_state) != set(theirs_state):
        missing = sorted(set(theirs_state) - set(yours_state))
        raise CheckFailed(f"from_hf(hf_model) gave a model that lacks {missing[:3]} ...; build "
                          "miniclip's CLIP, whose parameter names are transformers'")
    # logit_scale first: the hf model's is ln 20, a model never loaded still has ln(1/0.07)
    others_copied = all(torch.equal(yours_state[key], value) for key, value in theirs_state.items()
                        if key != "logit_scale")
    compare("from_hf(hf_model).logit_scale", yours_state["logit_scale"], theirs_state["logit_scale"],
            [(torch.tensor(config.logit_scale_init_value),
              ("the initial value ln(1/0.07), though every other tensor was copied: logit_scale "
               "belongs to the model itself, not to a submodule. One "
               "model.load_state_dict(hf_model.state_dict()) copies everything." if others_copied
               else "the initial value ln(1/0.07): the weights were not copied; "
               "model.load_state_dict(hf_model.state_dict())."))], atol=0, rtol=0)
    for key, value in theirs_state.items():
        compare(f"from_hf(hf_model).state_dict()[{key!r}]", yours_state[key], value, atol=0, rtol=0)
    input_ids, attention_mask, pixel_values = small_batch(config)
    call = "from_hf(hf_model)(input_ids, pixel_values, attention_mask)"
    with torch.no_grad():
        with explained(call, ValueError, "", (  # a config made by hand: another <|endoftext|> id, say
                "the weights are right, the config is not; build it from the model's own, "
                "CLIPConfig.from_hf(hf_model.config), which carries its token ids, sizes and eps.")):
            got = yours.eval()(input_ids, pixel_values, attention_mask).logits_per_text
        want = theirs(input_ids=input_ids, pixel_values=pixel_values,
                      attention_mask=attention_mask).logits_per_text
    compare("from_hf(hf_model)(input_ids, pixel_values, attention_mask).logits_per_text, "
            "against the transformers model", got, want)
    return (f"all {len(theirs_state)} tensors copied by name with one load_state_dict; "
            "same logits as transformers")
