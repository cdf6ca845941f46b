"""Chapter 06's checks accept the reference and reject plausible wrong answers, saying why;
its figures draw what they say."""

import math

import torch
import torch.nn.functional as F
from check_cases import reference_and_wrong_answer_tests
from torch import nn

from miniclip import CLIP, CLIPConfig, checks, plots_model
from miniclip.checks.ch06_model import cosine_logits
from miniclip.config import TextConfig, VisionConfig
from miniclip.model import CLIPOutput
from miniclip.text import TextTransformer
from miniclip.vision import VisionTransformer


class Answer(nn.Module):
    """The exercise's CLIP, written right; subclasses below get one thing wrong each."""

    bias = False

    def __init__(self, config: CLIPConfig):
        super().__init__()
        self.config = config
        self.text_model = TextTransformer(config.text)
        self.vision_model = VisionTransformer(config.vision)
        self.text_projection = nn.Linear(config.text.hidden_size, config.projection_dim, bias=self.bias)
        self.visual_projection = nn.Linear(config.vision.hidden_size, config.projection_dim,
                                           bias=self.bias)
        self.logit_scale = nn.Parameter(torch.tensor(self.initial_scale(config)))

    def initial_scale(self, config):
        return config.logit_scale_init_value

    def encode_text(self, input_ids, attention_mask=None):
        return self.text_projection(self.text_model(input_ids, attention_mask).pooler_output)

    def encode_image(self, pixel_values):
        return self.visual_projection(self.vision_model(pixel_values).pooler_output)

    def scale(self):
        return self.logit_scale.exp()

    def forward(self, input_ids, pixel_values, attention_mask=None):
        text_embeds = F.normalize(self.encode_text(input_ids, attention_mask), dim=-1)
        image_embeds = F.normalize(self.encode_image(pixel_values), dim=-1)
        logits_per_text = self.scale() * text_embeds @ image_embeds.t()
        return CLIPOutput(logits_per_image=logits_per_text.t(), logits_per_text=logits_per_text,
                          text_embeds=text_embeds, image_embeds=image_embeds)


class WithBias(Answer):
    bias = True


class ScaleNotLogarithm(Answer):
    def initial_scale(self, config):
        return 1 / 0.07


class ScaleHardcoded(Answer):
    def initial_scale(self, config):
        return math.log(1 / 0.07)


class ScaleAsBuffer(Answer):
    def __init__(self, config):
        super().__init__(config)
        del self.logit_scale
        self.register_buffer("logit_scale", torch.tensor(config.logit_scale_init_value))


class NormalisedFeatures(Answer):
    def encode_text(self, input_ids, attention_mask=None):
        return F.normalize(super().encode_text(input_ids, attention_mask), dim=-1)


class MaskDropped(Answer):
    def encode_text(self, input_ids, attention_mask=None):
        return super().encode_text(input_ids)


class PooledAtFirstToken(Answer):
    def encode_text(self, input_ids, attention_mask=None):
        states = self.text_model(input_ids, attention_mask).last_hidden_state
        return self.text_projection(states[:, 0])


class NotProjected(Answer):
    def encode_image(self, pixel_values):
        return self.vision_model(pixel_values).pooler_output


class MeanPooledImage(Answer):
    def encode_image(self, pixel_values):
        return self.visual_projection(self.vision_model(pixel_values).last_hidden_state.mean(dim=1))


class UnscaledLogits(Answer):
    def scale(self):
        return 1.0


class ScaleNotExponentiated(Answer):
    def scale(self):
        return self.logit_scale


class InitialScaleHardcoded(Answer):
    def scale(self):
        return 1 / 0.07


class LogitsSwapped(Answer):
    def forward(self, input_ids, pixel_values, attention_mask=None):
        output = super().forward(input_ids, pixel_values, attention_mask)
        output.logits_per_text, output.logits_per_image = output.logits_per_image, output.logits_per_text
        return output


class EmbedsUnnormalised(Answer):
    def forward(self, input_ids, pixel_values, attention_mask=None):
        output = super().forward(input_ids, pixel_values, attention_mask)
        output.text_embeds = self.encode_text(input_ids, attention_mask)
        return output


class TupleOutput(Answer):
    def forward(self, input_ids, pixel_values, attention_mask=None):
        output = super().forward(input_ids, pixel_values, attention_mask)
        return output.logits_per_image, output.logits_per_text


class ScaleAsNumber(Answer):
    def scale(self):
        return math.exp(self.logit_scale.item())


class TextWithoutGradient(Answer):
    def encode_text(self, input_ids, attention_mask=None):
        with torch.no_grad():
            return super().encode_text(input_ids, attention_mask)


class ImageDetached(Answer):
    def encode_image(self, pixel_values):
        return super().encode_image(pixel_values).detach()


class NormalisedInPlace(Answer):
    def forward(self, input_ids, pixel_values, attention_mask=None):
        text_embeds = self.encode_text(input_ids, attention_mask)
        text_embeds /= text_embeds.norm(dim=-1, keepdim=True)
        image_embeds = F.normalize(self.encode_image(pixel_values), dim=-1)
        logits_per_text = self.scale() * text_embeds @ image_embeds.t()
        return CLIPOutput(logits_per_image=logits_per_text.t(), logits_per_text=logits_per_text,
                          text_embeds=text_embeds, image_embeds=image_embeds)


class ScaleAsVector(Answer):
    def __init__(self, config):
        super().__init__(config)
        self.logit_scale = nn.Parameter(torch.tensor([config.logit_scale_init_value]))


def normalised_over(dim):
    def wrong(text, image, logit_scale):
        return logit_scale.exp() * F.normalize(text, dim=dim) @ F.normalize(image, dim=dim).t()
    return wrong


def normalised_in_place(text_features, image_features, logit_scale):
    text_features /= text_features.norm(dim=-1, keepdim=True)
    image_features /= image_features.norm(dim=-1, keepdim=True)
    return logit_scale.exp() * text_features @ image_features.t()


def from_preset(hf_model):
    model = CLIP(CLIPConfig.preset("tiny"))
    model.load_state_dict(hf_model.state_dict())
    return model


def not_loaded(hf_model):
    return CLIP(CLIPConfig.from_hf(hf_model.config))


def submodules_loaded(hf_model):
    """Each submodule's weights copied, so logit_scale, the model's own, is not."""
    model = CLIP(CLIPConfig.from_hf(hf_model.config))
    for name, module in model.named_children():
        module.load_state_dict(getattr(hf_model, name).state_dict())
    return model


def config_by_hand(hf_model):
    """The sizes copied, the token ids left at miniclip's defaults."""
    text, vision = hf_model.config.text_config, hf_model.config.vision_config
    fields = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
              "num_attention_heads", "max_position_embeddings")
    config = CLIPConfig(
        text=TextConfig(**{field: getattr(text, field) for field in fields}),
        vision=VisionConfig(**{field: getattr(vision, field) for field in fields[1:5]},
                            image_size=vision.image_size, patch_size=vision.patch_size),
        projection_dim=hf_model.config.projection_dim)
    model = CLIP(config)
    model.load_state_dict(hf_model.state_dict())
    return model


REFERENCES = [
    (checks.check_cosine_logits, cosine_logits),
    (checks.check_clip, CLIP),
    (checks.check_clip, Answer),
    (checks.check_from_hf, CLIP.from_hf),
]

WRONG_ANSWERS = {
    checks.check_cosine_logits: {
        "not normalised": (lambda t, i, s: s.exp() * t @ i.t(), "not normalised"),
        "normalised over the batch": (normalised_over(0), "dim=0"),
        "only texts normalised": (lambda t, i, s: s.exp() * F.normalize(t, dim=-1) @ i.t(),
                                  "only the text features"),
        "not exponentiated": (lambda t, i, s: s * F.normalize(t, dim=-1) @ F.normalize(i, dim=-1).t(),
                              "*logarithm*"),
        "not scaled": (lambda t, i, s: F.normalize(t, dim=-1) @ F.normalize(i, dim=-1).t(),
                       "cosine similarity alone"),
        "initial scale": (lambda t, i, s: F.normalize(t, dim=-1) @ F.normalize(i, dim=-1).t() / 0.07,
                          "initial 1/0.07"),
        "logits per image": (lambda t, i, s: s.exp() * F.normalize(i, dim=-1) @ F.normalize(t, dim=-1).t(),
                             "that is logits_per_image"),
        "in float64": (lambda t, i, s: cosine_logits(t.double(), i.double(), s.double()),
                       "dtype torch.float64, expected torch.float32 (keep the inputs' dtype"),
        "scale as a Python number": (lambda t, i, s: math.exp(s.item()) * cosine_logits(t, i, torch.tensor(0.0)),
                                     "no gradient reached logit_scale"),
        "scale detached": (lambda t, i, s: cosine_logits(t, i, s.detach()),
                           "no gradient reached logit_scale"),
        "scale exponentiated in place": (lambda t, i, s: s.exp_() * cosine_logits(t, i, torch.tensor(0.0)),
                                         "exp_()` overwrites"),
        "normalised in place": (normalised_in_place,
                                "changed its arguments text_features and image_features in place"),
    },
    checks.check_clip: {
        "projections with bias": (WithBias, "bias=False"),
        "scale not a logarithm": (ScaleNotLogarithm, "store its logarithm"),
        "scale a buffer": (ScaleAsBuffer, "nn.Parameter"),
        "initial scale not read from the config": (ScaleHardcoded, "config.logit_scale_init_value"),
        "normalised features": (NormalisedFeatures, "*before* normalisation"),
        "mask dropped": (MaskDropped, "attention_mask was not passed"),
        "pooled at <sot>": (PooledAtFirstToken, "position 0"),
        "not projected": (NotProjected, "visual_projection"),
        "mean-pooled image": (MeanPooledImage, "class token"),
        "unscaled logits": (UnscaledLogits, "cosines alone"),
        "scale not exponentiated": (ScaleNotExponentiated, "logarithm of the scale"),
        "initial scale hardcoded": (InitialScaleHardcoded, "initial 1/0.07"),
        "logit matrices swapped": (LogitsSwapped, "that is logits_per_image"),
        "embeds unnormalised": (EmbedsUnnormalised, "have length 1"),
        "a tuple": (TupleOutput, "CLIPOutput("),
        "scale as a Python number": (ScaleAsNumber, "no gradient reached logit_scale"),
        "text tower under no_grad": (TextWithoutGradient,
                                     "no gradient reached text_projection.weight\nHint: the text side"),
        "image tower detached": (ImageDetached,
                                 "no gradient reached visual_projection.weight\nHint: the image side"),
        "normalised in place": (NormalisedInPlace, "an in-place operation"),
        "scale a vector of one": (ScaleAsVector, "not torch.tensor([value])"),
    },
    checks.check_from_hf: {
        "a preset's config": (from_preset, "CLIPConfig.from_hf(hf_model.config)"),
        "weights not loaded": (not_loaded, "not copied"),
        "submodules loaded, not logit_scale": (submodules_loaded, "belongs to the model itself"),
        "a config by hand": (config_by_hand, "the config is not; build it from the model's own"),
        "the transformers model itself": (lambda hf_model: hf_model, "return a miniclip CLIP"),
    },
}


test_reference_passes_with_one_line, test_wrong_answer_fails_and_says_why = reference_and_wrong_answer_tests(
    REFERENCES, list(WRONG_ANSWERS.items()))


def test_unwritten_exercises_print_a_line_instead_of_raising(capsys):
    class Unwritten(nn.Module):
        def __init__(self, config):
            super().__init__()
            raise NotImplementedError("Your code here")

    checks.check_clip(Unwritten)
    assert capsys.readouterr().out.startswith("⏳ CLIP: not written yet")

    def from_hf(hf_model):
        raise NotImplementedError("Your code here")

    checks.check_from_hf(from_hf)  # NotImplementedError is a RuntimeError: not a failure here
    assert capsys.readouterr().out.startswith("⏳ from_hf: not written yet")


def test_show_solution_points_at_the_package(capsys):
    checks.show_solution("CLIP")
    assert capsys.readouterr().out.startswith("# miniclip/model.py\nclass CLIP(")
    checks.show_solution("from_hf")
    assert "load_state_dict" in capsys.readouterr().out


# ---- figures ---------------------------------------------------------------------------


def test_toy_embeddings_are_unit_pairs_that_noise_pulls_apart():
    text, image = plots_model.toy_embeddings(5, noise=0.0, dim=16)
    assert text.shape == image.shape == (5, 16)
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(5))
    torch.testing.assert_close((text * image).sum(dim=-1), torch.ones(5))  # no noise: identical
    text, image = plots_model.toy_embeddings(5, noise=2.0, dim=16)
    assert ((text * image).sum(dim=-1) < 0.99).all()
    torch.testing.assert_close(image.norm(dim=-1), torch.ones(5))


def test_similarity_figure_shows_cosines_and_row_softmax():
    cosines = torch.tensor([[0.4, 0.1, -0.2], [0.0, 0.3, 0.1]])
    fig = plots_model.similarity_figure(cosines, math.log(1 / 0.07), ["t0", "t1"],
                                        ["i0", "i1", "i2"], title="pairs")
    left, right = fig.axes[:2]
    assert fig.get_suptitle() == "pairs"
    assert left.get_xlabel() == "image" and left.get_ylabel() == "text"
    assert [label.get_text() for label in left.get_xticklabels()] == ["i0", "i1", "i2"]
    assert (left.images[0].get_array() == cosines.numpy()).all()
    probabilities = right.images[0].get_array()
    assert abs(probabilities.sum(axis=1) - 1).max() < 1e-6
    expected = (cosines / 0.07).softmax(dim=-1).numpy()
    assert abs(probabilities - expected).max() < 1e-6
    assert "14.3" in right.get_title()


def test_temperature_bars_sharpen_as_the_temperature_falls():
    row = torch.tensor([0.5, 0.3, 0.0, -0.1])
    fig = plots_model.temperature_bars_figure(row, (1.0, 0.07, 0.01), list("abcd"), title="bars")
    _, right = fig.axes
    heights = [patch.get_height() for patch in right.patches]
    per_temperature = [heights[i * 4:(i + 1) * 4] for i in range(3)]
    assert [round(sum(h), 6) for h in per_temperature] == [1.0, 1.0, 1.0]
    assert per_temperature[0][0] < per_temperature[1][0] < per_temperature[2][0]
    assert right.get_ylabel() == "probability"


def test_cosine_matrices_figure_names_axes_after_the_panel():
    matrix = torch.eye(2)
    fig = plots_model.cosine_matrices_figure({
        "text · image": (matrix, ["a", "b"], ["x", "y"]),
        "image · image": (matrix, ["x", "y"], ["x", "y"])}, title="cones")
    first, second = fig.axes[:2]
    assert (first.get_ylabel(), first.get_xlabel()) == ("text", "image")
    assert (second.get_ylabel(), second.get_xlabel()) == ("image", "image")
    assert fig.axes[-1].get_ylabel().startswith("cosine")
