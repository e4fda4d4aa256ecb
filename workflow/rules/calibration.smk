# Temperature scaling (Guo et al. 2017): one T per (model, seed) fitted on validation logits, metrics on test;
# then one table and figure over every model, distilled ones next to their training T.


rule calibrate_model:
    input:
        code=code("calibrate"),
        logits=paths.LOGITS,
    output:
        metrics=paths.CALIBRATION_METRICS,
        bins=paths.RELIABILITY_BINS,
        figure=report(
            paths.RELIABILITY_DIAGRAM,
            caption="../report/reliability.rst",
            category="Calibration",
            subcategory="Reliability diagrams",
            labels={"model": "{model}", "seed": "{seed}"},
        ),
        figure_pdf=pdf(paths.RELIABILITY_DIAGRAM),
    params:
        config=CONFIG_ARGS,
        settings=lambda wc: config_slice(config, "calibrate", model=wc.model),
    resources:
        mem_mb=2000,
        runtime=10,
    threads: THREADS
    benchmark:
        cost_record("calibrate_model", "{model}/seed{seed}")
    log:
        paths.log("calibrate_model", "{model}/seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered calibrate {params.config} --model {wildcards.model} --seed {wildcards.seed} "
        "--logits {input.logits} --metrics {output.metrics} --bins {output.bins} --figure {output.figure} "
        "--log {log}"


rule calibration_report:
    input:
        code=code("calibration-report"),
        metrics=expand(paths.CALIBRATION_METRICS, model=MODELS, seed=SEEDS),
    output:
        table=paths.CALIBRATION_TABLE,
        markdown=paths.CALIBRATION_MARKDOWN,
        figure=report(
            paths.FITTED_VS_DISTILLATION_T,
            caption="../report/fitted_temperature.rst",
            category="Calibration",
            subcategory="Across models",
        ),
        figure_pdf=pdf(paths.FITTED_VS_DISTILLATION_T),
    params:
        config=CONFIG_ARGS,
    benchmark:
        cost_record("calibration_report")
    log:
        paths.log("calibration_report"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered calibration-report {params.config} --metrics {input.metrics} --table {output.table} "
        "--markdown {output.markdown} --figure {output.figure} --log {log}"
