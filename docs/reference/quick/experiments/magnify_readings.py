"""Table 4's magnified rows under two readings of "magnified to distortion 0.1": every perturbation scaled to 0.1
on its own (a sample above 0.1 shrinks), or every perturbation of a set scaled by one factor, so that the set's
mean distortion is 0.1 (all scale alike: no example shrinks while others grow; the paper's 100% on each model's
own magnified examples needs this).
Run from the root of a built quick tree: `python magnify_readings.py config.yaml workflow/presets/quick.yaml 0`
(seeds 1 and 2 need the Table 3-4 models and sets built at those seeds; see szegedy_seeds.py). Measured
2026-12-02 (seeds 0 / 1 / 2, paper in brackets), one factor per set: own-model error 1.000 at every seed;
FC100-100-10's examples on FC123-456-10 0.975 / 0.825 / 0.925 (0.98), on FC100-100-10' 0.455 / 0.47 / 0.385 (0.43);
FC123-456-10's on FC100-100-10 0.815 / 0.725 / 0.845 (0.96), on FC100-100-10' 0.355 / 0.345 / 0.315 (0.22);
FC100-100-10''s on FC100-100-10 0.36 / 0.40 / 0.43 (0.27), on FC123-456-10 0.475 / 0.505 / 0.505 (0.50). Per sample:
own 0.93 / 0.95 / 0.915 at seed 0, and the off-diagonal cells of szegedy_seeds.py. As in the pipeline
(tempered.stages.szegedy), only the digits the attack succeeded on are magnified and counted."""
import sys

import numpy as np
import torch

from tempered.attacks.common import rms_distortion
from tempered.data.arrays import read_images
from tempered.models.checkpoints import load_model
from tempered.step_params import step_config

torch.set_num_threads(1)
config_file, preset, seeds = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3:]]
config = step_config([config_file, preset], "attack", attack="cw_l2")
images = read_images("results/data/mnist.npz")
names = ["fc100_100_10_p1", "fc123_456_10_p1", "fc100_100_10_p2"]
paper = {"fc100_100_10_p1": (1.0, .98, .43), "fc123_456_10_p1": (.96, 1.0, .22), "fc100_100_10_p2": (.27, .50, 1.0)}
for seed in seeds:
    models = {m: load_model(config.model(m), m, f"results/models/{m}/seed{seed}/model.pt")[0].eval() for m in names}
    for source in names:
        made = np.load(f"results/szegedy/adversarial/{source}/seed{seed}.npz")
        ok = made["success"].astype(bool)
        x = torch.from_numpy(images["x_test"][made["sample_index"][ok]].astype(np.float32) / 255).unsqueeze(1)
        x_adv, labels = torch.from_numpy(made["x_adv"][ok]), torch.from_numpy(made["label"][ok])
        distortion = rms_distortion(x, x_adv)
        per_sample = (0.1 / distortion).view(-1, 1, 1, 1)
        for reading, factor in (("per sample", per_sample), ("one factor per set", 0.1 / distortion.mean())):
            x_big = (x + factor * (x_adv - x)).clamp(0, 1)
            with torch.no_grad():
                errors = [(models[m](x_big).argmax(1) != labels).float().mean().item() for m in names]
            print(f"seed {seed} {source:16s} {reading:18s} distortion {rms_distortion(x, x_big).mean():.4f} errors "
                  + " ".join(f"{e:.3f}" for e in errors) + f"   paper {paper[source]}")
