"""Training throughput of the Papernot CNN: our in-memory loop against a plain PyTorch DataLoader loop.

Both variants train the same model on the same real MNIST samples, interleaved in one process so that
machine load affects them alike; each is timed `--repeats` times and the median is reported. Not a test:
run it, read the numbers, put them in notes (`make bench`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tempered.config import REPO_ROOT, load_config  # noqa: E402
from tempered.data.arrays import read_images, subset  # noqa: E402
from tempered.data.split import make_split  # noqa: E402
from tempered.models import build_model  # noqa: E402
from tempered.training.methods import train_classifier  # noqa: E402


def plain_pytorch(model_cfg, x, y, batch_size: int) -> None:
    """The textbook loop: TensorDataset + DataLoader(shuffle=True), contiguous tensors."""
    torch.manual_seed(0)
    model = build_model(model_cfg).train()
    opt = model_cfg["optimizer"]
    optimizer = torch.optim.SGD(model.parameters(), lr=opt["lr"], momentum=opt["momentum"])
    for xb, yb in DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True):
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def ours(model_cfg, x, y, batch_size: int, channels_last: bool) -> None:
    torch.manual_seed(0)
    train_classifier(build_model(model_cfg), x, y, epochs=1, batch_size=batch_size,
                     optimizer_cfg=model_cfg["optimizer"], temperature=1.0,
                     generator=torch.Generator().manual_seed(0), device=torch.device("cpu"),
                     channels_last=channels_last)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", default="results/data/mnist.npz")
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--out", default="bench/out/train_throughput.json")
    args = parser.parse_args()

    model_cfg = load_config([REPO_ROOT / "config.yaml"])["models"]["cnn"]
    x, y = subset(read_images(args.images), make_split(5000, 0), "train", args.samples)
    variants = {}
    for bs in args.batch_sizes:
        variants[f"plain DataLoader, batch {bs}"] = lambda bs=bs: plain_pytorch(model_cfg, x, y, bs)
        variants[f"ours, batch {bs}, contiguous"] = lambda bs=bs: ours(model_cfg, x, y, bs, False)
        variants[f"ours, batch {bs}, channels_last"] = lambda bs=bs: ours(model_cfg, x, y, bs, True)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, run in variants.items():  # interleaved: load drifts hit every variant
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)
    rates = {name: args.samples / statistics.median(s) for name, s in seconds.items()}
    baseline = rates[f"plain DataLoader, batch {args.batch_sizes[0]}"]
    result = {"samples": args.samples, "repeats": args.repeats, "threads": torch.get_num_threads(),
              "samples_per_s": rates, "ratio_vs_plain": {k: v / baseline for k, v in rates.items()}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for name, rate in rates.items():
        print(f"{name:38s} {rate:8.0f} samples/s  x{rate / baseline:.2f}")


if __name__ == "__main__":
    main()
