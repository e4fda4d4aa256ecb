"""Pipeline stages: one package per workflow/rules/<stage>.smk. Each stage's `steps` module reads artifacts, calls
the library, writes artifacts with provenance, and registers its `python -m tempered <step>` commands through
`register(add_step)`; its other modules hold the stage's tables and figures."""

# Stage packages whose steps the CLI offers, in the order `--help` lists them.
STAGES = ("data", "train", "evaluate", "figures", "attacks", "calibration", "ood", "szegedy", "membership", "report")


def distillation_temperature(config, model: str) -> float | None:
    """A model's training temperature on the distillation grid (teacher_T<T>, student_T<T>; from a step's
    StepConfig); None for the undistilled models, whose temperature is no point on the grid."""
    return config.model_id(model).temperature
