"""Box-constrained L-BFGS adversarial examples: our batched solver against per-image scipy L-BFGS-B.

Both sides minimise the same objective |r|^2 + c * CE(f(x + r), target) over [0, 1]^784 with the same search
over c (tempered.attacks.lbfgs.lbfgs_attack's schedule), the same model, samples, targets, history length and
stopping tolerances; the baseline calls scipy.optimize.minimize(method="L-BFGS-B") once per image and c, the way
cleverhans and foolbox run this attack. The model is a FC100-100-10 trained briefly on real MNIST when
results/data/mnist.npz exists, else on synthetic prototype images. Not a test: run it, read the numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tempered.attacks.common import random_other_targets  # noqa: E402
from tempered.attacks.lbfgs import adversarial_objective, lbfgs_attack  # noqa: E402
from tempered.models.szegedy import SigmoidMLP  # noqa: E402
from tempered.training.methods import train_classifier  # noqa: E402

SGD = {"name": "sgd", "lr": 0.5, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0}


def load_data(images: Path, train_samples: int, seed: int):
    if images.exists():
        from tempered.data.arrays import read_images, subset
        from tempered.data.split import make_split

        arrays = read_images(images)
        split = make_split(5000, seed)
        x_train, y_train = subset(arrays, split, "train", train_samples)
        x_test, y_test = subset(arrays, split, "test")
        return "mnist", x_train, y_train, x_test, y_test
    g = torch.Generator().manual_seed(seed)
    prototypes = (torch.rand(10, 784, generator=g) > 0.85).float()
    labels = torch.randint(0, 10, (train_samples + 2000,), generator=g)
    x = (prototypes[labels] + 0.3 * torch.rand(len(labels), 784, generator=g)).clamp(0, 1).view(-1, 1, 28, 28)
    return "synthetic", x[:train_samples], labels[:train_samples], x[train_samples:], labels[train_samples:]


def scipy_attack(model, x: torch.Tensor, targets: torch.Tensor, *, initial_c: float, search_steps: int,
                 c_factor: float, max_iter: int, history: int, pgtol: float, ftol: float):
    """Per-image L-BFGS-B with lbfgs_attack's c schedule; returns (distortion or NaN, iterations) per image."""
    n = x[0].numel()
    distortions, iterations = [], []
    for i in range(len(x)):
        xi, ti = x[i:i + 1], targets[i:i + 1]
        x0 = xi.flatten().double().numpy()
        c, lo, hi = initial_c, 0.0, math.inf
        best_sq, its = math.inf, 0
        for _ in range(search_steps):
            objective = adversarial_objective(model, xi, ti, torch.tensor([c], dtype=x.dtype))

            def fun(z, objective=objective):
                zt = torch.tensor(z, dtype=x.dtype).view(1, -1).requires_grad_(True)
                f = objective(zt, torch.zeros(1, dtype=torch.long))
                (g,) = torch.autograd.grad(f.sum(), zt)
                return f.item(), g.double().numpy().ravel()

            res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * n,
                           options={"maxiter": max_iter, "maxcor": history, "gtol": pgtol, "ftol": ftol})
            its += res.nit
            adv = torch.tensor(res.x, dtype=x.dtype).view_as(xi)
            with torch.no_grad():
                hit = model(adv).argmax(1).item() == ti.item()
            if hit:
                best_sq = min(best_sq, float(((res.x - x0) ** 2).sum()))
                hi = min(hi, c)
            else:
                lo = max(lo, c)
            c = c * c_factor if math.isinf(hi) else (c / c_factor if lo == 0 else math.sqrt(lo * hi))
        distortions.append(math.sqrt(best_sq / n) if math.isfinite(best_sq) else math.nan)
        iterations.append(its)
    return torch.tensor(distortions), torch.tensor(iterations)


def summary(name: str, seconds: float, dist: torch.Tensor, iterations: torch.Tensor) -> dict:
    ok = ~dist.isnan()
    return {"name": name, "seconds": seconds, "examples_per_s": len(dist) / seconds,
            "success_rate": ok.float().mean().item(),
            "median_distortion": dist[ok].median().item() if ok.any() else math.nan,
            "mean_distortion": dist[ok].mean().item() if ok.any() else math.nan,
            "mean_lbfgs_iterations": iterations.float().mean().item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", default="results/data/mnist.npz")
    parser.add_argument("--train-samples", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--search-steps", type=int, default=10)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/out/lbfgs_vs_scipy.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    source, x_train, y_train, x_test, y_test = load_data(Path(args.images), args.train_samples, args.seed)
    model = SigmoidMLP(hidden=(100, 100))
    train_classifier(model, x_train, y_train, epochs=args.epochs, batch_size=128, optimizer_cfg=SGD,
                     temperature=1.0, generator=torch.Generator().manual_seed(args.seed), device=torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        test_pred = model(x_test).argmax(1)
    test_error = (test_pred != y_test).float().mean().item()
    correct = (test_pred == y_test).nonzero(as_tuple=True)[0][:args.samples]
    x, labels = x_test[correct], y_test[correct]
    targets = random_other_targets(labels, 10, torch.Generator().manual_seed(args.seed))
    settings = {"initial_c": 0.1, "search_steps": args.search_steps, "c_factor": 10.0, "max_iter": args.max_iter,
                "history": 10, "pgtol": 1e-5, "ftol": 2.2e-9}

    started = time.perf_counter()
    ours = lbfgs_attack(model, x, targets, **settings)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    ref_dist, ref_its = scipy_attack(model, x, targets, **settings)
    ref_s = time.perf_counter() - started

    both = ours.success & ~ref_dist.isnan()
    ratio = ours.distortion[both] / ref_dist[both]
    rows = [summary("ours (batched torch)", ours_s, ours.distortion, ours.iterations),
            summary("scipy L-BFGS-B per image", ref_s, ref_dist, ref_its)]
    result = {
        "data": source, "model": "FC100-100-10", "train_samples": len(x_train), "epochs": args.epochs,
        "test_error": test_error, "samples": len(x), "threads": torch.get_num_threads(), "settings": settings,
        "variants": rows, "speedup": ref_s / ours_s,
        "agreement": {"both_succeed": int(both.sum()), "only_ours": int((ours.success & ref_dist.isnan()).sum()),
                      "only_scipy": int((~ours.success & ~ref_dist.isnan()).sum()),
                      "distortion_ratio_median": ratio.median().item() if both.any() else math.nan,
                      "distortion_ratio_p05_p95": [ratio.quantile(0.05).item(), ratio.quantile(0.95).item()]
                      if both.any() else [math.nan, math.nan]},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{source}: FC100-100-10 test error {test_error:.4f}; {len(x)} correctly classified test images, "
          f"{torch.get_num_threads()} thread(s)")
    for row in rows:
        print(f"{row['name']:28s} {row['examples_per_s']:8.2f} examples/s  success {row['success_rate']:.3f}  "
              f"median distortion {row['median_distortion']:.4f}  mean iterations {row['mean_lbfgs_iterations']:.0f}")
    agreement = result["agreement"]
    print(f"speedup x{result['speedup']:.1f}; distortion ours/scipy median {agreement['distortion_ratio_median']:.4f}"
          f" (5-95%: {', '.join(f'{v:.4f}' for v in agreement['distortion_ratio_p05_p95'])})")


if __name__ == "__main__":
    main()
