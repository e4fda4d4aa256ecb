"""tempered: reproducible MNIST experiments on the softmax temperature.

Adversarial examples (Szegedy et al. 2014), defensive distillation and its refutation (Papernot et al. 2016;
Carlini & Wagner 2016), temperature scaling (Guo et al. 2017) and OOD detection (DeVries & Taylor 2018).
"""

__version__ = "0.1.0"
