"""The MNIST networks of Szegedy et al. 2014 ("Intriguing properties of neural networks"), section 4.3, Tables 1-3.

FC10(lambda) is softmax regression on the 784 pixels; FC100-100-10, FC200-200-10 and FC123-456-10 have two sigmoid
hidden layers and a softmax layer; AE400-10 is a softmax layer on the code of a sparse sigmoid autoencoder with
400 hidden units that was trained without labels and then frozen (its training is
tempered.training.methods.pretrain_autoencoder). Inputs
are (N, 1, 28, 28) in [0, 1], flattened; every model returns logits.

Weight decay. The paper writes the penalty as lambda * sum(w_i^2) / k with k "the number of units in the layer".
Read with k the layer's output units it was measured too weak: FC10 trained to its optimum (full-batch L-BFGS,
tempered.training.convex) gave 15.6% / 14.6% train / test error at lambda 1 (paper 21.2% / 20%) and 8.3% / 8.2% at
1e-2 (paper 10% / 9.4%). Of the readings the text allows (lambda times the per-layer sum, half of it, /k by output
or input units, the mean over weights; biases decayed or not), one fits all three FC10 rows: lambda as the rate of
the decay step p <- p - lr * lambda * p on every parameter of the layer, i.e. the penalty lambda / 2 * sum(p^2)
over its weights and biases (at the optimum: 6.6% / 7.4% at 1e-4, 9.9% / 9.2% at 1e-2, 21.2% / 20.0% at 1; the
experiment is in the report's deviations). Each layer has its own lambda: FC10's; 1e-5, 1e-5, 1e-6 for the
hidden, hidden and softmax layers of the sigmoid nets (Table 1); 1e-6 for AE400-10's softmax layer.
`weight_penalty()` returns the sum, for the trainer to add to the mean cross-entropy (SGD's weight_decay has one
lambda for all layers, and full-batch L-BFGS has no decay step to put it in).
"""

from __future__ import annotations

import torch
from torch import nn

MNIST_PIXELS = 28 * 28

# (hidden, hidden, softmax) decay of the sigmoid nets, Table 1 ("FC100-100-10: 1e-5, 1e-5, 1e-6").
SIGMOID_MLP_PENALTIES = (1e-5, 1e-5, 1e-6)


def _glorot(module: nn.Module) -> None:
    # Glorot & Bengio 2010 derived this initialisation for exactly such sigmoid/tanh stacks of the period.
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


def layer_penalty(layer: nn.Linear, lam: float) -> torch.Tensor:
    """lambda / 2 * sum(p^2) over one layer's weights and biases: decay rate lambda (see the module doc)."""
    return 0.5 * lam * (layer.weight.pow(2).sum() + layer.bias.pow(2).sum())


class SoftmaxRegression(nn.Module):
    """FC10(lambda): one linear layer 784 -> 10 under a softmax (Table 1: lambda = 1e-4, 1e-2, 1)."""

    def __init__(self, weight_decay: float = 1e-4, num_classes: int = 10, dropout: float = 0.0):
        super().__init__()
        if dropout:
            raise ValueError("FC10 has no hidden layer to apply dropout to")
        self.weight_decay = weight_decay
        self.logits = nn.Linear(MNIST_PIXELS, num_classes)
        self.apply(_glorot)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x.flatten(1))

    def weight_penalty(self) -> torch.Tensor:
        return layer_penalty(self.logits, self.weight_decay)


class SigmoidMLP(nn.Module):
    """FC<h1>-<h2>-10: sigmoid hidden layers and a softmax layer, one decay lambda per layer (Tables 1 and 3).

    `dropout` (after each hidden layer) is for section 4.3's comparison of adversarial training with dropout;
    the paper's Table 1 nets have none.
    """

    def __init__(self, hidden: tuple[int, ...] = (100, 100), penalties: tuple[float, ...] = SIGMOID_MLP_PENALTIES,
                 dropout: float = 0.0, num_classes: int = 10):
        super().__init__()
        if len(penalties) != len(hidden) + 1:
            raise ValueError(f"need one penalty per layer: {len(hidden) + 1} for hidden={hidden}, got {penalties}")
        widths = (MNIST_PIXELS, *hidden)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.dropout = nn.Dropout(dropout)
        self.logits = nn.Linear(widths[-1], num_classes)
        self.penalties = tuple(penalties)
        self.apply(_glorot)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Activations of the last hidden layer."""
        h = x.flatten(1)
        for layer in self.hidden:
            h = self.dropout(torch.sigmoid(layer(h)))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.features(x))

    def weight_penalty(self) -> torch.Tensor:
        layers = [*self.hidden, self.logits]
        return sum(layer_penalty(layer, lam) for layer, lam in zip(layers, self.penalties, strict=True))


class SparseAutoencoder(nn.Module):
    """A one-hidden-layer sigmoid autoencoder (encoder 784 -> hidden, decoder hidden -> 784, sigmoid outputs)."""

    def __init__(self, hidden: int = 400):
        super().__init__()
        self.encoder = nn.Linear(MNIST_PIXELS, hidden)
        self.decoder = nn.Linear(hidden, MNIST_PIXELS)
        self.apply(_glorot)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.encoder(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(code, reconstruction), the reconstruction flattened to (N, 784)."""
        code = self.encode(x)
        return code, torch.sigmoid(self.decoder(code))


class AutoencoderClassifier(nn.Module):
    """AE400-10: a softmax layer on the code of a frozen sparse autoencoder (Table 1, softmax decay 1e-6).

    The autoencoder's parameters have requires_grad False, so training updates only the softmax layer; pass an
    already pre-trained autoencoder, or pre-train `model.autoencoder` (tempered.training.methods.pretrain_autoencoder)
    before training the classifier. The autoencoder is a submodule, so checkpoints hold the whole AE400-10.
    """

    def __init__(self, autoencoder: SparseAutoencoder | None = None, hidden: int = 400, weight_decay: float = 1e-6,
                 num_classes: int = 10, dropout: float = 0.0):
        super().__init__()
        if dropout:
            raise ValueError("AE400-10 trains only its softmax layer; dropout is not part of it")
        self.autoencoder = autoencoder if autoencoder is not None else SparseAutoencoder(hidden)
        self.autoencoder.requires_grad_(False)
        self.weight_decay = weight_decay
        self.logits = nn.Linear(self.autoencoder.encoder.out_features, num_classes)
        _glorot(self.logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.autoencoder.encode(x))

    def weight_penalty(self) -> torch.Tensor:
        return layer_penalty(self.logits, self.weight_decay)


def fc10(weight_decay: float = 1e-4, dropout: float = 0.0) -> SoftmaxRegression:
    return SoftmaxRegression(weight_decay=weight_decay, dropout=dropout)


def fc100_100_10(dropout: float = 0.0) -> SigmoidMLP:
    return SigmoidMLP(hidden=(100, 100), dropout=dropout)


def fc200_200_10(dropout: float = 0.0) -> SigmoidMLP:
    return SigmoidMLP(hidden=(200, 200), dropout=dropout)


def fc123_456_10(dropout: float = 0.0) -> SigmoidMLP:
    return SigmoidMLP(hidden=(123, 456), dropout=dropout)


def ae400_10(dropout: float = 0.0) -> AutoencoderClassifier:
    return AutoencoderClassifier(hidden=400, dropout=dropout)


# Config names of the paper's models, for tempered.models.ARCHITECTURES.
SZEGEDY_ARCHITECTURES = {
    "fc10": fc10,
    "fc100_100_10": fc100_100_10,
    "fc200_200_10": fc200_200_10,
    "fc123_456_10": fc123_456_10,
    "ae400_10": ae400_10,
}
