# tempered: MNIST experiments on softmax temperature.
# Run: snakemake --cores all [--configfile workflow/presets/<name>.yaml]
from snakemake.utils import min_version

min_version("9.0")

configfile: "config.yaml"

report: "workflow/report/workflow.rst"

include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/attacks.smk"
include: "workflow/rules/calibration.smk"
include: "workflow/rules/ood.smk"
include: "workflow/rules/szegedy.smk"
include: "workflow/rules/membership.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
