"""How close miniclip comes to transformers.CLIPModel: the worst relative errors, per config.

    python benchmarks/parity_report.py

Uses the configurations and comparisons of tests/test_model.py (which assert < 1e-5) and
prints what they reach in float32: outputs (every layer's hidden states, embeddings, logits,
loss) and gradients of every parameter, for transformers' eager and sdpa attention.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from compare import gradient_errors, grads, relative_error
from test_model import CONFIGS, random_batch, random_hf_model

from miniclip import CLIP


def worst_errors(name: str, attention: str) -> tuple[float, float]:
    config = CONFIGS[name]
    hf_model = random_hf_model(config, attention)
    model = CLIP.from_hf(hf_model).eval()
    input_ids, attention_mask, pixel_values = random_batch(
        config, [config.text.max_position_embeddings, 3, 5, 2])
    explicit = attention == "eager"
    theirs = hf_model(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask,
                      return_loss=True, output_hidden_states=True)
    ours = model(input_ids, pixel_values, attention_mask, return_loss=True,
                 output_hidden_states=True, output_attentions=explicit)
    outputs = [relative_error(getattr(ours, key), getattr(theirs, key))
               for key in ("logits_per_text", "text_embeds", "image_embeds", "loss")]
    for tower in ("text_model_output", "vision_model_output"):
        ours_tower, theirs_tower = getattr(ours, tower), getattr(theirs, tower)
        outputs += [relative_error(a, b) for a, b in zip(ours_tower.hidden_states, theirs_tower.hidden_states)]
        outputs.append(relative_error(ours_tower.last_hidden_state, theirs_tower.last_hidden_state))
    ours.loss.backward()
    theirs.loss.backward()
    return max(outputs), max(gradient_errors(grads(model), grads(hf_model)).values())


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help, no options
    print(f"{'config':12s} {'transformers':13s} {'miniclip path':14s} {'outputs':>9s} {'gradients':>10s}")
    for name in CONFIGS:
        for attention, path in (("eager", "explicit"), ("sdpa", "fused")):
            output_error, gradient_error = worst_errors(name, attention)
            print(f"{name:12s} {attention:13s} {path:14s} {output_error:9.1e} {gradient_error:10.1e}")


if __name__ == "__main__":
    main()
