"""Table 2 at the paper's distortion: the transfer error of one model's L-BFGS examples on other models, as built
and after magnifying each perturbation to a given mean distortion (tempered.stages.szegedy.perturbations.magnify).
Run from the root of a built quick tree, e.g. `python fc10_1_transfer.py fc10_1 0.14 fc10_1em4 fc10_1em2`
(measured on the reference run: 0.585 / 0.615 as built at distortion 0.125, 0.74 / 0.75 at 0.136 after clipping)."""
import sys

import numpy as np
import torch

from tempered.data.arrays import read_images
from tempered.models.checkpoints import load_model
from tempered.stages.szegedy.perturbations import magnify, rms_distortion
from tempered.step_params import step_config

source, distortion, targets = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
config = step_config(["config.yaml", "workflow/presets/quick.yaml"], "attack", attack="cw_l2")
images = read_images("results/data/mnist.npz")
made = np.load(f"results/szegedy/adversarial/{source}/seed0.npz")
digits = images["x_train"] if str(made["sample_set"]) == "full" else images["x_test"]
x = torch.from_numpy(digits[made["sample_index"]].astype(np.float32) / 255).unsqueeze(1)
x_adv, labels = torch.from_numpy(made["x_adv"]), torch.from_numpy(made["label"])
for target in targets:
    model, _ = load_model(config.model(target), target, f"results/models/{target}/seed0/model.pt")
    model.eval()
    for name, images_in in (("as built", x_adv), (f"magnified to {distortion}", magnify(x, x_adv, distortion))):
        with torch.no_grad():
            error = (model(images_in).argmax(1) != labels).float().mean().item()
        print(f"{target} on {source}'s examples {name}: error {error:.4f}, "
              f"mean distortion {rms_distortion(x, images_in).mean().item():.4f}")
