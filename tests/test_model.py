"""miniclip.CLIP equals transformers.CLIPModel: same names, same outputs, same gradients.

Every comparison builds a small, randomly initialised Hugging Face model, copies its
weights into miniclip with a strict load_state_dict, and compares in float32. No
download is ever needed.
"""

import math

import pytest
import torch
import transformers
from compare import gradient_errors, grads, relative_error

from miniclip import CLIP, CLIPConfig, clip_loss
from miniclip.config import TextConfig, VisionConfig

TOLERANCE = 1e-5  # largest allowed |miniclip - transformers| / max|transformers|

CONFIGS = {
    "narrow": CLIPConfig(
        text=TextConfig(vocab_size=99, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                        num_attention_heads=4, max_position_embeddings=16, bos_token_id=0, eos_token_id=98),
        vision=VisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                            num_attention_heads=4, image_size=30, patch_size=6),
        projection_dim=24,
    ),
    "deep": CLIPConfig(
        text=TextConfig(vocab_size=300, hidden_size=48, intermediate_size=96, num_hidden_layers=4,
                        num_attention_heads=3, max_position_embeddings=20, bos_token_id=0, eos_token_id=299),
        vision=VisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                            num_attention_heads=8, image_size=32, patch_size=4, num_channels=3),
        projection_dim=40,
    ),
    # OpenAI's converted hub configs say eos_token_id=2: pooling then takes the largest id.
    "legacy-eos": CLIPConfig(
        text=TextConfig(vocab_size=120, hidden_size=64, intermediate_size=64, num_hidden_layers=1,
                        num_attention_heads=2, max_position_embeddings=12, bos_token_id=0, eos_token_id=2,
                        hidden_act="gelu"),
        vision=VisionConfig(hidden_size=16, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=1, image_size=16, patch_size=8),
        projection_dim=8,
    ),
}


def random_hf_model(config: CLIPConfig, attention: str, seed: int = 0):
    """A transformers.CLIPModel with every parameter (LayerNorm gains too) randomised."""
    torch.manual_seed(seed)
    hf_model = transformers.CLIPModel(config.to_hf())
    with torch.no_grad():
        for parameter in hf_model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    hf_model.set_attn_implementation(attention)
    return hf_model.eval()


def random_batch(config: CLIPConfig, lengths: list[int], seed: int = 1):
    """Token rows of different lengths, right-padded, each ending in the end-of-text id."""
    generator = torch.Generator().manual_seed(seed)
    text = config.text
    eos = text.vocab_size - 1 if text.eos_token_id == 2 else text.eos_token_id
    width = max(lengths)
    input_ids = torch.full((len(lengths), width), text.pad_token_id)
    attention_mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, length in enumerate(lengths):
        input_ids[row, : length - 1] = torch.randint(3, eos, (length - 1,), generator=generator)
        input_ids[row, length - 1] = eos
        attention_mask[row, :length] = 1
    vision = config.vision
    shape = (len(lengths), vision.num_channels, vision.image_size, vision.image_size)
    pixel_values = torch.randn(shape, generator=generator)
    return input_ids, attention_mask, pixel_values


def test_parameter_names_equal_transformers():
    config = CONFIGS["narrow"]
    ours = set(CLIP(config).state_dict())
    theirs = set(transformers.CLIPModel(config.to_hf()).state_dict())
    assert ours == theirs, f"only miniclip: {ours - theirs}; only transformers: {theirs - ours}"


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_outputs_and_gradients_equal_transformers(name, attention):
    config = CONFIGS[name]
    hf_model = random_hf_model(config, attention)
    model = CLIP.from_hf(hf_model).eval()
    lengths = [config.text.max_position_embeddings, 3, 5, 2]
    input_ids, attention_mask, pixel_values = random_batch(config, lengths)

    # eager: transformers returns attention weights; miniclip then takes its explicit path
    explicit = attention == "eager"
    theirs = hf_model(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask,
                      return_loss=True, output_hidden_states=True, output_attentions=explicit)
    ours = model(input_ids, pixel_values, attention_mask, return_loss=True,
                 output_hidden_states=True, output_attentions=explicit)

    errors = {}
    for tower in ("text_model_output", "vision_model_output"):
        our_tower, their_tower = getattr(ours, tower), getattr(theirs, tower)
        assert len(our_tower.hidden_states) == len(their_tower.hidden_states)
        for layer, (a, b) in enumerate(zip(our_tower.hidden_states, their_tower.hidden_states)):
            errors[f"{tower}.hidden_states[{layer}]"] = relative_error(a, b)
        errors[f"{tower}.last_hidden_state"] = relative_error(
            our_tower.last_hidden_state, their_tower.last_hidden_state)
        if explicit:
            for layer, (a, b) in enumerate(zip(our_tower.attentions, their_tower.attentions)):
                errors[f"{tower}.attentions[{layer}]"] = relative_error(a, b)
    errors["text_pooled"] = relative_error(
        ours.text_model_output.pooler_output,
        hf_model.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output)
    errors["image_pooled"] = relative_error(
        ours.vision_model_output.pooler_output,
        hf_model.vision_model(pixel_values=pixel_values).pooler_output)
    for key in ("logits_per_text", "logits_per_image", "text_embeds", "image_embeds", "loss"):
        errors[key] = relative_error(getattr(ours, key), getattr(theirs, key))

    ours.loss.backward()
    theirs.loss.backward()
    errors.update(gradient_errors(grads(model), grads(hf_model)))

    worst = max(errors, key=errors.get)
    assert errors[worst] < TOLERANCE, f"{worst} differs by {errors[worst]:.2e} (relative)"


def test_both_attention_paths_compute_the_same_function():
    model = CLIP(CONFIGS["deep"]).eval()
    input_ids, attention_mask, pixel_values = random_batch(model.config, [20, 4, 9])
    fast = model(input_ids, pixel_values, attention_mask)
    explicit = model(input_ids, pixel_values, attention_mask, output_attentions=True)
    assert relative_error(fast.logits_per_text, explicit.logits_per_text) < TOLERANCE


def test_encode_returns_projected_unnormalised_features_like_transformers():
    config = CONFIGS["narrow"]
    hf_model = random_hf_model(config, "sdpa")
    model = CLIP.from_hf(hf_model).eval()
    input_ids, attention_mask, pixel_values = random_batch(config, [5, 16])
    theirs_text = hf_model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
    theirs_image = hf_model.get_image_features(pixel_values=pixel_values)
    if not isinstance(theirs_text, torch.Tensor):  # transformers >= 5 returns an output object
        theirs_text, theirs_image = theirs_text.pooler_output, theirs_image.pooler_output
    assert relative_error(model.encode_text(input_ids, attention_mask), theirs_text) < TOLERANCE
    assert relative_error(model.encode_image(pixel_values), theirs_image) < TOLERANCE


def test_logit_scale_starts_at_the_papers_temperature():
    model = CLIP(CLIPConfig.preset("tiny"))
    assert model.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert model.temperature == pytest.approx(0.07)


def test_loss_is_ln_n_at_uniform_logits_and_equals_transformers():
    for n in (1, 2, 7, 64):
        assert clip_loss(torch.zeros(n, n)).item() == pytest.approx(math.log(n), abs=1e-6)
    from transformers.models.clip.modeling_clip import image_text_contrastive_loss

    logits = torch.randn(9, 9, generator=torch.Generator().manual_seed(0)) * 5
    assert clip_loss(logits).item() == pytest.approx(image_text_contrastive_loss(logits).item(), rel=1e-6)
    # a perfect diagonal costs almost nothing; swapping two pairs costs more than chance
    assert clip_loss(torch.eye(4) * 100).item() < 1e-6
    assert clip_loss(torch.eye(4)[[1, 0, 2, 3]] * 100).item() > math.log(4)


def test_loss_is_symmetric_in_texts_and_images():
    logits = torch.randn(6, 6, generator=torch.Generator().manual_seed(3))
    assert clip_loss(logits).item() == pytest.approx(clip_loss(logits.t()).item(), rel=1e-6)
    rows_only = torch.nn.functional.cross_entropy(logits, torch.arange(6))
    assert clip_loss(logits).item() != pytest.approx(rows_only.item(), rel=1e-3)


@pytest.mark.parametrize("preset", ["tiny", "small", "vit-b-32"])
def test_presets_convert_to_transformers_and_back(preset):
    config = CLIPConfig.preset(preset)
    assert CLIPConfig.from_hf(config.to_hf()) == config
    assert CLIPConfig.from_dict(config.to_dict()) == config


def test_vit_b_32_preset_has_the_shapes_of_openai_clip():
    config = CLIPConfig.preset("vit-b-32")
    assert (config.vision.hidden_size, config.vision.num_hidden_layers, config.vision.patch_size) == (768, 12, 32)
    assert (config.text.hidden_size, config.text.num_hidden_layers, config.projection_dim) == (512, 12, 512)
    with torch.device("meta"):
        parameters = sum(p.numel() for p in CLIP(config).parameters())
    assert parameters == 151_277_313  # openai/clip-vit-base-patch32


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="tiny"):
        CLIPConfig.preset("huge")
