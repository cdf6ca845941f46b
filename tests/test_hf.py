"""Hugging Face interop: files that transformers loads, and back, with nothing lost."""

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

from miniclip import CLIP, CLIPConfig
from miniclip.config import TextConfig, VisionConfig
from miniclip.hf import config_json, is_cached

SMALL = CLIPConfig(
    text=TextConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                    num_attention_heads=2, max_position_embeddings=8, bos_token_id=62, eos_token_id=63),
    vision=VisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                        num_attention_heads=2, image_size=8, patch_size=4),
    projection_dim=8,
)


def test_round_trip_through_transformers_gives_identical_tensors(tmp_path):
    torch.manual_seed(0)
    model = CLIP(SMALL)
    model.save_pretrained(tmp_path / "ours")
    hf_model, info = transformers.CLIPModel.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not any(info.values()), f"transformers reported {info}"
    hf_model.save_pretrained(tmp_path / "theirs")
    back = CLIP.from_pretrained(tmp_path / "theirs")
    assert back.config == model.config
    ours, theirs = model.state_dict(), back.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


def test_to_hf_and_from_hf_are_inverse():
    torch.manual_seed(1)
    model = CLIP(SMALL)
    back = CLIP.from_hf(model.to_hf())
    for key, value in model.state_dict().items():
        assert torch.equal(value, back.state_dict()[key]), key


def test_old_checkpoints_with_position_ids_buffers_load(tmp_path):
    model = CLIP(SMALL)
    model.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["text_model.embeddings.position_ids"] = torch.arange(8)[None]
    tensors["vision_model.embeddings.position_ids"] = torch.arange(5)[None]
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    loaded = CLIP.from_pretrained(tmp_path)
    assert torch.equal(loaded.logit_scale, model.logit_scale)


def test_saved_config_is_a_clip_model_config(tmp_path):
    CLIP(SMALL).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["CLIPModel"]
    assert config["text_config"]["eos_token_id"] == 63


# ---- the other layouts of the hub: pytorch_model.bin, and safetensors in shards ---------------


def save_as_bin(model: CLIP, folder: Path) -> None:
    """What transformers wrote before safetensors: a pickled state dict."""
    torch.save(model.state_dict(), folder / "pytorch_model.bin")


def save_as_shards(model: CLIP, folder: Path) -> None:
    """What transformers writes for a large model: shards, and an index naming each tensor's shard."""
    state_dict = {key: value.contiguous() for key, value in model.state_dict().items()}
    keys = list(state_dict)
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    weight_map = {}
    for name, shard in zip(names, (keys[: len(keys) // 2], keys[len(keys) // 2 :])):
        save_file({key: state_dict[key] for key in shard}, folder / name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
    total_size = sum(value.numel() * value.element_size() for value in state_dict.values())
    index = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def checkpoint(folder: Path, layout: str) -> CLIP:
    """A random SMALL model saved in `folder` in `layout`, beside its config.json; the model."""
    torch.manual_seed(2)
    model = CLIP(SMALL)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(config_json(SMALL))
    {"bin": save_as_bin, "shards": save_as_shards}[layout](model, folder)
    return model


def assert_same_weights(model: CLIP, loaded: CLIP) -> None:
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


@pytest.mark.parametrize("layout", ["bin", "shards"])
def test_a_pickled_or_sharded_checkpoint_loads_the_same_weights(tmp_path, layout):
    model = checkpoint(tmp_path, layout)
    assert not (tmp_path / "model.safetensors").exists()
    assert_same_weights(model, CLIP.from_pretrained(tmp_path))


class Payload:
    """A pickle that runs code when loaded: it makes the folder `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.makedirs, (str(self.marker),)


def test_a_pickled_checkpoint_that_would_run_code_is_refused(tmp_path):
    model = checkpoint(tmp_path, "bin")
    marker = tmp_path / "the-pickle-ran"
    torch.save({**model.state_dict(), "payload": Payload(marker)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(pickle.UnpicklingError):
        CLIP.from_pretrained(tmp_path)
    assert not marker.exists()
    torch.load(tmp_path / "pytorch_model.bin", weights_only=False)  # what an unrestricted load does
    assert marker.exists()


def fake_cache(cache: Path, repo_id: str, monkeypatch) -> Path:
    """The snapshot folder of `repo_id` in a Hugging Face cache at `cache`, made the hub's cache."""
    repository = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repository / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (repository / "refs").mkdir()
    (repository / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))  # read at import
    return snapshot


@pytest.mark.parametrize("layout", ["bin", "shards"])
def test_a_pickled_or_sharded_checkpoint_loads_by_hub_id_from_the_cache(tmp_path, monkeypatch, layout):
    model = checkpoint(fake_cache(tmp_path, "someone/old-clip", monkeypatch), layout)
    assert is_cached("someone/old-clip")
    assert_same_weights(model, CLIP.from_pretrained("someone/old-clip"))


def test_uncached_hub_id_fails_offline_with_a_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="hf download"):
        CLIP.from_pretrained("openai/clip-vit-base-patch32-not-here")


def test_a_cached_repository_without_weights_is_not_taken_for_one(tmp_path, monkeypatch):
    # what an older hub command leaves when its second --include replaced the first
    snapshot = fake_cache(tmp_path, "someone/clip", monkeypatch)
    CLIP(SMALL).save_pretrained(snapshot)
    assert is_cached("someone/clip")
    (snapshot / "model.safetensors").unlink()
    assert not is_cached("someone/clip")


@pytest.mark.skipif(not is_cached("openai/clip-vit-base-patch32"),
                    reason="openai/clip-vit-base-patch32 is not in the local Hugging Face cache")
def test_openai_weights_give_transformers_outputs():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hf_model = transformers.CLIPModel.from_pretrained("openai/clip-vit-base-patch32").eval()
    model = CLIP.from_pretrained("openai/clip-vit-base-patch32")
    input_ids = torch.tensor([[49406, 320, 1125, 539, 320, 2368, 49407]])
    pixel_values = torch.randn(1, 3, 224, 224)
    ours = model(input_ids, pixel_values)
    theirs = hf_model(input_ids=input_ids, pixel_values=pixel_values)
    torch.testing.assert_close(ours.logits_per_text, theirs.logits_per_text, rtol=1e-4, atol=1e-4)
