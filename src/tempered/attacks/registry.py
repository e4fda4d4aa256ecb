"""Every attack by the name the configuration gives it (attacks.<name>, szegedy.attack.lbfgs), and building one
from its parameters: a name is looked up, never inferred from which keys a section has."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from tempered.attacks.common import Attack
from tempered.attacks.cw_l2 import CarliniWagnerL2
from tempered.attacks.fgsm import FGSM
from tempered.attacks.jsma import JSMA
from tempered.attacks.lbfgs import LBFGS
from tempered.attacks.pgd import PGD
from tempered.config import ConfigError

ATTACKS: dict[str, type[Attack]] = {"fgsm": FGSM, "pgd": PGD, "jsma": JSMA, "cw_l2": CarliniWagnerL2, "lbfgs": LBFGS}


def accepted_parameters(name: str) -> list[str]:
    """The constructor arguments of attack `name`, in signature order."""
    return list(inspect.signature(ATTACKS[name]).parameters)


def build_attack(name: str, params: Mapping[str, Any], *, progress: bool = False, **settings: Any) -> Attack:
    """Attack `name` from its parameters (a config section's keys) and the caller's settings beyond them (a seed,
    a known temperature); whatever neither gives keeps the paper's default. progress (a bar over the iterations on
    stderr) reaches only the attacks that iterate: FGSM takes one step. A name not registered, or a key the attack
    does not take or that both params and settings give, is refused, naming the attack, the key and what it takes.
    """
    if name not in ATTACKS:
        raise ConfigError(f"unknown attack {name!r}; known: {', '.join(ATTACKS)}")
    accepted = accepted_parameters(name)
    for key in [*params, *settings]:
        if key not in accepted:
            raise ConfigError(f"attack {name!r} takes no parameter {key!r}; it takes: {', '.join(accepted)}")
    if "progress" in accepted:
        settings = {"progress": progress, **settings}
    both = sorted(set(params) & set(settings))
    if both:
        raise ConfigError(f"attack {name!r}: {', '.join(both)} given both as a parameter and by the caller")
    return ATTACKS[name](**params, **settings)
