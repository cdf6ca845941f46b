"""miniclip's ResNet image tower equals OpenAI's ModifiedResNet: same names, outputs, gradients.

The reference is OpenAI's code as open_clip_torch ships it (open_clip/modified_resnet.py,
a copy of clip/model.py's ResNet). Only that one file is loaded, so open_clip's own
dependencies (timm, torchvision, ...) are not needed: `pip install --no-deps open_clip_torch`
is enough, and without it the comparisons skip. Every comparison randomises the
reference's weights and BatchNorm statistics, copies them with a strict load_state_dict
(the names are the same) and compares in float32.
"""

import importlib.metadata
import importlib.util
import json
import math
import sys
import types
from unittest import mock

import pytest
import torch
from compare import gradient_errors, grads, relative_error

from miniclip import CLIP, CLIPConfig
from miniclip.config import ResNetConfig, TextConfig
from miniclip.resnet import ModifiedResNet

TOLERANCE = 1e-5  # largest allowed |miniclip - reference| / max|reference|

SIZES = {  # (layers, width, heads, image size, output dim)
    "32px": ((1, 1, 1, 1), 8, 2, 32, 16),
    "64px": ((2, 1, 2, 1), 16, 4, 64, 24),
    "96px": ((1, 2, 1, 2), 8, 8, 96, 32),
}

SMALL = CLIPConfig(  # for the tests of the whole model: fast, with a stage of two blocks
    text=TextConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                    num_attention_heads=2, max_position_embeddings=8, bos_token_id=62, eos_token_id=63),
    vision=ResNetConfig(layers=(1, 2, 1, 1), width=8, num_attention_heads=2, image_size=32),
    projection_dim=8,
)


@pytest.fixture(scope="module")
def reference():
    """open_clip's modified_resnet module, loaded on its own.

    Importing it as `open_clip.modified_resnet` would run open_clip/__init__.py, which
    imports open_clip's whole training stack. The file itself needs torch and two helpers
    of open_clip.utils that the forward pass never calls, so it is executed under a
    stand-in package whose `utils` holds placeholders for those two names.
    """
    try:
        files = importlib.metadata.files("open_clip_torch") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("OpenAI's ModifiedResNet comes from `pip install --no-deps open_clip_torch`")
    path = next((file for file in files if file.as_posix() == "open_clip/modified_resnet.py"), None)
    if path is None:
        pytest.fail("this open_clip_torch has no open_clip/modified_resnet.py to compare with")
    package = types.ModuleType("openai_reference")
    package.__path__ = []
    utils = types.ModuleType("openai_reference.utils")
    utils.freeze_batch_norm_2d = utils.feature_take_indices = None
    spec = importlib.util.spec_from_file_location("openai_reference.modified_resnet", path.locate())
    module = importlib.util.module_from_spec(spec)
    with mock.patch.dict(sys.modules, {package.__name__: package, utils.__name__: utils}):
        spec.loader.exec_module(module)
    return module


def random_pair(reference, size: str, seed: int = 0):
    """(ours, theirs): the reference with random weights and BatchNorm statistics, and our copy."""
    layers, width, heads, image_size, output_dim = SIZES[size]
    torch.manual_seed(seed)
    theirs = reference.ModifiedResNet(list(layers), output_dim, heads, image_size, width)
    with torch.no_grad():
        for module in theirs.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # gains away from OpenAI's zeros
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
            elif isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and module.bias is not None:
                module.bias.normal_(0, 0.1)
        theirs.attnpool.positional_embedding.normal_(0, 0.5)
    config = ResNetConfig(layers=layers, width=width, num_attention_heads=heads, image_size=image_size)
    ours = ModifiedResNet(config, output_dim)
    ours.load_state_dict(theirs.state_dict())  # strict: every name equal
    return ours, theirs


@pytest.mark.parametrize("size", SIZES)
def test_outputs_and_gradients_equal_openai(reference, size):
    ours, theirs = random_pair(reference, size)
    ours.eval()
    theirs.eval()
    image_size = SIZES[size][3]
    pixels = torch.randn(3, 3, image_size, image_size, generator=torch.Generator().manual_seed(1))
    our_pixels, their_pixels = pixels.clone().requires_grad_(), pixels.clone().requires_grad_()
    output = ours(our_pixels, output_hidden_states=True)
    explicit = ours(pixels, output_attentions=True)  # the pool's explicit attention path
    their_output = theirs(their_pixels)

    errors = {"pooled": relative_error(output.pooler_output, their_output),
              "pooled, explicit": relative_error(explicit.pooler_output, their_output)}
    with torch.no_grad():  # the stem's and each stage's feature map
        x = theirs.stem(pixels)
        their_states = [x]
        for layer in (theirs.layer1, theirs.layer2, theirs.layer3, theirs.layer4):
            x = layer(x)
            their_states.append(x)
    for index, (a, b) in enumerate(zip(output.hidden_states, their_states, strict=True)):
        errors[f"hidden_states[{index}]"] = relative_error(a, b)

    upstream = torch.randn(their_output.shape, generator=torch.Generator().manual_seed(2))
    (output.pooler_output * upstream).sum().backward()
    (their_output * upstream).sum().backward()
    errors["grad pixels"] = relative_error(our_pixels.grad, their_pixels.grad)
    errors |= gradient_errors(grads(ours), grads(theirs))

    worst = max(errors, key=errors.get)
    assert errors[worst] < TOLERANCE, f"{worst} differs by {errors[worst]:.2e} (relative)"


def test_training_mode_uses_and_updates_batch_statistics_like_openai(reference):
    ours, theirs = random_pair(reference, "64px")
    ours.train()
    theirs.train()
    pixels = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    assert relative_error(ours(pixels).pooler_output, theirs(pixels)) < TOLERANCE
    their_buffers = dict(theirs.named_buffers())
    for name, buffer in ours.named_buffers():  # running means and variances, batch counts
        assert relative_error(buffer.float(), their_buffers[name].float()) < TOLERANCE, name


def image_side_parameters(model: CLIP) -> int:
    """The image tower and its projection into the joint space."""
    parameters = [*model.vision_model.parameters(), *model.visual_projection.parameters()]
    return sum(p.numel() for p in parameters)


def test_rn50_preset_has_the_image_tower_of_openai_rn50(reference):
    with torch.device("meta"):
        theirs = reference.ModifiedResNet([3, 4, 6, 3], 1024, 32, 224, 64)  # as open_clip's RN50
        ours = CLIP(CLIPConfig.preset("rn50"))
    assert image_side_parameters(ours) == sum(p.numel() for p in theirs.parameters())
    assert set(ours.vision_model.state_dict()) == set(theirs.state_dict())


def test_rn50_preset_has_the_size_of_openai_rn50():
    with torch.device("meta"):
        model = CLIP(CLIPConfig.preset("rn50"))
    assert image_side_parameters(model) == 38_316_896
    assert sum(p.numel() for p in model.parameters()) == 102_007_137  # OpenAI's RN50 checkpoint


def test_tiny_resnet_is_about_as_large_as_tiny():
    vit, resnet = CLIP(CLIPConfig.preset("tiny")), CLIP(CLIPConfig.preset("tiny-resnet"))
    assert resnet.config.text == vit.config.text
    assert abs(image_side_parameters(resnet) / image_side_parameters(vit) - 1) < 0.05


def texts(n: int) -> torch.Tensor:
    input_ids = torch.randint(1, 60, (n, 6), generator=torch.Generator().manual_seed(n))
    input_ids[:, -1] = SMALL.text.eos_token_id
    return input_ids


def test_attention_pool_is_the_projection():
    model = CLIP(SMALL).eval()
    assert not any(key.startswith("visual_projection") for key in model.state_dict())
    pixels = torch.randn(2, 3, 32, 32)
    pooled = model.vision_model(pixels).pooler_output
    assert pooled.shape == (2, SMALL.projection_dim)
    assert torch.equal(model.encode_image(pixels), pooled)


def test_an_attention_pool_on_its_own_starts_drawn_as_openai_draws_it():
    from miniclip.resnet import AttentionPool2d

    torch.manual_seed(0)
    pool = AttentionPool2d(grid_size=4, width=256, num_heads=4, output_dim=32)  # torch.empty before
    assert pool.positional_embedding.std().item() == pytest.approx(256**-0.5, rel=0.05)
    assert pool.q_proj.weight.std().item() == pytest.approx(256**-0.5, rel=0.05)
    assert all(not projection.bias.any() for projection in (pool.q_proj, pool.k_proj, pool.v_proj, pool.c_proj))


def test_every_block_starts_as_its_shortcut():
    # OpenAI's initialisation zeroes each block's last BatchNorm gain (eval: running stats)
    model = CLIP(SMALL).eval()
    block = model.vision_model.layer2[1]  # a block without a downsampling shortcut
    x = torch.rand(2, 64, 4, 4)  # non-negative, as the output of a ReLU
    assert torch.equal(block(x), x)


def test_resnet_clip_learns_a_fixed_batch():
    torch.manual_seed(0)
    model = CLIP(SMALL).train()  # BatchNorm on batch statistics, as in training
    input_ids, pixels = texts(8), torch.randn(8, 3, 32, 32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        loss = model(input_ids, pixels, return_loss=True).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < math.log(8) - 0.5, losses  # well below chance, ln(8)


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = CLIP(SMALL)
    model(texts(2), torch.randn(2, 3, 32, 32))  # training mode: moves the BatchNorm statistics
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "miniclip" and saved["vision"]["kind"] == "resnet"
    back = CLIP.from_pretrained(tmp_path)
    assert back.config == model.config
    ours, theirs = model.state_dict(), back.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:  # BatchNorm running statistics included
        assert torch.equal(ours[key], theirs[key]), key


def test_transformers_conversion_refuses_a_resnet():
    with pytest.raises(ValueError, match="no 'resnet' image tower"):
        CLIP(SMALL).to_hf()


@pytest.mark.parametrize("preset", ["tiny-resnet", "rn50"])
def test_config_survives_json(preset):
    config = CLIPConfig.preset(preset)
    assert CLIPConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_config_dicts_without_a_kind_are_vits():
    values = CLIPConfig.preset("tiny").to_dict()
    assert values["vision"].pop("kind") == "vit"
    assert CLIPConfig.from_dict(values) == CLIPConfig.preset("tiny")


def test_image_size_must_be_a_multiple_of_32():
    with pytest.raises(ValueError, match="multiple of 32.*100"):
        ResNetConfig(image_size=100)


@pytest.fixture(scope="module")
def model():
    return CLIP(SMALL).eval()


def test_wrong_image_size(model):
    with pytest.raises(ValueError, match=r"\(batch, 3, 32, 32\).*\(2, 3, 64, 64\)"):
        model.encode_image(torch.randn(2, 3, 64, 64))


def test_wrong_channel_count(model):
    with pytest.raises(ValueError, match=r"\(2, 1, 32, 32\)"):
        model.encode_image(torch.randn(2, 1, 32, 32))


def test_integer_pixels(model):
    with pytest.raises(ValueError, match="floating point.*uint8"):
        model.encode_image(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
