"""Chapter 11's checks accept the reference and reject plausible wrong answers, saying why."""

import dataclasses
import json
from pathlib import Path

import torch
from check_cases import reference_and_wrong_answer_tests

from miniclip import checks
from miniclip.checks.ch11_reference import PIPELINE_TEMPLATE, write_config, zero_shot_probabilities


def config_dict(config):
    return json.loads(Path(write_config(config, _scratch())).read_text())


def _scratch():
    import tempfile

    return tempfile.mkdtemp()


def writing(change):
    """A write_config whose dict went through `change(values, config)` before being written."""
    def wrong(config, directory):
        values = json.loads(write_config(config, directory).read_text())
        change(values, config)
        path = Path(directory) / "config.json"
        path.write_text(json.dumps(values))
        return path

    return wrong


def miniclip_layout(values, config):
    values.clear()
    values.update({"model_type": "clip", **config.to_dict()})


def without(*keys, section=None):
    def change(values, config):
        target = values[section] if section else values
        for key in keys:
            target.pop(key)

    return change


def scale_in_text_config(values, config):
    values["text_config"]["logit_scale_init_value"] = values.pop("logit_scale_init_value")


def returns_nothing(config, directory):
    write_config(config, directory)


def returns_the_directory(config, directory):
    write_config(config, directory)
    return directory


def wrong_file_name(config, directory):
    path = Path(directory) / "clip_config.json"
    path.write_text(write_config(config, directory).read_text())
    (Path(directory) / "config.json").unlink()
    return path


def sizes_only(config, directory):
    """Only the sizes of each tower, the token ids and activations left to transformers."""
    keep = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "max_position_embeddings", "image_size", "patch_size",
            "layer_norm_eps", "hidden_act")
    values = {"model_type": "clip", "projection_dim": config.projection_dim,
              "text_config": {k: v for k, v in dataclasses.asdict(config.text).items() if k in keep},
              "vision_config": {k: v for k, v in dataclasses.asdict(config.vision).items() if k in keep}}
    path = Path(directory) / "config.json"
    path.write_text(json.dumps(values))
    return path


WRONG_CONFIGS = {
    "miniclip's own layout": (writing(miniclip_layout), "'text_config' and 'vision_config'"),
    "no model_type": (writing(without("model_type")), "model_type alone"),
    "no token ids": (sizes_only, "eos_token_id = 49407"),
    "no projection_dim": (writing(without("projection_dim")), "projection_dim sits at the top level"),
    "no logit_scale_init_value": (writing(without("logit_scale_init_value")),
                                  "read logit_scale_init_value = 2.6592, expected 2.99573"),
    "logit_scale_init_value in text_config": (writing(scale_in_text_config),
                                              "logit_scale_init_value sits at the top level"),
    "default activation": (writing(without("hidden_act", section="text_config")),
                           "text_config.hidden_act = 'quick_gelu'"),
    "no patch size": (writing(without("patch_size", section="vision_config")),
                      "vision_config.patch_size = 32"),
    "returns nothing": (returns_nothing, "return the path"),
    "returns the directory": (returns_the_directory, "(the directory itself); return the path"),
    "other file name": (wrong_file_name, "wrote no config.json"),
}


def label_order_lost(*args, **kwargs):
    return zero_shot_probabilities(*args, **kwargs).sort(descending=True).values


def bare_labels(model, tokenizer, image_processor, image, labels, template=PIPELINE_TEMPLATE):
    return zero_shot_probabilities(model, tokenizer, image_processor, image, labels, "{}")


def template_ignored(model, tokenizer, image_processor, image, labels, template=PIPELINE_TEMPLATE):
    return zero_shot_probabilities(model, tokenizer, image_processor, image, labels)


def unscaled(model, tokenizer, image_processor, image, labels, template=PIPELINE_TEMPLATE):
    probabilities = zero_shot_probabilities(model, tokenizer, image_processor, image, labels, template)
    logits = probabilities.log()  # the logits, up to a constant that softmax ignores
    return (logits / model.logit_scale.exp()).softmax(-1)


def sigmoid(model, tokenizer, image_processor, image, labels, template=PIPELINE_TEMPLATE):
    texts = tokenizer([template.format(label) for label in labels], padding="longest")
    pixels = image_processor(image)["pixel_values"]
    with torch.no_grad():
        return model(texts["input_ids"], pixels, texts["attention_mask"]).logits_per_image[0].sigmoid()


def padded_to_context_length(model, tokenizer, image_processor, image, labels, template=PIPELINE_TEMPLATE):
    texts = tokenizer([template.format(label) for label in labels])  # padding="max_length", 77
    pixels = image_processor(image)["pixel_values"]
    return model(texts["input_ids"], pixels, texts["attention_mask"]).logits_per_image[0].softmax(-1)


WRONG_PROBABILITIES = {
    "sorted": (label_order_lost, "order of labels"),
    "bare labels": (bare_labels, "format each with the template"),
    "template ignored": (template_ignored, "template argument was ignored"),
    "unscaled": (unscaled, "softmax of the cosines"),
    "sigmoid": (sigmoid, "SigLIP"),
    "padded to 77": (padded_to_context_length, "padding='longest'"),
}

REFERENCES = [
    (checks.check_write_config, write_config),
    (checks.check_zero_shot_probabilities, zero_shot_probabilities),
]
WRONG_ANSWERS = [
    (checks.check_write_config, WRONG_CONFIGS),
    (checks.check_zero_shot_probabilities, WRONG_PROBABILITIES),
]


test_reference_passes_with_one_line, test_wrong_answer_fails_and_says_why = reference_and_wrong_answer_tests(
    REFERENCES, WRONG_ANSWERS)


def test_reference_config_is_what_miniclip_writes():
    """The exercise's plain dict and miniclip.hf.config_json (through transformers) agree."""
    from miniclip.checks.ch11_reference import config_case
    from miniclip.hf import config_json

    config = config_case()
    ours, package = config_dict(config), json.loads(config_json(config))
    for section in ("text_config", "vision_config"):
        for key, value in ours[section].items():
            assert package[section][key] == value, (section, key)
    assert package["projection_dim"] == ours["projection_dim"]
    assert package["logit_scale_init_value"] == ours["logit_scale_init_value"]
    assert package["model_type"] == ours["model_type"] == "clip"
