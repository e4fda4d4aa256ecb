"""Pipeline steps: one module per stage. Each reads artifacts, calls the library, writes artifacts with
provenance, and registers its `python -m tempered <step>` commands through `register(add_step)`."""

# Stage modules whose steps the CLI offers, in the order `--help` lists them.
STAGES = ("core", "attacks", "calibration", "ood", "szegedy", "membership", "report")
