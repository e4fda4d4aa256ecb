"""C&W's one stubborn attempt on the quick CNN and what frees it (2026-12-02). Run from the root of a built quick
tree: `python cw_local_minimum.py [checkpoint]` (default results/models/cnn/seed0/model.pt).

1. Test digit 1750 (a 7) towards 6, from the digit itself, one Adam run of 10,000 iterations at each fixed c from
   1e-1 to 1e7: the smallest margin max_{i != 6} Z_i - Z_6 reached. It stops 0.43-0.48 logits short at every c
   from 1e3 up, where the distance term no longer matters: a local minimum of f in the box, not a budget.
2. The four attempts the reference run's C&W job failed at 9 x 1,000 (test digits 409 -> 0, 751 -> 6, 1750 -> 6,
   3073 -> 4), attacked again with random_starts 0 and with the configured random starting points."""
import sys
import time

import numpy as np
import torch

from tempered.attacks.cw_l2 import CarliniWagnerL2
from tempered.data.arrays import read_images
from tempered.models.checkpoints import load_model
from tempered.step_params import step_config

torch.set_num_threads(1)
checkpoint = sys.argv[1] if len(sys.argv) > 1 else "results/models/cnn/seed0/model.pt"
config = step_config(["config.yaml", "workflow/presets/quick.yaml"], "attack", attack="cw_l2")
model, _ = load_model(config.model("cnn"), "cnn", checkpoint)
model.eval()
images = read_images("results/data/mnist.npz")
params = {k: v for k, v in config["attacks"]["cw_l2"].items() if k != "samples"}


def digits(index):
    x = torch.from_numpy(images["x_test"][index].astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(images["y_test"][index].astype(np.int64))


class Margins(torch.nn.Module):
    """The model, recording each call's margin towards `target`."""

    def __init__(self, target):
        super().__init__()
        self.target, self.seen = target, []

    def forward(self, x):
        logits = model(x)
        others = logits.detach().clone()
        others[:, self.target] = -torch.inf
        self.seen.append(float((others.amax(1) - logits.detach()[:, self.target]).min()))
        return logits


class NoBar:
    def update(self, *args, **kwargs):
        pass


x, y = digits([1750])
attack = CarliniWagnerL2(**{**params, "max_iterations": 10000})
for c in (1e-1, 1e1, 1e3, 1e5, 1e7):
    recorder, best = Margins(6), torch.full((1,), torch.inf)
    ok = attack._minimise(recorder, x, attack._from_box(x), y, torch.tensor([6]), torch.tensor([c]), best, x.clone(),
                          NoBar())
    print(f"c={c:g}: {len(recorder.seen)} iterations, success {bool(ok[0])}, smallest margin {min(recorder.seen):.3f}")

x, y = digits([409, 751, 1750, 3073])
target = torch.tensor([0, 6, 6, 4])
for starts in (0, params["random_starts"]):
    t0 = time.process_time()
    result = CarliniWagnerL2(**{**params, "random_starts": starts}).attack(model, x, y, target)
    print(f"random_starts {starts}: success {result.success.tolist()}, "
          f"L2 {[round(float(v), 3) for v in result.distortion]}, {time.process_time() - t0:.0f} CPU-s")
