"""A trained model back from its checkpoint: the configured architecture rebuilt and the weights loaded, with the
metadata the steps read checked first (artifacts.read_checkpoint reads the file)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tempered.artifacts import ArtifactError, read_checkpoint
from tempered.models import build_model


def _meta_field(meta: dict, checkpoint: Path, key: str, kind: type):
    """One dotted key of a checkpoint's metadata, of the given type, or ArtifactError naming file and key."""
    node: object = meta
    for i, part in enumerate(key.split(".")):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(key.split(".")[:i]) or "the metadata"
            raise ArtifactError(f"checkpoint {checkpoint} refused: malformed metadata: key {key!r} is missing "
                                f"({where} has no {part!r})")
        node = node[part]
    if not isinstance(node, kind) or (isinstance(node, bool) and kind is not bool):  # JSON true is no seed
        raise ArtifactError(f"checkpoint {checkpoint} refused: malformed metadata: key {key!r} is "
                            f"{type(node).__name__} {node!r}, expected {kind.__name__}")
    return node


def load_model(mcfg: Mapping[str, Any], model_name: str, checkpoint: Path):
    """Rebuild the architecture of `mcfg` (the settings of model `model_name`) and load the weights; a checkpoint
    of another model is refused, and so is one whose metadata lacks what the steps read (architecture,
    provenance.seed)."""
    state_dict, meta = read_checkpoint(checkpoint)
    architecture = _meta_field(meta, checkpoint, "model_config.architecture", str)
    if architecture != mcfg["architecture"]:
        raise ArtifactError(
            f"checkpoint {checkpoint} holds architecture {architecture!r}, "
            f"the settings of {model_name!r} name architecture {mcfg['architecture']!r}"
        )
    model = build_model(mcfg)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        raise ArtifactError(f"checkpoint {checkpoint} does not fit {mcfg['architecture']}: {err}") from err
    _meta_field(meta, checkpoint, "provenance.seed", int)
    return model.eval(), meta
