"""Max-softmax AUROC, MNIST test (the first 2,000 digits) vs Hendrycks & Gimpel's unclipped N(0, 1) noise (the
pipeline's gaussian_noise_unclipped set), for any trained models of a built quick tree. Run from its root:
`python msp_by_model.py cnn fc100_100_10 fc200_200_10 fc100_100_10_dropout` (measured on the reference run: 0.977,
0.893, 0.893, 0.962)."""
import sys

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from tempered.config import load_config
from tempered.data.arrays import read_images
from tempered.data.ood_sets import noise_images
from tempered.models.checkpoints import load_model
from tempered.step_params import step_config

files = ["config.yaml", "workflow/presets/quick.yaml"]
models = step_config(files, "attack", attack="cw_l2")  # any step's view resolves a model's settings
noise = torch.from_numpy(noise_images("gaussian_noise_unclipped", load_config(files)["ood"]["noise"]))
digits = read_images("results/data/mnist.npz")["x_test"][:2000]
mnist = torch.from_numpy(digits.astype(np.float32) / 255).unsqueeze(1)
for name in sys.argv[1:]:
    model, _ = load_model(models.model(name), name, f"results/models/{name}/seed0/model.pt")
    model.eval()
    with torch.no_grad():
        msp_in, msp_out = (torch.softmax(model(x), 1).max(1).values.numpy() for x in (mnist, noise))
    is_in = np.r_[np.ones(len(msp_in)), np.zeros(len(msp_out))]
    print(f"{name}: MSP AUROC {roc_auc_score(is_in, np.r_[msp_in, msp_out]):.4f}")
