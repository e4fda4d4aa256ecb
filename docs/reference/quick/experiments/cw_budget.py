"""C&W at l2_attack.py's 9 x 10,000 against the pipeline's 9 x 1,000: the attempts a quick run's C&W job failed,
attacked again at both counts, and CPU time on one digit's nine won attempts. Run from the root of a built quick
tree: `python cw_budget.py cnn` (writes cw_<model>.json into the working directory). The attack is built as the
pipeline's attack step builds it (config attacks.cw_l2), with only max_iterations changed."""
import json
import sys
import time

import numpy as np
import torch

from tempered.data.arrays import read_images
from tempered.models.checkpoints import load_model
from tempered.stages.attacks.steps import build_attack
from tempered.step_params import step_config

torch.set_num_threads(1)
RESULTS = "results"
model_name = sys.argv[1] if len(sys.argv) > 1 else "cnn"
config = step_config(["config.yaml", "workflow/presets/quick.yaml"], "attack", attack="cw_l2")
model, _ = load_model(config.model(model_name), model_name, f"{RESULTS}/models/{model_name}/seed0/model.pt")
model.eval()
d = np.load(f"{RESULTS}/attacks/cw_l2/{model_name}/seed0.npz")
images = read_images(f"{RESULTS}/data/mnist.npz")


def cw(iterations):
    """The pipeline's C&W (attacks.cw_l2 of the quick preset) at another max_iterations."""
    return build_attack("cw_l2", {**config["attacks"]["cw_l2"], "max_iterations": iterations},
                        config.model(model_name)["temperature"], config["attacks"]["seed"])


def batch(rows):
    x = torch.from_numpy(images["x_test"][d["test_index"][rows]].astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(d["label"][rows]), torch.from_numpy(d["target"][rows])


out = {}
failed = np.flatnonzero(~d["success"])
for iters in (1000, 10000) if len(failed) else ():
    x, y, t = batch(failed)
    t0 = time.process_time()
    r = cw(iters).attack(model, x, y, t)
    out[f"failed_at_{iters}"] = {"test_index": d["test_index"][failed].tolist(), "label": d["label"][failed].tolist(),
                                 "target": d["target"][failed].tolist(), "success": r.success.tolist(),
                                 "l2": [round(float(v), 3) for v in r.distortion],
                                 "cpu_s": round(time.process_time() - t0, 1)}
    print(iters, out[f"failed_at_{iters}"], flush=True)
ok = np.flatnonzero(d["success"])[:9]  # the first nine won attempts (on the reference CNN: one digit's nine)
x, y, t = batch(ok)
for iters in (1000, 10000):
    t0 = time.process_time()
    r = cw(iters).attack(model, x, y, t)
    out[f"nine_ok_at_{iters}"] = {"success": int(r.success.sum()),
                                  "mean_l2": round(float(r.distortion[r.success].mean()), 4),
                                  "cpu_s": round(time.process_time() - t0, 1)}
    print(iters, out[f"nine_ok_at_{iters}"], flush=True)
with open(f"cw_{model_name}.json", "w") as f:
    json.dump(out, f, indent=1)
