"""Is AE400-10's frozen sparse code why its L-BFGS examples transfer more than the paper's (Table 2)? Fine-tune the
built AE400-10 end to end (encoder unfrozen, which the paper rules out: "this layer was not fine-tuned") and make
its examples on the same 200 training digits; then every other cross-model net's error on them, beside the frozen
model's. Run from the root of a built quick tree: `python ae400_fine_tuned.py [epochs]` (default 5)."""
import sys

import torch

from tempered.artifacts import read_arrays
from tempered.attacks.registry import build_attack
from tempered.data.arrays import read_images, subset
from tempered.models.checkpoints import load_model
from tempered.stages.szegedy.steps import attack_samples, errors, sample_source
from tempered.step_params import step_config
from tempered.training.methods import train_classifier

torch.set_num_threads(1)
epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
files = ["config.yaml", "workflow/presets/quick.yaml"]
config = step_config(files, "lbfgs-attack")
cfg = config["szegedy"]["attack"]
images, split = read_images("results/data/mnist.npz"), read_arrays("results/data/split.npz")
names = ["fc10_1em4", "fc10_1em2", "fc10_1", "fc100_100_10", "fc200_200_10", "ae400_10"]
models = {m: load_model(config.model(m), m, f"results/models/{m}/seed0/model.pt")[0].eval() for m in names}
sample_set, limit = sample_source(cfg["sample_set"]["cross_model"], config.model("ae400_10"))
index, x, labels, targets = attack_samples(images, split, sample_set, limit, cfg)
attack = build_attack("lbfgs", cfg["lbfgs"])


def transfer(model):
    result = attack.attack(model, x, labels, targets)
    ok = result.success
    rows = errors({m: v for m, v in models.items() if m != "ae400_10"}, result.x_adv[ok], labels[ok], "cpu")
    return {"successes": int(ok.sum()), "distortion": round(float(result.distortion[ok].mean()), 4),
            **{m: round(v, 3) for m, v in rows.items()}}


print("frozen code (as built):", transfer(models["ae400_10"]), flush=True)
tuned = load_model(config.model("ae400_10"), "ae400_10", "results/models/ae400_10/seed0/model.pt")[0]
tuned.requires_grad_(True)
x_train, y_train = subset(images, split, "full", None)
mcfg = config.model("ae400_10")
optimizer_cfg = {**mcfg["optimizer"], "lr": 0.05}  # a fine-tuning rate: the frozen model's 0.5 moves the code far
history = train_classifier(tuned, x_train, y_train, epochs=epochs, batch_size=mcfg["batch_size"],
                           optimizer_cfg=optimizer_cfg, temperature=1.0,
                           generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
tuned.eval()
test_x, test_y = subset(images, split, "test", None)
with torch.no_grad():
    test_error = float((tuned(test_x).argmax(1) != test_y).float().mean())
    train_error = float((tuned(x_train).argmax(1) != y_train).float().mean())
print(f"fine-tuned {epochs} epochs: train error {train_error:.4f}, test error {test_error:.4f}", flush=True)
print("fine-tuned code:", transfer(tuned), flush=True)
