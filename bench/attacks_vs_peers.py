"""Our attacks against torchattacks, ART (adversarial-robustness-toolbox) and foolbox, side by side in one run, on
the pipeline's own trained models, the pipeline's own attack samples and config.yaml's attacks.* (paper values).

What users see: every x_adv of every implementation is judged per sample, the same way, by our model's prediction
(targeted: == target; untargeted: != label), our distortion functions (tempered.attacks.common) and the box [0, 1]
(a sample with any pixel outside it is a box violation); a peer's own success bookkeeping never enters. Timing is
interleaved: for each repeat the implementations of one attack run in a seeded shuffled order, so none is always
first; process CPU time (time.process_time, all threads) and wall time are recorded, medians reported.

Not a test: run it, read the numbers, put them in docs/costs/attacks_vs_peers.md. Install the peers first
(requirements-bench.txt says how). Where a peer is not the same algorithm or lacks a parameter, CAVEATS says so
and the JSON carries it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

# The project's own pieces, in one block: module moves only touch these lines.
from tempered.attacks.common import DISTORTIONS, attack_succeeded  # noqa: E402
from tempered.attacks.registry import build_attack  # noqa: E402
from tempered.config import REPO_ROOT, load_config  # noqa: E402
from tempered.data.arrays import read_images  # noqa: E402
from tempered.model_grid import model_config
from tempered.models.checkpoints import load_model  # noqa: E402
from tempered.stages.attacks.steps import attack_sample_indices  # noqa: E402

PEERS = ("torchattacks", "art", "foolbox")

CAVEATS = {
    "fgsm/all": "same algorithm everywhere (one signed-gradient step of eps on the cross-entropy, clipped to the box).",
    "pgd/all": "random starts differ by library (each draws its own uniform start; ours is seeded by attacks.seed); "
               "success can differ by a sample between repeats for the peers.",
    "pgd/art": "ART's PGD (num_random_init=1) also keeps the first of its restarts only; same eps, eps_step, max_iter.",
    "jsma/torchattacks": "pairwise saliency map like ours, but one sample at a time with a 10-row Jacobian; budget "
                         "ceil(gamma*|X|/2) iterations (can exceed gamma*|X| features); search domain x < 0.99; "
                         "with no admissible pair it still modifies pair (0, 0).",
    "jsma/art": "NOT the paper's pairwise map: takes the two features with the largest target-class derivative "
                "(ignores beta), stops only after exceeding gamma.",
    "jsma/foolbox": "foolbox 3 has no JSMA: not compared.",
    "jsma/scores": "run twice: on the softmax (F = softmax(z), as Papernot attacked the deployed model; peers get the "
                   "model wrapped in nn.Softmax) and on the logits (ours score='logits'; peers get the bare model).",
    "cw/torchattacks": "one fixed c (its default, 1) and Adam for max_iterations steps: no binary search over c and "
                       "no early abort, so no per-sample smallest c; keeps the smallest-L2 success of that one run.",
    "cw/art": "binary search over c like ours (binary_search_steps, initial_const), but each of max_iter steps is "
              "gradient descent with a line search (max_halving=5, max_doubling=5), not Adam; no early abort.",
    "cw/foolbox": "binary search and Adam like ours (binary_search_steps, steps, stepsize, initial_const, "
                  "confidence, abort_early): the same algorithm (Carlini's l2_attack.py), but its abort is per batch "
                  "(ours per sample, as l2_attack.py at batch size 1), so outputs differ where one sample stalls.",
}


# --- the implementations: each returns x_adv (a CPU float tensor like x) ------------------------------------------

def art_classifier(model: nn.Module):
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=(1, 28, 28), nb_classes=10,
                             clip_values=(0.0, 1.0), device_type="cpu")


def foolbox_model(model: nn.Module):
    import foolbox

    return foolbox.PyTorchModel(model, bounds=(0.0, 1.0), device="cpu")


def fgsm_runs(model, cfg) -> dict:
    eps = cfg["eps"]

    def ours(x, labels, target):
        return build_attack("fgsm", cfg).attack(model, x, labels).x_adv

    def torchattacks_(x, labels, target):
        import torchattacks

        return torchattacks.FGSM(model, eps=eps)(x, labels)

    def art(x, labels, target):
        from art.attacks.evasion import FastGradientMethod

        attack = FastGradientMethod(art_classifier(model), norm=np.inf, eps=eps, batch_size=len(x))
        return torch.from_numpy(attack.generate(x.numpy(), y=labels.numpy()))

    def foolbox_(x, labels, target):
        import foolbox

        _, clipped, _ = foolbox.attacks.LinfFastGradientAttack(random_start=False)(
            foolbox_model(model), x, labels, epsilons=eps)
        return clipped

    return {"ours": ours, "torchattacks": torchattacks_, "art": art, "foolbox": foolbox_}


def pgd_runs(model, cfg, seed) -> dict:
    eps, alpha, steps, random_start = cfg["eps"], cfg["alpha"], cfg["steps"], cfg.get("random_start", True)

    def ours(x, labels, target):
        return build_attack("pgd", cfg, seed=seed).attack(model, x, labels).x_adv

    def torchattacks_(x, labels, target):
        import torchattacks

        return torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start)(x, labels)

    def art(x, labels, target):
        from art.attacks.evasion import ProjectedGradientDescent

        attack = ProjectedGradientDescent(art_classifier(model), norm=np.inf, eps=eps, eps_step=alpha, max_iter=steps,
                                          num_random_init=int(random_start), batch_size=len(x), verbose=False)
        return torch.from_numpy(attack.generate(x.numpy(), y=labels.numpy()))

    def foolbox_(x, labels, target):
        import foolbox

        attack = foolbox.attacks.LinfPGD(abs_stepsize=alpha, steps=steps, random_start=random_start)
        _, clipped, _ = attack(foolbox_model(model), x, labels, epsilons=eps)
        return clipped

    return {"ours": ours, "torchattacks": torchattacks_, "art": art, "foolbox": foolbox_}


def jsma_runs(model, cfg, score) -> dict:
    theta, gamma = cfg["theta"], cfg["gamma"]
    attacked = nn.Sequential(model, nn.Softmax(dim=1)).eval() if score == "softmax" else model

    def ours(x, labels, target):
        return build_attack("jsma", {**cfg, "score": score}).attack(model, x, labels, target).x_adv

    def torchattacks_(x, labels, target):
        import torchattacks

        attack = torchattacks.JSMA(attacked, theta=theta, gamma=gamma)
        attack.set_mode_targeted_by_function(lambda images, labels: target, quiet=True)
        return attack(x, labels)

    def art(x, labels, target):
        from art.attacks.evasion import SaliencyMapMethod

        attack = SaliencyMapMethod(art_classifier(attacked), theta=theta, gamma=gamma, batch_size=len(x),
                                   verbose=False)
        return torch.from_numpy(attack.generate(x.numpy(), y=target.numpy()))

    return {"ours": ours, "torchattacks": torchattacks_, "art": art}


def cw_runs(model, cfg) -> dict:
    kappa, lr, search, iterations = (cfg["confidence"], cfg["learning_rate"], cfg["binary_search_steps"],
                                     cfg["max_iterations"])
    initial_const, abort_early = cfg["initial_const"], cfg["abort_early"]

    def ours(x, labels, target):
        return build_attack("cw_l2", cfg).attack(model, x, labels, target).x_adv

    def torchattacks_(x, labels, target):
        import torchattacks

        attack = torchattacks.CW(model, c=1.0, kappa=kappa, steps=iterations, lr=lr)
        attack.set_mode_targeted_by_function(lambda images, labels: target, quiet=True)
        return attack(x, labels)

    def art(x, labels, target):
        from art.attacks.evasion import CarliniL2Method

        attack = CarliniL2Method(art_classifier(model), confidence=kappa, targeted=True, learning_rate=lr,
                                 binary_search_steps=search, max_iter=iterations, initial_const=initial_const,
                                 batch_size=len(x), verbose=False)
        return torch.from_numpy(attack.generate(x.numpy(), y=target.numpy()))

    def foolbox_(x, labels, target):
        import foolbox

        attack = foolbox.attacks.L2CarliniWagnerAttack(binary_search_steps=search, steps=iterations, stepsize=lr,
                                                       confidence=kappa, initial_const=initial_const,
                                                       abort_early=abort_early)
        criterion = foolbox.criteria.TargetedMisclassification(target)
        _, clipped, _ = attack(foolbox_model(model), x, criterion, epsilons=None)
        return clipped

    return {"ours": ours, "torchattacks": torchattacks_, "art": art, "foolbox": foolbox_}


# --- judging and timing --------------------------------------------------------------------------------------------

def judged(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, labels: torch.Tensor,
           target: torch.Tensor | None, norm: str) -> dict:
    """Per sample, by our model and our distortions: success, distortion, box violation."""
    x_adv = x_adv.detach().to(torch.float32).reshape(x.shape)
    with torch.no_grad():
        success = attack_succeeded(model(x_adv), labels, target)
    distortion = DISTORTIONS[norm](x, x_adv)
    outside = ((x_adv < 0) | (x_adv > 1)).flatten(1).any(1)
    return {"success": success.tolist(), "distortion": distortion.tolist(), "box_violation": outside.tolist()}


def timed(run, x, labels, target) -> tuple[torch.Tensor, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    x_adv = run(x.clone(), labels.clone(), None if target is None else target.clone())
    return x_adv, time.process_time() - cpu, time.perf_counter() - wall


def summary(n: int, repeats: list[dict], norm: str) -> dict:
    """Medians over repeats; success and distortion per repeat (judged per sample), medians reported."""
    cpu = statistics.median(r["cpu_s"] for r in repeats)
    wall = statistics.median(r["wall_s"] for r in repeats)
    rates, means, boxes = [], [], []
    for r in repeats:
        ok = np.array(r["success"], dtype=bool)
        rates.append(ok.mean())
        means.append(float(np.array(r["distortion"])[ok].mean()) if ok.any() else float("nan"))
        boxes.append(int(np.sum(r["box_violation"])))
    finite = [m for m in means if not np.isnan(m)]
    return {"n": n, "cpu_s_median": cpu, "wall_s_median": wall, "samples_per_cpu_s": n / cpu,
            "samples_per_wall_s": n / wall, "success_rate_median": float(statistics.median(rates)),
            f"mean_{norm}_of_successes_median": statistics.median(finite) if finite else None,
            "box_violations_max": max(boxes)}


def bench(model, runs: dict, x, labels, target, norm: str, repeats: int, rng: np.random.Generator,
          label: str, caps: dict | None = None) -> dict:
    """Interleaved repeats: each repeat runs every implementation once, in a seeded shuffled order. caps: the most
    repeats an implementation gets (ART's C&W, 50x slower than the rest, gets one), at its shuffled place."""
    per_impl = {name: [] for name in runs}
    for r in range(repeats):
        order = list(runs)
        rng.shuffle(order)
        for name in order:
            if len(per_impl[name]) >= (caps or {}).get(name, repeats):
                continue
            x_adv, cpu, wall = timed(runs[name], x, labels, target)
            per_impl[name].append({"cpu_s": cpu, "wall_s": wall, **judged(model, x, x_adv, labels, target, norm)})
            print(f"  {label:24s} repeat {r} {name:13s} cpu {cpu:8.2f}s wall {wall:8.2f}s", file=sys.stderr,
                  flush=True)
    out = {name: {**summary(len(x), reps, norm), "repeats": reps} for name, reps in per_impl.items()}
    peers = [name for name in out if name != "ours"]
    if peers:
        ours = out["ours"]
        fastest = max(peers, key=lambda name: out[name]["samples_per_cpu_s"])
        # The goal compares at equal or better success: the fastest peer that succeeds at least as often as ours.
        matching = [p for p in peers if out[p]["success_rate_median"] >= ours["success_rate_median"]]
        comparable = max(matching, key=lambda name: out[name]["samples_per_cpu_s"]) if matching else None
        out["ratio"] = {
            "fastest_peer": fastest,
            "ours_over_fastest_peer_cpu": ours["samples_per_cpu_s"] / out[fastest]["samples_per_cpu_s"],
            "ours_over_fastest_peer_wall":
                ours["samples_per_wall_s"] / max(out[p]["samples_per_wall_s"] for p in peers),
            "fastest_peer_at_our_success": comparable,
            "ours_over_fastest_peer_at_our_success_cpu":
                ours["samples_per_cpu_s"] / out[comparable]["samples_per_cpu_s"] if comparable else None}
    return out


def attack_samples(model, images: dict, cfg: dict, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The pipeline's seeded draw (attacks.samples, attacks.seed), in its order, keeping the first n the model
    classifies correctly (an untargeted success on a misclassified digit is free); one target per sample, cycling
    through the other classes (label + 1 + i mod 9) so every offset appears, where the pipeline tries all nine."""
    index = attack_sample_indices(len(images["y_test"]), cfg["samples"], cfg["seed"])
    x = torch.from_numpy(images["x_test"][index].astype(np.float32) / 255.0).unsqueeze(1)
    labels = torch.from_numpy(images["y_test"][index].astype(np.int64))
    with torch.no_grad():
        correct = model(x).argmax(1) == labels
    x, labels = x[correct][:n], labels[correct][:n]
    target = (labels + 1 + torch.arange(len(labels)) % 9) % 10
    return x, labels, target


def table(results: dict) -> str:
    rows = ["| attack | model | impl | samples/CPU-s | samples/wall-s | ours / fastest peer (CPU) | success | "
            "mean distortion of successes | box violations |", "|" + "---|" * 9]
    for key, per_model in results.items():
        for model_name, out in per_model.items():
            ratio = out.get("ratio", {})
            for impl, row in out.items():
                if impl == "ratio":
                    continue
                dist = next(v for k, v in row.items() if k.startswith("mean_"))
                norm = next(k for k in row if k.startswith("mean_")).split("_")[1]
                shown = "-" if dist is None else f"{dist:.3f} ({norm})"
                r = ""
                if impl == "ours" and ratio:
                    r = f"**{ratio['ours_over_fastest_peer_cpu']:.2f}x** vs {ratio['fastest_peer']}"
                    if ratio["fastest_peer_at_our_success"] not in (None, ratio["fastest_peer"]):
                        r += (f"; {ratio['ours_over_fastest_peer_at_our_success_cpu']:.2f}x vs "
                              f"{ratio['fastest_peer_at_our_success']} (fastest at >= our success)")
                    elif ratio["fastest_peer_at_our_success"] is None:
                        r += "; no peer reaches our success"
                rows.append(f"| {key} | {model_name} | {impl} | {row['samples_per_cpu_s']:.2f} | "
                            f"{row['samples_per_wall_s']:.2f} | {r} | {row['success_rate_median']:.2f} | {shown} | "
                            f"{row['box_violations_max']}/{row['n']} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", nargs="+", default=[str(REPO_ROOT / "config.yaml")],
                        help="config files, as the pipeline reads them (attacks.* gives every parameter)")
    parser.add_argument("--checkpoint", nargs="+", metavar="MODEL=PATH",
                        default=["cnn=results/models/cnn/seed0/model.pt",
                                 "student_T100=results/models/student_T100/seed0/model.pt"],
                        help="config model name = a checkpoint the pipeline trained (read with its loader)")
    parser.add_argument("--images", default="results/data/mnist.npz")
    parser.add_argument("--attacks", nargs="+", default=["fgsm", "pgd", "jsma", "cw"])
    parser.add_argument("--peers", nargs="*", default=list(PEERS))
    parser.add_argument("--samples", type=int, default=20, help="for FGSM, PGD and JSMA")
    parser.add_argument("--cw-samples", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cw-repeats", type=int, default=None, help="default: --repeats")
    parser.add_argument("--cw-art-repeats", type=int, default=1,
                        help="ART's C&W (line search, no early abort: ~55 CPU-s per sample here) gets fewer")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="for the order of the implementations")
    parser.add_argument("--note", default="", help="what the models are (e.g. smoke-scale training), into the JSON")
    parser.add_argument("--out", default="bench/out/attacks_vs_peers.json")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    cfg = config["attacks"]
    images = read_images(Path(args.images))
    rng = np.random.default_rng(args.seed)
    results: dict = {}
    for spec in args.checkpoint:
        model_name, path = spec.split("=", 1)
        model, meta = load_model(model_config(config, model_name), model_name, Path(path))
        for param in model.parameters():
            param.requires_grad_(False)
        for name in args.attacks:
            keep = {"ours", *args.peers}
            if name in ("fgsm", "pgd"):
                x, labels, _ = attack_samples(model, images, cfg, args.samples)
                runs = fgsm_runs(model, cfg["fgsm"]) if name == "fgsm" else pgd_runs(model, cfg["pgd"], cfg["seed"])
                variants = {name: (runs, None, "linf")}
            elif name == "jsma":
                x, labels, target = attack_samples(model, images, cfg, args.samples)
                variants = {f"jsma_{score}": (jsma_runs(model, cfg["jsma"], score), target, "l0")
                            for score in ("softmax", "logits")}
            elif name == "cw":
                x, labels, target = attack_samples(model, images, cfg, args.cw_samples)
                variants = {"cw_l2": (cw_runs(model, cfg["cw_l2"]), target, "l2")}
            else:
                raise SystemExit(f"unknown attack {name!r}")
            repeats = (args.cw_repeats or args.repeats) if name == "cw" else args.repeats
            for key, (runs, target, norm) in variants.items():
                runs = {k: v for k, v in runs.items() if k in keep}
                caps = {"art": args.cw_art_repeats} if name == "cw" else None
                results.setdefault(key, {})[model_name] = bench(model, runs, x, labels, target, norm, repeats, rng,
                                                                f"{key}/{model_name}", caps)
        results.setdefault("_models", {})[model_name] = {
            "checkpoint": path, "epochs": meta.get("model_config", {}).get("epochs"),
            "temperature": meta.get("model_config", {}).get("temperature"), "train_size": meta.get("train_size")}
    models = results.pop("_models")
    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    for peer, module in (("torchattacks", "torchattacks"), ("art", "art"), ("foolbox", "foolbox")):
        if peer in args.peers:
            versions[peer] = __import__(module).__version__
    report = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "machine": {"cpus": os.cpu_count(), "threads": args.threads, "load_average_end": os.getloadavg(),
                          "platform": platform.platform()},
              "note": args.note, "models": models,
              "attack_params": {k: cfg[k] for k in ("fgsm", "pgd", "jsma", "cw_l2")},
              "samples": {"fgsm_pgd_jsma": args.samples, "cw": args.cw_samples,
                          "draw": {"samples": cfg["samples"], "seed": cfg["seed"]}},
              "repeats": args.repeats, "cw_repeats": args.cw_repeats or args.repeats,
              "cw_art_repeats": args.cw_art_repeats, "versions": versions,
              "results": results, "caveats": CAVEATS}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
