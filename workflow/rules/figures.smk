# Figures: every one declared with report(...) so `snakemake --report` is the gallery.


rule plot_training_curve:
    input:
        code=code("plot-training"),
        histories=expand(paths.HISTORY, seed=SEEDS, allow_missing=True),
    output:
        figure=report(
            paths.TRAINING_CURVE,
            caption="../report/training_curve.rst",
            category="Training",
            labels={"model": "{model}"},
        ),
        figure_pdf=pdf(paths.TRAINING_CURVE),
    params:
        config=CONFIG_ARGS,
    benchmark:
        cost_record("plot_training_curve", "{model}")
    log:
        paths.log("plot_training_curve", "{model}"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered plot-training {params.config} --model {wildcards.model} --histories {input.histories} "
        "--out {output.figure} --log {log}"
