"""Per-sample OOD scores from a classifier; every score is higher for inputs that look more in-distribution.

Each function takes a model and a batch x of shape (N, 1, 28, 28) with pixels in [0, 1], and returns a (N,)
tensor on x's device. The model returns logits z, or (z, c) for a learned-confidence model (ConfidenceCNN);
the softmax scores use z either way. Put the model in eval mode first: these functions never change its mode,
and dropout in train mode would make the scores random. Gradients for input preprocessing come from
torch.autograd.grad on the input only, so the model's parameter .grad fields are left untouched.

- msp: max softmax probability (Hendrycks & Gimpel 2017, section 3).
- energy: negative free energy T logsumexp(z / T) (Liu et al. 2020, "Energy-based Out-of-distribution
  Detection", section 3); T = 1 is the paper's setting.
- odin: max of softmax(z / T) after the input step x - eps sign(-grad_x log S_yhat(x; T)) (Liang et al. 2018,
  section 3, eq. 2).
- learned_confidence / learned_confidence_odin: the sigmoid confidence c, optionally after the step
  x - eps sign(grad_x(-log c)) (DeVries & Taylor 2018, section 3.2).

Clamping: the input step is NOT clamped to [0, 1] by default. Both reference implementations (facebookresearch/
odin and uoguelph-mlrg/confidence_estimation) perturb the normalised input and never clip, and with eps at
most ~0.004 the step leaves the pixel range by at most eps; clamp=True is there for an ablation. It is not a
no-op on MNIST: most pixels are exactly 0 (background), so clipping cancels every step there that points down.

Our models see raw [0, 1] pixels, so eps is in pixel units. The ODIN code divides the sign by the per-channel
std of its input normalisation to get the same thing: eps per raw pixel. The sign of a zero gradient is 0
here (torch.sign, as the DeVries code); the ODIN code maps it to +1 (torch.ge). A sample's gradient does not
depend on the rest of its batch, so scores are the same for any batch split (eval mode, no batch norm).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Score = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def _split_output(output: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(output, tuple):
        logits, confidence = output
        return logits, confidence.reshape(-1)
    return output, None


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return _split_output(model(x))[0]


def _confidence(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    confidence = _split_output(model(x))[1]
    if confidence is None:
        raise TypeError("the model returns logits only; learned-confidence scores need a (logits, confidence)"
                        " model such as ConfidenceCNN")
    return confidence


def _step(x: torch.Tensor, loss: torch.Tensor, x_leaf: torch.Tensor, eps: float, clamp: bool) -> torch.Tensor:
    """x - eps sign(d loss / dx): one signed-gradient step that lowers the loss, i.e. raises the score."""
    (grad,) = torch.autograd.grad(loss, x_leaf)
    stepped = x - eps * grad.sign()
    return stepped.clamp(0.0, 1.0) if clamp else stepped


@torch.no_grad()
def msp(model: nn.Module, x: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """max_k softmax(z / T)_k; T = 1 is Hendrycks & Gimpel's baseline."""
    return torch.softmax(_logits(model, x).float() / temperature, dim=1).max(dim=1).values


@torch.no_grad()
def energy(model: nn.Module, x: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """T logsumexp(z / T), the negative free energy -E(x; T)."""
    return temperature * torch.logsumexp(_logits(model, x).float() / temperature, dim=1)


def odin(model: nn.Module, x: torch.Tensor, temperature: float = 1000.0, eps: float = 0.0,
         clamp: bool = False) -> torch.Tensor:
    """ODIN: max softmax(z(x~) / T) with x~ = x - eps sign(-grad_x log S_yhat(x; T)), batched.

    The gradient and the final score both use softmax(z / T), as in facebookresearch/odin (the loss there is
    the cross-entropy of z / T against the predicted class yhat = argmax z, whose gradient is -grad log S_yhat).
    The defaults are the MNIST setting reported for ODIN, T = 1000 and eps = 0; eps = 0 skips the backward pass.
    """
    if eps == 0.0:
        return msp(model, x, temperature)
    with torch.enable_grad():
        x_leaf = x.detach().requires_grad_(True)
        logits = _logits(model, x_leaf).float() / temperature
        # Summed, not averaged, so each sample's gradient is its own and cannot underflow with batch size.
        loss = F.cross_entropy(logits, logits.argmax(dim=1), reduction="sum")
        x_tilde = _step(x_leaf.detach(), loss, x_leaf, eps, clamp)
    return msp(model, x_tilde, temperature)


@torch.no_grad()
def learned_confidence(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The confidence branch's c in (0, 1) (DeVries & Taylor 2018, section 2), no preprocessing."""
    return _confidence(model, x).float()


def learned_confidence_odin(model: nn.Module, x: torch.Tensor, eps: float = 0.001, clamp: bool = False
                            ) -> torch.Tensor:
    """c(x~) with x~ = x - eps sign(grad_x(-log c(x))) (DeVries & Taylor 2018, section 3.2), batched.

    eps 0.001 is the reference code's default; the paper tunes it on the first 1000 samples of each OOD set.
    """
    if eps == 0.0:
        return learned_confidence(model, x)
    with torch.enable_grad():
        x_leaf = x.detach().requires_grad_(True)
        # Clamped as in training (eps 1e-12): a c that saturated to 0 in float32 then gives a zero gradient, not NaN.
        c = _confidence(model, x_leaf).float().clamp(1e-12, 1.0 - 1e-12)
        loss = -torch.log(c).sum()
        x_tilde = _step(x_leaf.detach(), loss, x_leaf, eps, clamp)
    return learned_confidence(model, x_tilde)


SCORES: dict[str, Score] = {
    "msp": msp,
    "energy": energy,
    "odin": odin,
    "learned_confidence": learned_confidence,
    "learned_confidence_odin": learned_confidence_odin,
}


def score_batches(score: Score, model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device,
                  **kwargs) -> torch.Tensor:
    """score(model, batch, **kwargs) over x in chunks of batch_size on device; the (N,) result on the CPU.

    Sets eval mode (dropout off), like tempered.training.inference.predict_logits.
    """
    model.eval()
    out = [score(model, x[start:start + batch_size].to(device), **kwargs).float().cpu()
           for start in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0)
