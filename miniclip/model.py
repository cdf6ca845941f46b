"""CLIP: two encoders, two projections into one space, and a learned temperature.

Chapter 06 builds this file, following section 2.3 and Figure 3 of the CLIP paper
(Radford et al., 2021): each tower's pooled feature is projected linearly (no bias)
into a joint space of `projection_dim` dimensions, L2-normalised, and compared by
cosine similarity scaled by exp(logit_scale). The result is two logit matrices, one the
transpose of the other: each text against every image and each image against every
text.

Parameter names equal those of `transformers.CLIPModel`, so a Hugging Face state dict
loads here with a plain `load_state_dict`, and ours loads there (see `miniclip.hf`).

With a `ResNetConfig` the image tower is the paper's modified ResNet (`miniclip.resnet`).
As in OpenAI's RN models, its attention pool already ends in a projection to
`projection_dim`, so `visual_projection` is then an `nn.Identity` (no parameters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from miniclip.attention import Attention
from miniclip.config import CLIPConfig
from miniclip.hf import HubMixin
from miniclip.loss import clip_loss
from miniclip.resnet import ModifiedResNet
from miniclip.text import TextTransformer
from miniclip.transformer import MLP, EncoderOutput
from miniclip.vision import VisionEmbeddings, VisionTransformer


@dataclass
class CLIPOutput:
    """What `CLIP.forward` returns; the names are those of transformers' CLIPOutput."""

    logits_per_image: torch.Tensor  # (N_images, N_texts)
    logits_per_text: torch.Tensor  # (N_texts, N_images)
    text_embeds: torch.Tensor  # (N_texts, projection_dim), unit length
    image_embeds: torch.Tensor  # (N_images, projection_dim), unit length
    loss: torch.Tensor | None = None
    text_model_output: EncoderOutput | None = None
    vision_model_output: EncoderOutput | None = None


class CLIP(HubMixin, nn.Module):
    """A text tower and an image tower that meet in a joint embedding space."""

    def __init__(self, config: CLIPConfig):
        super().__init__()
        self.config = config
        self.text_model = TextTransformer(config.text)
        resnet = config.vision.kind == "resnet"
        if resnet:
            self.vision_model = ModifiedResNet(config.vision, output_dim=config.projection_dim)
        else:
            self.vision_model = VisionTransformer(config.vision)
        self.text_projection = nn.Linear(config.text.hidden_size, config.projection_dim, bias=False)
        if resnet:  # the attention pool's c_proj already projects into the joint space
            self.visual_projection = nn.Identity()
        else:
            self.visual_projection = nn.Linear(
                config.vision.hidden_size, config.projection_dim, bias=False
            )
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init_value))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """OpenAI's initialisation (clip/model.py: `initialize_parameters`, and the ViT's `scale *
        randn` class and position embeddings), with the blocks as transformers initialises them
        (`CLIPPreTrainedModel._init_weights`): q, k and v take the small, depth-scaled std and
        out_proj width**-0.5, the reverse of OpenAI's fused in_proj and out_proj, in both towers
        (OpenAI leaves its ViT's blocks, and the patch convolution, here transformers' 0.02, at
        PyTorch's defaults). Biases at zero."""
        for module in self.modules():
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for tower in (self.text_model, self.vision_model):
            if isinstance(tower, ModifiedResNet):
                tower.reset_parameters()  # OpenAI's ResNet initialisation, see miniclip.resnet
                continue
            width, depth = tower.config.hidden_size, tower.config.num_hidden_layers
            residual_std = width**-0.5 * (2 * depth) ** -0.5  # smaller in deeper stacks
            for module in tower.modules():
                if isinstance(module, Attention):
                    for projection in (module.q_proj, module.k_proj, module.v_proj):
                        nn.init.normal_(projection.weight, std=residual_std)
                    nn.init.normal_(module.out_proj.weight, std=width**-0.5)
                elif isinstance(module, MLP):
                    nn.init.normal_(module.fc1.weight, std=(2 * width) ** -0.5)
                    nn.init.normal_(module.fc2.weight, std=residual_std)
                elif isinstance(module, VisionEmbeddings):
                    nn.init.normal_(module.class_embedding, std=width**-0.5)
                    nn.init.normal_(module.position_embedding.weight, std=width**-0.5)
                    nn.init.normal_(module.patch_embedding.weight, std=0.02)
        text_embeddings = self.text_model.embeddings
        nn.init.normal_(text_embeddings.token_embedding.weight, std=0.02)
        nn.init.normal_(text_embeddings.position_embedding.weight, std=0.01)
        nn.init.normal_(self.text_projection.weight, std=self.config.text.hidden_size**-0.5)
        if isinstance(self.visual_projection, nn.Linear):
            nn.init.normal_(self.visual_projection.weight, std=self.config.vision.hidden_size**-0.5)
        self.logit_scale.fill_(self.config.logit_scale_init_value)

    def encode_text(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, T) token ids -> (B, projection_dim) text features, not normalised."""
        return self.text_projection(self.text_model(input_ids, attention_mask).pooler_output)

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) pixels -> (B, projection_dim) image features, not normalised."""
        return self.visual_projection(self.vision_model(pixel_values).pooler_output)

    def forward(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        return_loss: bool = False,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> CLIPOutput:
        if return_loss and input_ids.size(0) != pixel_values.size(0):
            raise ValueError(
                f"the contrastive loss pairs text i with image i, so it needs as many texts as "
                f"images; got {input_ids.size(0)} texts and {pixel_values.size(0)} images"
            )
        extras = {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions}
        text_output = self.text_model(input_ids, attention_mask, **extras)
        vision_output = self.vision_model(pixel_values, **extras)
        text_embeds = F.normalize(self.text_projection(text_output.pooler_output), dim=-1)
        image_embeds = F.normalize(self.visual_projection(vision_output.pooler_output), dim=-1)
        # cosine similarity, scaled by the learned inverse temperature
        logits_per_text = self.logit_scale.exp() * text_embeds @ image_embeds.t()  # (N_t, N_i)
        return CLIPOutput(
            logits_per_image=logits_per_text.t(),
            logits_per_text=logits_per_text,
            text_embeds=text_embeds,
            image_embeds=image_embeds,
            loss=clip_loss(logits_per_text) if return_loss else None,
            text_model_output=text_output,
            vision_model_output=vision_output,
        )

    @property
    def temperature(self) -> float:
        """1 / exp(logit_scale): the softmax temperature the paper talks about."""
        return math.exp(-self.logit_scale.item())
