"""Attack stage: every enabled attack on the base model and each distilled student, input-gradient
magnitudes, and the success-vs-temperature report (Papernot et al. 2016, S&P, section V; Carlini & Wagner
2016, "Defensive distillation is not robust to adversarial examples")."""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tempered.artifacts import checked_metrics, read_arrays, read_json, sha256_file, write_arrays, write_metrics
from tempered.attacks import registry
from tempered.attacks.common import Attack, AttackResult, adversarial_robustness, concatenate, l0_fraction
from tempered.attacks.jsma import JSMA
from tempered.config import ConfigError
from tempered.data.arrays import read_images
from tempered.device import resolve_device, seed_everything
from tempered.models.checkpoints import load_model
from tempered.provenance import provenance
from tempered.step_params import step_config

log = logging.getLogger(__name__)

TARGETED = ("jsma", "jsma_known_t", "cw_l2")
# attacks.<name> -> the registered attack it runs (tempered.attacks.registry); each attack class names its norm.
REGISTERED = {"jsma": "jsma", "jsma_known_t": "jsma", "fgsm": "fgsm", "pgd": "pgd", "cw_l2": "cw_l2"}
NUM_CLASSES = 10


def build_attack(name: str, cfg: dict, model_temperature: float, seed: int) -> Attack:
    """The attack for config attacks.<name>, through the registry. jsma_known_t is JSMA told the student's training
    T (it differentiates softmax(z/T_train)); PGD's random start and C&W's random starting points are seeded by
    attacks.seed; attacks.<name>.samples selects samples and is no attack parameter. The iterative ones show their
    iterations on stderr, under run_batched's bar over the attempts."""
    if name not in REGISTERED:
        raise ConfigError(f"unknown attack {name!r}; known: {', '.join(REGISTERED)}")
    settings = {"jsma_known_t": {"temperature": model_temperature}, "pgd": {"seed": seed},
                "cw_l2": {"seed": seed}}.get(name, {})
    params = {k: v for k, v in cfg.items() if k != "samples"}
    return registry.build_attack(REGISTERED[name], params, progress=True, **settings)


def attack_sample_indices(n_test: int, samples: int, seed: int) -> np.ndarray:
    """The same seeded draw of test samples for every model, so success rates compare like with like."""
    if samples > n_test:
        raise ConfigError(f"attacks.samples: {samples} is more than the {n_test} test samples")
    return np.sort(np.random.default_rng(seed).choice(n_test, size=samples, replace=False))


def attacked_sample_indices(n_test: int, cfg: dict, attack_name: str) -> np.ndarray:
    """The test samples one attack runs on: the shared draw of attacks.samples, or its first
    attacks.<attack>.samples where a preset shrinks one costly attack (C&W) by samples, never by iterations
    (Carlini & Wagner's success needs its full optimisation; fewer iterations measure a weaker attack)."""
    index = attack_sample_indices(n_test, cfg["samples"], cfg["seed"])
    own = cfg[attack_name].get("samples")
    if own is None:
        return index
    if own > len(index):
        raise ConfigError(f"attacks.{attack_name}.samples: {own} is more than attacks.samples ({len(index)}), "
                          "the shared draw it is taken from")
    return index[:own]


def every_other_target(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample repeated once per other class (Papernot: 9 targets per sample): (row index, target)."""
    rows = torch.arange(len(labels)).repeat_interleave(NUM_CLASSES - 1)
    offsets = torch.arange(1, NUM_CLASSES).repeat(len(labels))
    return rows, (labels[rows] + offsets) % NUM_CLASSES


def run_batched(attack, model, x, labels, target, batch_size: int, desc: str) -> AttackResult:
    """The attack on every attempt, batch_size at a time, counted on stderr in attempts (one batch is often all
    of them: a bar over batches would move once, at the end)."""
    parts = []
    with tqdm(total=len(x), desc=desc, unit="attempt", mininterval=2.0) as bar:
        for start in range(0, len(x), batch_size):
            end = start + batch_size
            parts.append(attack.attack(model, x[start:end], labels[start:end],
                                       None if target is None else target[start:end]))
            bar.update(len(parts[-1].success))
    return concatenate(parts)


def attack_summary(result: AttackResult, x: torch.Tensor, clean_correct: torch.Tensor,
                   robustness_cap: float | None = None, sample: torch.Tensor | None = None) -> dict[str, float]:
    """Success rate over every attempt, distortion over the successful ones (the papers' convention).

    With robustness_cap (JSMA's most features changed), also Papernot's robustness (common.adversarial_robustness):
    per correctly classified sample (`sample`: the attacked sample of each attempt), the fewest features any of
    its targets needed, a failure counted at the cap. Targets are never the label, so clean_correct also
    excludes samples already assigned to their target.
    """
    ok = result.success
    distortion = result.distortion[ok]
    summary = {
        "success_rate": result.success_rate,
        "attempts": int(len(ok)),
        "successes": int(ok.sum()),
        "success_rate_on_correct": ok[clean_correct].float().mean().item() if clean_correct.any() else 0.0,
        "clean_accuracy": clean_correct.float().mean().item(),
    }
    # A statistic with nothing to average over is not measured: it is left out and its reason recorded under
    # 'not_measured', which tempered.stages.report.claims reports as such (never a NaN, never a missing key that
    # names nothing).
    not_measured = {}
    if ok.any():
        summary["distortion_mean"] = distortion.mean().item()
        summary["distortion_median"] = distortion.median().item()
    else:
        not_measured.update(dict.fromkeys(("distortion_mean", "distortion_median"), "no attempt succeeded"))
    if result.norm == "l0" and ok.any():
        summary["features_changed_fraction_mean"] = l0_fraction(x[ok], result.x_adv[ok]).mean().item()
    elif result.norm == "l0":
        not_measured["features_changed_fraction_mean"] = "no attempt succeeded"
    if result.norm == "l0" and robustness_cap is not None and clean_correct.any():
        summary["robustness_features_fraction"] = adversarial_robustness(
            l0_fraction(x, result.x_adv), ok, clean_correct, robustness_cap, sample)
    elif result.norm == "l0" and robustness_cap is not None:
        not_measured["robustness_features_fraction"] = "no attacked sample is classified correctly"
    if not_measured:
        summary["not_measured"] = not_measured
    return summary


def attack_step(config_files: Sequence[str], attack_name: str, model_name: str, seed: int, checkpoint: Path,
                images_path: Path, out: Path, metrics_path: Path) -> None:
    config = step_config(config_files, "attack", attack=attack_name)
    # Which attacks run on which models (attacks.enabled, the T grid) is the DAG's choice, not this job's input.
    cfg = config["attacks"]
    device = resolve_device(config["compute"]["device"])
    seed_everything(cfg["seed"])
    model, meta = load_model(config.model(model_name), model_name, checkpoint)
    model.to(device)
    images = read_images(images_path)
    index = attacked_sample_indices(len(images["y_test"]), cfg, attack_name)
    x = torch.from_numpy(images["x_test"][index].astype(np.float32) / 255.0).unsqueeze(1).to(device)
    labels = torch.from_numpy(images["y_test"][index].astype(np.int64)).to(device)
    rows = torch.arange(len(x), device=device)
    target = None
    if attack_name in TARGETED:
        rows, target = every_other_target(labels)
    with torch.no_grad():
        clean_correct = model(x).argmax(1) == labels
    temperature = config.model(model_name)["temperature"]
    attack = build_attack(attack_name, cfg[attack_name], temperature, cfg["seed"])
    result = run_batched(attack, model, x[rows], labels[rows], target, cfg["batch_size"],
                         f"{attack_name} on {model_name}")
    # Papernot's robustness counts a failed JSMA attempt at the most JSMA may change (2 * max_iter features).
    cap = attack.max_fraction(x[0].numel()) if isinstance(attack, JSMA) else None
    summary = attack_summary(result, x[rows], clean_correct[rows], cap, sample=rows)
    log.info("%s on %s (seed %d): %s", attack_name, model_name, seed, summary)
    record = checked_metrics(metrics_path, {  # before the first write: a refused record leaves no output
        **summary, "attack": attack_name, "model": model_name, "seed": seed, "norm": result.norm,
        "model_temperature": temperature,
        "provenance": provenance({"attack": cfg[attack_name], "samples": len(index)}, seed=cfg["seed"],
                                 device=device, data_digests={"model.pt": sha256_file(checkpoint),
                                                                 "mnist.npz": sha256_file(images_path)}),
    })
    write_arrays(out, {
        "x_adv": result.x_adv.cpu().numpy(), "success": result.success.cpu().numpy(),
        "distortion": result.distortion.cpu().numpy(), "test_index": index[rows.cpu().numpy()],
        "label": labels[rows].cpu().numpy(),
        "target": (target if target is not None else torch.full_like(rows, -1)).cpu().numpy(),
    })
    write_metrics(metrics_path, record)


def log_input_gradient_magnitudes(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """ln |dF_j/dx_i| of the deployed softmax F (T=1), per sample: (N, classes, features), float64, -inf where
    the derivative is exactly 0. Papernot et al. 2016 section V.C: distillation shrinks these by up to 1e30,
    which is what starves JSMA.

    In float32 they underflow to exactly 0 at T=20 and above, and even float64 (down to ~1e-308) is not enough
    at T=100, where the softmax margin reaches e^-1000. So the model runs in float64 (a copy, logits and their
    Jacobian J = dz/dx in float64) and the softmax Jacobian is formed in log space:
    dF_j/dx = sum_k p_j p_k (J_j - J_k) = exp(ln p_j + m_j) * S_j, S_j = sum_{k != j} exp(ln p_k - m_j) (J_j - J_k),
    with m_j = max_{k != j} ln p_k, so S_j is of order |J| and the tiny factor stays a logarithm. Writing it as
    p_j (J_j - sum_k p_k J_k) instead would cancel catastrophically for the top class, where p_j is 1.
    """
    try:
        x_in = x.detach().to(torch.float64).requires_grad_(True)
        logits = copy.deepcopy(model).double()(x_in)
    except RuntimeError:
        # Weights that .double() cannot reach (held outside the module's parameters): the logits and their
        # Jacobian stay in the model's precision. That costs digits, not range: the underflow is in the softmax.
        x_in = x.detach().requires_grad_(True)
        logits = model(x_in)
    n_classes = logits.shape[1]
    jac = torch.stack([torch.autograd.grad(logits[:, k].sum(), x_in, retain_graph=k < n_classes - 1)[0].flatten(1)
                       for k in range(n_classes)], dim=1).to(torch.float64)  # (N, classes, features)
    log_p = torch.log_softmax(logits.detach().to(torch.float64), dim=1)
    same = torch.eye(n_classes, dtype=torch.bool, device=log_p.device)
    others = log_p[:, None, :].expand(-1, n_classes, -1).masked_fill(same, -math.inf)  # [n, j, k]: ln p_k, k != j
    m = others.amax(dim=2, keepdim=True)
    r = (others - m).exp()  # weights of the other classes, the largest 1
    s = r.sum(dim=2, keepdim=True) * jac - torch.einsum("njk,nkf->njf", r, jac)
    return log_p[:, :, None] + m + s.abs().log()


def input_gradient_magnitudes(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """|dF_j/dx_i| of the deployed softmax (T=1), computed in float64, in the input's dtype: (N, classes,
    features). Underflows to 0 for hot students (below ~1e-45 in float32, ~1e-308 in float64): compare those
    with log_input_gradient_magnitudes."""
    return log_input_gradient_magnitudes(model, x).exp().to(x.dtype)


def gradient_summaries(log_magnitudes: torch.Tensor) -> dict[str, np.ndarray]:
    """Per sample: the mean and max over (class, feature) of |dF_j/dx_i|, and their log10, which stays finite
    where the value underflows float64 (a T=100 student); the fraction of derivatives above 0.01."""
    flat = log_magnitudes.flatten(1)
    ln10 = math.log(10.0)
    log10_mean = (torch.logsumexp(flat, dim=1) - math.log(flat.shape[1])) / ln10
    log10_max = flat.amax(dim=1) / ln10
    return {"log10_mean_abs": log10_mean.numpy(), "log10_max_abs": log10_max.numpy(),
            "mean_abs": torch.pow(10.0, log10_mean).numpy(), "max_abs": torch.pow(10.0, log10_max).numpy(),
            "fraction_above_0.01": (flat > math.log(0.01)).double().mean(dim=1).numpy()}


def gradients_step(config_files: Sequence[str], model_name: str, checkpoint: Path, images_path: Path,
                   out: Path) -> None:
    config = step_config(config_files, "gradients")
    cfg = config["attacks"]
    model, _ = load_model(config.model(model_name), model_name, checkpoint)
    images = read_images(images_path)
    index = attack_sample_indices(len(images["y_test"]), cfg["gradient_samples"], cfg["seed"])
    x = torch.from_numpy(images["x_test"][index].astype(np.float32) / 255.0).unsqueeze(1)
    write_arrays(out, {**gradient_summaries(log_input_gradient_magnitudes(model, x)), "test_index": index})


def register(add_step) -> None:
    """This stage's CLI steps."""
    p = add_step("attack", lambda a: attack_step(a.config, a.attack, a.model, a.seed, Path(a.checkpoint),
                                                 Path(a.images), Path(a.out), Path(a.metrics)),
                 "run one attack on one model (base or distilled student) for one seed")
    p.add_argument("--attack", required=True, choices=sorted(REGISTERED))
    p.add_argument("--model", required=True)
    p.add_argument("--seed", required=True, type=int)
    for name in ("checkpoint", "images", "out", "metrics"):
        p.add_argument(f"--{name}", required=True)

    p = add_step("gradients", lambda a: gradients_step(a.config, a.model, Path(a.checkpoint), Path(a.images),
                                                       Path(a.out)),
                 "input-gradient magnitudes of a model's deployed softmax")
    p.add_argument("--model", required=True)
    for name in ("checkpoint", "images", "out"):
        p.add_argument(f"--{name}", required=True)

    p = add_step("distillation-report", lambda a: distillation_report_step(a), "success-vs-T tables and figures")
    p.add_argument("--eval-metrics", required=True, nargs="+")
    p.add_argument("--attack-metrics", required=True, nargs="+")
    p.add_argument("--gradients", required=True, nargs="+")
    p.add_argument("--adversarial", required=True, nargs="+")
    p.add_argument("--table", required=True)
    p.add_argument("--markdown", required=True)
    p.add_argument("--metrics", required=True)
    p.add_argument("--figures", required=True, nargs=5, metavar=("SUCCESS", "ROBUSTNESS", "ACCURACY",
                                                               "GRADIENTS", "EXAMPLES"))


def distillation_report_step(args) -> None:
    from tempered.stages.attacks.distillation_report import write_distillation_report

    config = step_config(args.config, "distillation-report")
    write_distillation_report(
        config,
        eval_metrics=[read_json(p) for p in args.eval_metrics],
        attack_metrics=[read_json(p) for p in args.attack_metrics],
        gradients={Path(p).parent.name + "/" + Path(p).stem: read_arrays(p) for p in args.gradients},
        adversarial={p: read_arrays(p) for p in args.adversarial},
        outputs={"table": Path(args.table), "markdown": Path(args.markdown), "metrics": Path(args.metrics),
                 "figures": [Path(f) for f in args.figures]},
    )

