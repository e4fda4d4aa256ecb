"""Our attacks against torchattacks and ART (adversarial-robustness-toolbox) on one model, one set of samples and
one set of parameters: adversarial examples per second, success rate, mean distortion of the successes.

Every returned x is judged the same way, by our model's prediction (targeted: == target; untargeted: != label)
and our distortion functions, so a peer's own success bookkeeping never enters the numbers. Not a test: run
it, read the numbers, put them in notes. Install the peers first (requirements-bench.txt says how).

Where a peer is not the same algorithm, the JSON says so under "caveats" (ART's JSMA is a per-feature
top-two variant; torchattacks' C&W has no search over c; ART's C&W uses a line search, not Adam).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tempered.artifacts import read_arrays, read_checkpoint, write_checkpoint  # noqa: E402
from tempered.attacks.common import DISTORTIONS, attack_succeeded  # noqa: E402
from tempered.attacks.cw_l2 import CarliniWagnerL2  # noqa: E402
from tempered.attacks.fgsm import FGSM  # noqa: E402
from tempered.attacks.jsma import JSMA  # noqa: E402
from tempered.attacks.pgd import PGD  # noqa: E402
from tempered.config import REPO_ROOT, load_config  # noqa: E402
from tempered.data.arrays import read_images, subset  # noqa: E402
from tempered.device import seed_everything  # noqa: E402
from tempered.models import build_model  # noqa: E402
from tempered.training.methods import train_classifier  # noqa: E402

CAVEATS = {
    "jsma/torchattacks": "pairwise map like ours, but one sample at a time with a 10-row Jacobian; budget "
                         "ceil(gamma*|X|/2) iterations (can exceed gamma*|X| features); search domain x < 0.99; "
                         "with no admissible pair it still modifies pair (0, 0). Run on the softmax-wrapped model "
                         "so its F is the softmax, as ours.",
    "jsma/art": "NOT the paper's pairwise map: takes the two features with the largest target-class derivative "
                "(ignores beta), stops only after exceeding gamma. Run on the softmax-wrapped model.",
    "cw/torchattacks": "one fixed c (its default, 1) and Adam for --cw-iterations steps: no binary search over c, "
                       "so no per-sample smallest c; keeps the smallest-L2 success of that single run.",
    "cw/all": "with --cw-iterations well below 1000 C&W's tanh variables barely move black pixels (w = -7.3, "
              "Adam steps ~lr): success rates then understate the attack for every implementation.",
    "cw/art": "binary search over c like ours, but each step is gradient descent with a line search "
              "(max_halving/max_doubling), not Adam.",
}


def load_or_train_model(checkpoint: Path, images: dict, split: dict, samples: int, epochs: int) -> nn.Module:
    """The Papernot CNN from `checkpoint`; made there first (real MNIST, seed 0) when it does not exist."""
    if not checkpoint.exists():
        model_cfg = {**load_config([REPO_ROOT / "config.yaml"])["models"]["cnn"], "epochs": epochs}
        x, y = subset(images, split, "train", samples)
        model = build_model(model_cfg)
        train_classifier(model, x, y, epochs=epochs, batch_size=model_cfg["batch_size"],
                         optimizer_cfg={**model_cfg["optimizer"], "lr": 0.05}, temperature=1.0,
                         generator=seed_everything(0), device=torch.device("cpu"))
        write_checkpoint(checkpoint, model.state_dict(), {"model_config": model_cfg, "train_samples": samples})
    state, meta = read_checkpoint(checkpoint)
    model = build_model(meta["model_config"])
    model.load_state_dict(state)
    return model.eval()


def judged(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, labels: torch.Tensor,
           target: torch.Tensor | None, norm: str, seconds: float) -> dict:
    with torch.no_grad():
        success = attack_succeeded(model(x_adv), labels, target)
    distortion = DISTORTIONS[norm](x, x_adv)
    in_box = bool(x_adv.min() >= 0 and x_adv.max() <= 1)
    return {"seconds": seconds, "examples_per_s": len(x) / seconds, "success_rate": success.float().mean().item(),
            f"mean_{norm}_of_successes": distortion[success].mean().item() if success.any() else None,
            f"max_{norm}": distortion.max().item(), "in_box": in_box, "n": len(x)}


def timed(run):
    started = time.perf_counter()
    out = run()
    return out, time.perf_counter() - started


def art_classifier(model: nn.Module):
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=(1, 28, 28), nb_classes=10,
                             clip_values=(0.0, 1.0), device_type="cpu")


def run_fgsm(model, x, labels, args, peers) -> dict:
    out = {}
    result, s = timed(lambda: FGSM(eps=args.eps).attack(model, x, labels))
    out["ours"] = judged(model, x, result.x_adv, labels, None, "linf", s)
    if "torchattacks" in peers:
        import torchattacks

        x_adv, s = timed(lambda: torchattacks.FGSM(model, eps=args.eps)(x, labels))
        out["torchattacks"] = judged(model, x, x_adv, labels, None, "linf", s)
    if "art" in peers:
        from art.attacks.evasion import FastGradientMethod

        attack = FastGradientMethod(art_classifier(model), norm=np.inf, eps=args.eps, batch_size=len(x))
        x_adv, s = timed(lambda: torch.from_numpy(attack.generate(x.numpy(), y=labels.numpy())))
        out["art"] = judged(model, x, x_adv, labels, None, "linf", s)
    return out


def run_pgd(model, x, labels, args, peers) -> dict:
    out = {}
    alpha, steps = args.pgd_alpha, args.pgd_steps
    result, s = timed(lambda: PGD(eps=args.eps, alpha=alpha, steps=steps).attack(model, x, labels))
    out["ours"] = judged(model, x, result.x_adv, labels, None, "linf", s)
    if "torchattacks" in peers:
        import torchattacks

        torch.manual_seed(0)
        attack = torchattacks.PGD(model, eps=args.eps, alpha=alpha, steps=steps, random_start=True)
        x_adv, s = timed(lambda: attack(x, labels))
        out["torchattacks"] = judged(model, x, x_adv, labels, None, "linf", s)
    if "art" in peers:
        from art.attacks.evasion import ProjectedGradientDescent

        np.random.seed(0)
        attack = ProjectedGradientDescent(art_classifier(model), norm=np.inf, eps=args.eps, eps_step=alpha,
                                          max_iter=steps, num_random_init=1, batch_size=len(x), verbose=False)
        x_adv, s = timed(lambda: torch.from_numpy(attack.generate(x.numpy(), y=labels.numpy())))
        out["art"] = judged(model, x, x_adv, labels, None, "linf", s)
    return out


def run_jsma(model, x, labels, target, args, peers) -> dict:
    out = {}
    result, s = timed(lambda: JSMA(gamma=args.gamma).attack(model, x, labels, target))
    out["ours"] = judged(model, x, result.x_adv, labels, target, "l0", s)
    probabilities = nn.Sequential(model, nn.Softmax(dim=1)).eval()
    if "torchattacks" in peers:
        import torchattacks

        attack = torchattacks.JSMA(probabilities, theta=1.0, gamma=args.gamma)
        attack.set_mode_targeted_by_function(lambda images, labels: target, quiet=True)
        x_adv, s = timed(lambda: attack(x, labels))
        out["torchattacks"] = judged(model, x, x_adv, labels, target, "l0", s)
    if "art" in peers:
        from art.attacks.evasion import SaliencyMapMethod

        attack = SaliencyMapMethod(art_classifier(probabilities), theta=1.0, gamma=args.gamma, batch_size=len(x),
                                   verbose=False)
        x_adv, s = timed(lambda: torch.from_numpy(attack.generate(x.numpy(), y=target.numpy())))
        out["art"] = judged(model, x, x_adv, labels, target, "l0", s)
    return out


def run_cw(model, x, labels, target, args, peers) -> dict:
    out = {}
    ours = CarliniWagnerL2(binary_search_steps=args.cw_search_steps, max_iterations=args.cw_iterations)
    result, s = timed(lambda: ours.attack(model, x, labels, target))
    out["ours"] = judged(model, x, result.x_adv, labels, target, "l2", s)
    if "torchattacks" in peers:
        import torchattacks

        attack = torchattacks.CW(model, c=1.0, kappa=0, steps=args.cw_iterations, lr=1e-2)
        attack.set_mode_targeted_by_function(lambda images, labels: target, quiet=True)
        x_adv, s = timed(lambda: attack(x, labels))
        out["torchattacks"] = judged(model, x, x_adv, labels, target, "l2", s)
    if "art" in peers:
        from art.attacks.evasion import CarliniL2Method

        attack = CarliniL2Method(art_classifier(model), confidence=0.0, targeted=True, learning_rate=1e-2,
                                 binary_search_steps=args.cw_search_steps, max_iter=args.cw_iterations,
                                 initial_const=1e-3, batch_size=len(x), verbose=False)
        x_adv, s = timed(lambda: torch.from_numpy(attack.generate(x.numpy(), y=target.numpy())))
        out["art"] = judged(model, x, x_adv, labels, target, "l2", s)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default="bench/out/attacks_vs_peers_model.pt",
                        help="a tempered checkpoint; trained and written here first if missing")
    parser.add_argument("--train-samples", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--images", default="results/data/mnist.npz")
    parser.add_argument("--split", default="results/data/split.npz")
    parser.add_argument("--attacks", nargs="+", default=["fgsm", "pgd", "jsma", "cw"])
    parser.add_argument("--peers", nargs="*", default=["torchattacks", "art"])
    parser.add_argument("--samples", type=int, default=100, help="for FGSM and PGD")
    parser.add_argument("--jsma-samples", type=int, default=20)
    parser.add_argument("--cw-samples", type=int, default=20)
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--pgd-alpha", type=float, default=0.01)
    parser.add_argument("--pgd-steps", type=int, default=40)
    parser.add_argument("--gamma", type=float, default=0.145)
    parser.add_argument("--cw-search-steps", type=int, default=5)
    parser.add_argument("--cw-iterations", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="bench/out/attacks_vs_peers.json")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    images, split = read_images(args.images), read_arrays(args.split)
    model = load_or_train_model(Path(args.checkpoint), images, split, args.train_samples, args.epochs)
    x, labels = subset(images, split, "test", max(args.samples, args.jsma_samples, args.cw_samples) * 2)
    with torch.no_grad():
        correct = model(x).argmax(1) == labels
    # Attack only what the model gets right, as both papers do; targets: the next class.
    x, labels = x[correct], labels[correct]
    target = (labels + 1) % 10
    results = {}
    for name in args.attacks:
        if name in ("fgsm", "pgd"):
            n = args.samples
            run = run_fgsm if name == "fgsm" else run_pgd
            results[name] = run(model, x[:n], labels[:n], args, args.peers)
        elif name == "jsma":
            n = args.jsma_samples
            results[name] = run_jsma(model, x[:n], labels[:n], target[:n], args, args.peers)
        elif name == "cw":
            n = args.cw_samples
            results[name] = run_cw(model, x[:n], labels[:n], target[:n], args, args.peers)
        else:
            raise SystemExit(f"unknown attack {name!r}")
        for impl, row in results[name].items():
            distortion = next(f"{k}={v:.3f}" for k, v in row.items() if k.startswith("mean_") and v is not None) \
                if row["success_rate"] > 0 else "no success"
            print(f"{name:5s} {impl:13s} {row['examples_per_s']:9.2f} ex/s  success {row['success_rate']:.2f}  "
                  f"{distortion}  in_box={row['in_box']}")
    versions = {"torch": torch.__version__}
    for peer, module in (("torchattacks", "torchattacks"), ("art", "art")):
        if peer in args.peers:
            versions[peer] = __import__(module).__version__
    report = {"checkpoint": args.checkpoint, "test_accuracy_of_first_samples": correct.float().mean().item(),
              "threads": args.threads, "load_average": os.getloadavg(),
              "params": {k: v for k, v in vars(args).items() if k not in ("out", "checkpoint")},
              "versions": versions, "results": results,
              "caveats": {k: v for k, v in CAVEATS.items() if k.split("/")[0] in args.attacks}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
