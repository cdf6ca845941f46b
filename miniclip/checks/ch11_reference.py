"""Checks of chapter 11 ("Meeting the reference"): the config.json from which transformers builds
a CLIPModel, and the probabilities that transformers' zero-shot pipeline computes.

Neither answer is written this way in the package (`miniclip.hf.config_json` goes through
transformers' own CLIPConfig; the pipeline is transformers' code), so the reference answers
live here, for `show_solution`. Each check writes a small model to a temporary folder and lets
transformers itself read it: the judge is the reference library, not only miniclip.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file

from miniclip.checks.core import CheckFailed, compare, describe, exercise, randn
from miniclip.config import CLIPConfig, TextConfig, VisionConfig
from miniclip.image import ImageProcessor
from miniclip.model import CLIP
from miniclip.tokenizer import Tokenizer

__all__ = ["check_write_config", "check_zero_shot_probabilities"]

PIPELINE_TEMPLATE = "This is a photo of {}."  # the pipeline's default hypothesis_template


# ---- exercise 1: config.json -----------------------------------------------------------------


def write_config(config: CLIPConfig, directory: str | Path) -> Path:
    """Write directory/config.json, from which transformers builds a CLIPModel shaped like `config`."""
    values = {
        "model_type": "clip",  # how AutoConfig and the pipelines find the class that reads the rest
        "architectures": ["CLIPModel"],
        "text_config": dataclasses.asdict(config.text),  # every field, under transformers' names
        "vision_config": dataclasses.asdict(config.vision),
        "projection_dim": config.projection_dim,
        "logit_scale_init_value": config.logit_scale_init_value,
    }
    path = Path(directory) / "config.json"
    path.write_text(json.dumps(values, indent=2))
    return path


def config_case() -> CLIPConfig:
    """Sizes of no preset, a 100-token vocabulary and non-default activations, so that a field
    left to transformers' defaults shows."""
    return CLIPConfig(
        text=TextConfig(vocab_size=100, hidden_size=24, intermediate_size=40, num_hidden_layers=2,
                        num_attention_heads=3, max_position_embeddings=12, hidden_act="gelu",
                        pad_token_id=99, bos_token_id=98, eos_token_id=99),
        vision=VisionConfig(hidden_size=16, intermediate_size=48, num_hidden_layers=1,
                            num_attention_heads=2, image_size=16, patch_size=8, layer_norm_eps=1e-6),
        projection_dim=8,
        logit_scale_init_value=math.log(20),
    )


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No progress bars or warnings on stderr while a check loads a model: the check says itself
    what is wrong, and the notebook compares stderr."""
    from transformers.utils import logging

    was_enabled, verbosity = logging.is_progress_bar_enabled(), logging.get_verbosity()
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if was_enabled:
            logging.enable_progress_bar()


def first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


FIELD_HINTS = {
    "eos_token_id": ("transformers reads the text feature at the first eos_token_id; left out, it "
                     "defaults to 49407, an id this 100-token vocabulary does not have."),
    "bos_token_id": "the token ids belong in text_config too, like every field of config.text.",
    "pad_token_id": "the token ids belong in text_config too, like every field of config.text.",
    "hidden_act": ("transformers defaults to quick_gelu; this model's text tower uses gelu, so the "
                   "activation must be written out."),
}


def compare_fields(section: str, loaded, expected) -> None:
    """Each field of a miniclip tower config against the transformers config read from the file."""
    # eos_token_id first: of all fields left to a default, it is the one that changes the outputs
    fields = sorted(dataclasses.fields(expected), key=lambda f: f.name != "eos_token_id")
    for field in fields:
        want, got = getattr(expected, field.name), getattr(loaded, field.name, None)
        if got != want:
            hint = FIELD_HINTS.get(field.name, f"every field of config.{section.split('_')[0]} goes "
                                   f"into {section}: dataclasses.asdict gives them all.")
            raise CheckFailed(f"transformers read {section}.{field.name} = {got!r} from your "
                              f"config.json, expected {want!r}\nHint: {hint}")


@exercise("write_config", write_config)
def check_write_config(write_config_fn: Callable) -> str:
    import transformers

    config = config_case()
    torch.manual_seed(110)
    model = CLIP(config).eval()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(30))  # a trained value, not the initial one
    with tempfile.TemporaryDirectory() as folder, quiet_transformers():
        folder = Path(folder)
        tensors = {key: value.contiguous() for key, value in model.state_dict().items()}
        save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
        returned = write_config_fn(config, folder)
        path = folder / "config.json"
        if not path.exists():
            written = sorted(p.name for p in folder.iterdir() if p.name != "model.safetensors")
            raise CheckFailed(f"write_config(config, directory) wrote no config.json into the "
                              f"directory (it holds {written or 'nothing else'}); write the JSON "
                              "to directory / 'config.json'")
        if not isinstance(returned, (str, os.PathLike)):
            raise CheckFailed(f"write_config returned {describe(returned)}; return the path of the "
                              "file it wrote, directory / 'config.json'")
        if Path(returned) != path:
            which = " (the directory itself)" if Path(returned) == folder else ""
            raise CheckFailed(f"write_config returned {returned!r}{which}; return the path of the "
                              f"file it wrote, directory / 'config.json': {path!r}")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise CheckFailed(f"config.json is not valid JSON ({error}); write json.dumps(values)") from None
        if not isinstance(values, dict):
            raise CheckFailed(f"config.json holds a {type(values).__name__}; it must be one JSON object")
        if "text_config" not in values and ("text" in values or "vision" in values):
            raise CheckFailed("config.json has the keys 'text' and 'vision' of miniclip's own "
                              "CLIPConfig.to_dict; transformers reads 'text_config' and "
                              "'vision_config' (and ignores the rest, silently)")
        if values.get("model_type") != "clip":
            raise CheckFailed(f"config.json has model_type {values.get('model_type')!r}, expected "
                              "'clip'\nHint: AutoConfig and pipeline() choose the class that "
                              "reads the file from model_type alone.")
        loaded = transformers.AutoConfig.from_pretrained(folder)
        if type(loaded).__name__ != "CLIPConfig":
            raise CheckFailed(f"AutoConfig read a {type(loaded).__name__}, expected a CLIPConfig")
        compare_fields("text_config", loaded.text_config, config.text)
        compare_fields("vision_config", loaded.vision_config, config.vision)
        if loaded.projection_dim != config.projection_dim:
            raise CheckFailed(f"transformers read projection_dim = {loaded.projection_dim!r}, "
                              f"expected {config.projection_dim}\nHint: projection_dim sits at "
                              "the top level of config.json, beside text_config and vision_config.")
        if loaded.logit_scale_init_value != config.logit_scale_init_value:
            raise CheckFailed(f"transformers read logit_scale_init_value = "
                              f"{loaded.logit_scale_init_value!r}, expected "
                              f"{config.logit_scale_init_value!r}\nHint: logit_scale_init_value "
                              "sits at the top level of config.json, beside projection_dim. Left "
                              "out, transformers takes CLIP's ln(1/0.07) = 2.6592: loaded weights "
                              "keep their logit_scale, but a model built fresh from the file "
                              "starts at the wrong temperature.")
        try:
            hf_model, info = transformers.CLIPModel.from_pretrained(folder, output_loading_info=True)
        except Exception as error:  # transformers raises several kinds for a config that does not fit
            raise CheckFailed(f"transformers.CLIPModel.from_pretrained failed: {first_line(error)}") from None
        problems = {kind: sorted(keys) for kind, keys in info.items() if keys}
        if problems:
            raise CheckFailed(f"transformers loaded the weights with {problems}; every tensor should "
                              "find its place")
        input_ids = torch.tensor([[98, 5, 17, 42, 99, 99], [98, 7, 99, 99, 99, 99]])
        attention_mask = (torch.arange(6) < torch.tensor([[5], [3]])).long()
        pixel_values = randn(3, 3, 16, 16, seed=111)
        with torch.no_grad():
            theirs = hf_model.eval()(input_ids=input_ids, pixel_values=pixel_values,
                                     attention_mask=attention_mask).logits_per_text
            ours = model(input_ids, pixel_values, attention_mask).logits_per_text
    compare("logits_per_text of transformers' CLIPModel loaded from your folder, against miniclip's",
            theirs, ours, atol=1e-4, rtol=1e-4)
    count = len(dataclasses.fields(config.text)) + len(dataclasses.fields(config.vision))
    return (f"AutoConfig reads a CLIPConfig with all {count} tower fields and projection_dim; "
            "CLIPModel.from_pretrained places every tensor and gives miniclip's logits")


# ---- exercise 2: what the zero-shot pipeline computes -----------------------------------------


def zero_shot_probabilities(
    model: CLIP, tokenizer: Tokenizer, image_processor: ImageProcessor, image: Image.Image,
    labels: list[str], template: str = PIPELINE_TEMPLATE,
) -> torch.Tensor:
    """(len(labels),) probabilities that `image` shows each label, in the order of `labels`."""
    texts = tokenizer([template.format(label) for label in labels], padding="longest")
    pixel_values = image_processor(image)["pixel_values"]  # (1, 3, S, S)
    with torch.no_grad():
        output = model(texts["input_ids"], pixel_values, texts["attention_mask"])
    return output.logits_per_image[0].softmax(dim=-1)  # softmax over the labels


LABELS = ["red circle", "blue square", "green star", "yellow cross", "purple diamond"]


def pipeline_case() -> tuple[CLIP, Tokenizer, ImageProcessor, Image.Image]:
    """A small random CLIP with a vocabulary learnt from a few captions, 16 text positions (the
    tokenizer's context_length stays 77) and a logit scale of 50; a non-square shapes picture."""
    from miniclip.data.shapes import Shapes

    words = [f"{template} {label}" for label in LABELS
             for template in ("this is a photo of", "a drawing of the")]
    tokenizer = Tokenizer.train(words * 3, vocab_size=560)
    config = CLIPConfig(
        text=TextConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64,
                        num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=16,
                        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id),
        vision=VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                            num_attention_heads=2, image_size=24, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(112)
    model = CLIP(config).eval()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(50))
    image = Shapes("test", image_size=40)[3][0].crop((0, 4, 40, 34))  # 40 x 30
    return model, tokenizer, ImageProcessor(24), image


def zero_shot_pipeline(folder: Path):
    """transformers' zero-shot pipeline on an exported folder, with the PIL image processor."""
    import transformers

    processor = transformers.AutoImageProcessor.from_pretrained(folder, backend="pil")
    return transformers.pipeline("zero-shot-image-classification", model=str(folder),
                                 image_processor=processor)


def pipeline_scores(classify, image: Image.Image, labels: list[str], template: str) -> torch.Tensor:
    """The pipeline's scores, put back in the order of `labels` (it sorts them by score)."""
    scores = {s["label"]: s["score"] for s in classify(image, candidate_labels=labels,
                                                          hypothesis_template=template)}
    return torch.tensor([scores[label] for label in labels])


@exercise("zero_shot_probabilities", zero_shot_probabilities)
def check_zero_shot_probabilities(probabilities_fn: Callable) -> str:
    model, tokenizer, image_processor, image = pipeline_case()
    with tempfile.TemporaryDirectory() as folder, quiet_transformers():
        folder = Path(folder)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        image_processor.save_pretrained(folder)
        classify = zero_shot_pipeline(folder)
        for template in (None, "a drawing of the {}."):
            options = {} if template is None else {"template": template}
            used = template or PIPELINE_TEMPLATE
            what = (f"zero_shot_probabilities(model, tokenizer, image_processor, image, "
                    f"{len(LABELS)} labels" + (f", template={template!r})" if template else ")"))
            try:
                got = probabilities_fn(model, tokenizer, image_processor, image, LABELS, **options)
            except ValueError as error:
                raise CheckFailed(f"{what} raised {first_line(error)}\nHint: the model has "
                                  f"{model.config.text.max_position_embeddings} text positions and "
                                  f"the tokenizer pads to its context_length, "
                                  f"{tokenizer.context_length}, unless told otherwise: pad to the "
                                  "longest prompt, padding='longest', as the pipeline does.") from None
            expected = zero_shot_probabilities(model, tokenizer, image_processor, image, LABELS, used)

            def logits(prompts: list[str]) -> torch.Tensor:
                texts = tokenizer(prompts, padding="longest")
                pixels = image_processor(image)["pixel_values"]
                with torch.no_grad():
                    return model(texts["input_ids"], pixels, texts["attention_mask"]).logits_per_image[0]

            right = logits([used.format(label) for label in LABELS])
            mistakes = [
                (logits(LABELS).softmax(-1),
                 "the labels went to the model bare; format each with the template first, "
                 "template.format(label)."),
                ((right / model.logit_scale.exp()).softmax(-1),
                 "softmax of the cosines; the pipeline takes the softmax of logits_per_image, "
                 "the cosines times exp(logit_scale)."),
                (right.sigmoid(), "a sigmoid per label is SigLIP's rule; CLIP's pipeline takes a "
                 "softmax over the labels, so the probabilities sum to 1."),
                (right, "those are the logits; the pipeline turns them into probabilities with a softmax."),
                (expected.sort(descending=True).values,
                 "sorted from most to least likely; the pipeline sorts only its printed list. Return "
                 "them in the order of labels."),
                (torch.ones(len(LABELS)),
                 "a softmax over the image axis of a (1, labels) matrix gives ones; take it over "
                 "the labels, dim=-1."),
            ]
            if template is not None:
                mistakes.append((logits([PIPELINE_TEMPLATE.format(label) for label in LABELS]).softmax(-1),
                                 "the template argument was ignored; format the labels with it."))
            compare(what, got, expected, mistakes, atol=1e-5)
            compare(f"{what}, against transformers' zero-shot-image-classification pipeline",
                    got, pipeline_scores(classify, image, LABELS, used), atol=1e-5)
    return ("softmax over the labels of logits_per_image, prompts made with the template; equal to "
            "transformers' zero-shot pipeline on the exported folder")
