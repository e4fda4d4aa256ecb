"""Small models trained together: K models in one vectorised step (torch.func) against K trained one at a time.

Issue "Costs", item 3. For each model (the Szegedy MLPs FC100-100-10 and FC200-200-10, and the Papernot CNN as a
membership shadow trains it: membership.shadow_model's settings) and each K, two variants train K models for
`--steps` optimiser steps on random MNIST-shaped data, every model on its own minibatches:

- sequential: what the pipeline does, one model after the other, each with its own optimiser (loop.make_optimizer
  from the model's config) and the pipeline's objective (objectives.CrossEntropyAtT, weight penalty included);
- vmap: the K models' parameters stacked (torch.func.stack_module_state), one functional_call vmapped over the
  stacked parameters and over the K minibatches, the summed loss back-propagated once and the same optimiser type
  and settings stepping the stacked tensors (SGD with momentum is elementwise, so that is K optimisers in one).

Samples/s are summed over the K models. Variants run interleaved (A, B, A, B, ...; their order flips each repeat)
so that load drifts hit both; the table gives medians, the range, and the median of the paired per-repeat
ratios. Then an equivalence check: same initial weights, same minibatches, N steps, max |difference| of the final
weights between the two variants (dropout off: with dropout the masks come from different random draws).
Not a test: run it, read the numbers, put them in docs/costs/ensemble_training.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tempered.config import REPO_ROOT, load_config, shadow_models  # noqa: E402
from tempered.models import build_model  # noqa: E402
from tempered.training.loop import make_optimizer, trainable  # noqa: E402
from tempered.training.objectives import CrossEntropyAtT  # noqa: E402

CPU = torch.device("cpu")


class _Loss(nn.Module):
    """The pipeline's CrossEntropyAtT loss as a module, so that functional_call can swap in one model's parameters
    (the Szegedy weight penalty reads them from the model)."""

    def __init__(self, model: nn.Module, temperature: float):
        super().__init__()
        self.model, self.temperature = model, temperature

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(x)
        loss = F.cross_entropy(logits / self.temperature, y)
        if hasattr(self.model, "weight_penalty"):
            loss = loss + self.model.weight_penalty()
        return loss, logits


def _models(model_cfg, k: int, seed: int = 0) -> list[nn.Module]:
    out = []
    for i in range(k):
        torch.manual_seed(seed + i)
        out.append(build_model(model_cfg).train())
    return out


def train_sequential(model_cfg, models: list[nn.Module], x, y, idx: torch.Tensor) -> list[nn.Module]:
    """One model after the other, as rule train_model does: own optimiser, own objective, idx[step, model]."""
    for k, model in enumerate(models):
        optimizer = make_optimizer(trainable(model), model_cfg["optimizer"])
        objective = CrossEntropyAtT(model, x, y, temperature=model_cfg["temperature"], device=CPU)
        objective.start_epoch()
        for step in range(idx.shape[0]):
            loss = objective.batch_loss(model, idx[step, k])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return models


def train_vmapped(model_cfg, models: list[nn.Module], x, y, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """All K models in one step: stacked parameters, vmap over them and over the K minibatches."""
    params, buffers = stack_module_state(models)
    if buffers:
        raise ValueError("buffers (batch-norm statistics) would need in-place updates under vmap; none expected")
    loss_module = _Loss(copy.deepcopy(models[0]).to("meta"), model_cfg["temperature"])
    stacked = {f"model.{name}": p for name, p in params.items()}
    dropout = any(isinstance(m, nn.Dropout) and m.p > 0 for m in models[0].modules())

    def one(p, xb, yb):
        return functional_call(loss_module, p, (xb, yb))

    step_fn = vmap(one, in_dims=(0, 0, 0), randomness="different" if dropout else "error")
    optimizer = make_optimizer(list(stacked.values()), model_cfg["optimizer"])
    k, batch = idx.shape[1], idx.shape[2]
    loss_sum = torch.zeros(k)
    correct = torch.zeros(k, dtype=torch.long)
    for step in range(idx.shape[0]):
        xb, yb = x[idx[step]], y[idx[step]]  # (K, B, 1, 28, 28), (K, B)
        losses, logits = step_fn(stacked, xb, yb)
        loss_sum += losses.detach() * batch  # the epoch sums CrossEntropyAtT keeps, per model
        correct += (logits.detach().argmax(-1) == yb).sum(1)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # models are independent: d(sum)/d(params_k) = d(loss_k)/d(params_k)
        optimizer.step()
    return {name.removeprefix("model."): p.detach() for name, p in stacked.items()}


def _indices(steps: int, k: int, batch: int, n: int, seed: int) -> torch.Tensor:
    """idx[step, model]: each model its own minibatches, as K shadows on K data sets would have."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (steps, k, batch), generator=g)


def _max_diff(stacked: dict[str, torch.Tensor], models: list[nn.Module]) -> tuple[float, bool]:
    diff, identical = 0.0, True
    for name, tensor in stacked.items():
        ref = torch.stack([dict(m.named_parameters())[name].detach() for m in models]).to(tensor.dtype)
        diff = max(diff, (ref - tensor).abs().max().item())
        identical = identical and torch.equal(ref, tensor)
    return diff, identical


def equivalence(model_cfg, x, y, k: int, steps: int) -> dict[str, float | bool]:
    """vmap against sequential from the same weights on the same minibatches, after 1 and after `steps` steps;
    float32 sequential against float64 sequential gives the size of float32 rounding itself."""
    out: dict[str, float | bool] = {}
    for n in (1, steps):
        idx = _indices(n, k, model_cfg["batch_size"], len(x), seed=123)
        seq = train_sequential(model_cfg, _models(model_cfg, k), x, y, idx)
        vec = train_vmapped(model_cfg, _models(model_cfg, k), x, y, idx)
        out[f"vmap_vs_seq_{n}"], out[f"bit_identical_{n}"] = _max_diff(vec, seq)
        seq64 = train_sequential(model_cfg, [m.double() for m in _models(model_cfg, k)], x.double(), y, idx)
        out[f"f32_vs_f64_{n}"], _ = _max_diff({name: torch.stack([dict(m.named_parameters())[name].detach()
                                                                  for m in seq]).double()
                                               for name, _ in seq[0].named_parameters()}, seq64)
    out["max_abs_weight"] = max(p.detach().abs().max().item() for m in seq for p in m.parameters())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["fc100_100_10", "fc200_200_10", "shadow"],
                        help="config model names; 'shadow' is membership.shadow_model")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 20, 2],
                        help="optimiser steps per model and variant, one per --models entry")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=4096, help="rows of the random MNIST-shaped pool")
    parser.add_argument("--check-k", type=int, default=2)
    parser.add_argument("--check-steps", type=int, default=5)
    parser.add_argument("--out", default="bench/out/ensemble_training.json")
    parser.add_argument("--markdown", default=None, help="also write the table here")
    args = parser.parse_args()
    if len(args.steps) != len(args.models):
        parser.error("--steps needs one value per --models entry")

    config = load_config([REPO_ROOT / "config.yaml"])
    torch.set_num_threads(config["compute"]["threads"])
    names = {m: shadow_models(config)[0] if m == "shadow" else m for m in args.models}
    cfgs = {m: config["models"][names[m]] for m in args.models}
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.samples, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (args.samples,), generator=g)

    variants = {"sequential": lambda c, ms, i: train_sequential(c, ms, x, y, i),
                "vmap": lambda c, ms, i: train_vmapped(c, ms, x, y, i)}
    seconds = {(m, k, v): [] for m in args.models for k in args.ks for v in variants}
    for m in args.models:  # warm-up: first calls build kernels and caches
        for run in variants.values():
            run(cfgs[m], _models(cfgs[m], 2), _indices(1, 2, cfgs[m]["batch_size"], args.samples, seed=99))
    for r in range(args.repeats):
        for m, steps in zip(args.models, args.steps, strict=True):
            cfg = cfgs[m]
            for k in args.ks:
                idx = _indices(steps, k, cfg["batch_size"], args.samples, seed=r)
                order = list(variants) if r % 2 == 0 else list(variants)[::-1]
                for v in order:  # interleaved, order flipped per repeat
                    models = _models(cfg, k)
                    started = time.perf_counter()
                    variants[v](cfg, models, idx)
                    seconds[(m, k, v)].append(time.perf_counter() - started)
            print(f"repeat {r + 1}/{args.repeats}: {m} done", flush=True)

    rows = []
    for m, steps in zip(args.models, args.steps, strict=True):
        for k in args.ks:
            samples = k * steps * cfgs[m]["batch_size"]
            rate = {v: [samples / s for s in seconds[(m, k, v)]] for v in variants}
            ratios = [b / a for a, b in zip(seconds[(m, k, "vmap")], seconds[(m, k, "sequential")], strict=True)]
            rows.append({"model": m, "config_model": names[m], "batch_size": cfgs[m]["batch_size"], "K": k,
                         "steps": steps,
                         **{f"{v}_samples_per_s": statistics.median(r) for v, r in rate.items()},
                         **{f"{v}_range": [min(r), max(r)] for v, r in rate.items()},
                         "speedup_median": statistics.median(ratios), "speedup_range": [min(ratios), max(ratios)]})
    checks = {}
    for m in args.models:
        checks[m] = equivalence({**cfgs[m], "dropout": 0.0}, x, y, args.check_k, args.check_steps)
    result = {"threads": torch.get_num_threads(), "torch": torch.__version__, "repeats": args.repeats,
              "samples": args.samples, "rows": rows,
              "equivalence": {"k": args.check_k, "steps": args.check_steps, "dropout": 0.0, "models": checks}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")

    header = "| model | batch | K | sequential samples/s (range) | vmap samples/s (range) | vmap / sequential (range) |"
    lines = [header, "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        s, v, q = row["sequential_range"], row["vmap_range"], row["speedup_range"]
        lines.append(f"| {row['config_model']} | {row['batch_size']} | {row['K']} | "
                     f"{row['sequential_samples_per_s']:.0f} ({s[0]:.0f}-{s[1]:.0f}) | "
                     f"{row['vmap_samples_per_s']:.0f} ({v[0]:.0f}-{v[1]:.0f}) | "
                     f"x{row['speedup_median']:.2f} ({q[0]:.2f}-{q[1]:.2f}) |")
    n = args.check_steps
    lines += ["", f"Equivalence: K={args.check_k}, dropout 0, same initial weights and minibatches; max |weight "
              f"difference| after 1 and {n} steps (float32 vs float64: the size of float32 rounding itself).", "",
              f"| model | vmap vs seq, 1 step | vmap vs seq, {n} | f32 vs f64 seq, 1 | f32 vs f64 seq, {n} "
              "| bit-identical (1, N) | max |w| |", "|---|---:|---:|---:|---:|---|---:|"]
    for m, c in checks.items():
        lines.append(f"| {names[m]} | {c['vmap_vs_seq_1']:.2g} | {c[f'vmap_vs_seq_{n}']:.2g} | "
                     f"{c['f32_vs_f64_1']:.2g} | {c[f'f32_vs_f64_{n}']:.2g} | "
                     f"{c['bit_identical_1']}, {c[f'bit_identical_{n}']} | {c['max_abs_weight']:.2g} |")
    print("\n".join(lines))
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
