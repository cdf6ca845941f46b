"""Moving weights between miniclip and Hugging Face `transformers`.

Chapter 11 uses this file. Because every parameter of `miniclip.CLIP` has the name of
its twin in `transformers.CLIPModel`, there is no mapping table: a state dict goes
across with a plain `load_state_dict`. The only keys to drop are `position_ids`, index
buffers that transformers saved in its checkpoints before mid-2023 (versions before 4.31)
and that we compute on the fly.

On disk we use Hugging Face's layout, config.json + model.safetensors. safetensors
holds raw tensors only, so loading a checkpoint cannot run code (a pickle can).

Only ViT checkpoints are transformers-loadable: transformers has no CLIP with a ResNet
image tower. For one (`ResNetConfig`), `to_hf` raises, and `save_pretrained` writes
config.json as miniclip's own config dict (`CLIPConfig.to_dict`, whose vision entry says
"kind": "resnet") under "model_type": "miniclip"; `from_pretrained` reads both layouts.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from miniclip.config import CLIPConfig

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
MINICLIP_MODEL_TYPE = "miniclip"  # config.json's model_type when it holds miniclip's own config


def without_position_ids(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value for key, value in state_dict.items() if not key.endswith("position_ids")}


LEGACY_WEIGHTS_NAME = "pytorch_model.bin"


def has_weights(directory: Path) -> bool:
    """Whether `directory` holds a checkpoint's weights in a form `load_weights` reads."""
    return any((directory / name).exists()
               for name in (WEIGHTS_NAME, "model.safetensors.index.json", LEGACY_WEIGHTS_NAME))


def load_weights(directory: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a Hugging Face checkpoint folder (single or sharded safetensors)."""
    single = directory / WEIGHTS_NAME
    if single.exists():
        return load_file(single)
    index = directory / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return {key: value for shard in shards for key, value in load_file(directory / shard).items()}
    legacy = directory / LEGACY_WEIGHTS_NAME
    if legacy.exists():
        # Old hub checkpoints are pickles. weights_only=True uses PyTorch's restricted
        # unpickler, which rebuilds tensors and refuses anything that could run code.
        return torch.load(legacy, map_location="cpu", weights_only=True)
    raise FileNotFoundError(
        f"no weights in {directory}: expected {WEIGHTS_NAME} (or a sharded "
        "model.safetensors.index.json, or pytorch_model.bin)"
    )


def cached_snapshot(repo_id: str) -> Path:
    """The folder of `repo_id` in the local Hugging Face cache; never downloads."""
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id,
            local_files_only=True,
            allow_patterns=[CONFIG_NAME, "*.safetensors", "*.json", LEGACY_WEIGHTS_NAME],
        )
    except Exception as error:  # the hub library raises several kinds for "not cached"
        raise FileNotFoundError(
            f"{repo_id!r} is neither a folder nor in the local Hugging Face cache, and miniclip "
            f"never downloads. On a machine with internet, run once\n{download_hint(repo_id)}\n"
            f"or transformers.CLIPModel.from_pretrained({repo_id!r}); the weights then load "
            "offline from the cache."
        ) from error
    return Path(folder)


def download_hint(repo_id: str) -> str:
    """The commands that put `repo_id`'s weights and settings in the local Hugging Face cache.

    Without --include, the hub fetches every weight format the repository has, several
    times as much. huggingface_hub 1.x repeats --include for each pattern; the 0.x command
    takes them all after one --include (a second one would replace the first).
    """
    return (f"    hf download {repo_id} --include '*.safetensors' --include '*.json'\n"
            f"    (huggingface_hub before 1.0: huggingface-cli download {repo_id} "
            "--include '*.safetensors' '*.json')")


def is_cached(repo_id: str) -> bool:
    """Whether `repo_id` can be loaded offline (used to skip what needs OpenAI's weights):
    its settings and its weights, not its settings alone."""
    try:
        folder = cached_snapshot(repo_id)
    except FileNotFoundError:
        return False
    return (folder / CONFIG_NAME).exists() and has_weights(folder)


def config_json(config: CLIPConfig) -> str:
    """config.json: transformers' CLIPConfig for a ViT, miniclip's own dict otherwise."""
    if config.vision.kind != "vit":
        return json.dumps({"model_type": MINICLIP_MODEL_TYPE, **config.to_dict()}, indent=2)
    hf_config = config.to_hf()
    hf_config.architectures = ["CLIPModel"]
    return hf_config.to_json_string()


def read_config(path: Path) -> CLIPConfig:
    """The CLIPConfig in a config.json written by `config_json` or by transformers."""
    values = json.loads(path.read_text())
    if values.get("model_type") == MINICLIP_MODEL_TYPE:
        values.pop("model_type")
        return CLIPConfig.from_dict(values)
    return CLIPConfig.from_hf(values)


class HubMixin:
    """from_hf / to_hf / save_pretrained / from_pretrained for `miniclip.CLIP`."""

    @classmethod
    def from_hf(cls, hf_model) -> HubMixin:
        """A miniclip copy of a `transformers.CLIPModel` (same config, same weights)."""
        model = cls(CLIPConfig.from_hf(hf_model.config))
        model.load_state_dict(without_position_ids(hf_model.state_dict()))
        return model

    def to_hf(self):
        """A `transformers.CLIPModel` with this model's config and weights."""
        hf_config = self.config.to_hf()  # raises for a ResNet image tower
        from transformers import CLIPModel

        hf_model = CLIPModel(hf_config)
        hf_model.load_state_dict(self.state_dict())
        return hf_model.train(self.training)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write config.json and model.safetensors (loadable by transformers.CLIPModel for a ViT)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(config_json(self.config))
        tensors = {key: value.detach().contiguous().cpu() for key, value in self.state_dict().items()}
        save_file(tensors, directory / WEIGHTS_NAME, metadata={"format": "pt"})
        return directory

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path) -> HubMixin:
        """Load a folder written by `save_pretrained` or by transformers, or a cached hub id.

        "openai/clip-vit-base-patch32" works when the local Hugging Face cache has it;
        otherwise a FileNotFoundError says how to get it.
        """
        directory = Path(name_or_path)
        if not directory.is_dir():
            directory = cached_snapshot(str(name_or_path))
        model = cls(read_config(directory / CONFIG_NAME))
        model.load_state_dict(without_position_ids(load_weights(directory)))
        return model.eval()
