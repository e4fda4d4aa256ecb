# Attacks on the undistilled model and every distilled student (Papernot et al. 2016; Carlini & Wagner 2016),
# then the success-vs-temperature report. Attacks and models come from config (attacks.enabled, the T grid).

ATTACKS = config["attacks"]["enabled"]
ATTACKED = attacked_models(config)


rule attack_model:
    input:
        code=code("attack"),
        checkpoint=paths.CHECKPOINT,
        images=paths.DATASET_ARRAYS.format(dataset="mnist"),
    output:
        adversarial=paths.ADVERSARIAL,
        metrics=paths.ATTACK_METRICS,
    wildcard_constraints:
        attack="|".join(ATTACKS),
        model="|".join(ATTACKED),
    params:
        config=CONFIG_ARGS,
        settings=lambda wc: config_slice(config, "attack", attack=wc.attack),
    resources:
        mem_mb=6000,
        runtime=240,
        gpu=GPUS,
    threads: THREADS
    benchmark:
        cost_record("attack_model", "{attack}/{model}/seed{seed}")
    log:
        paths.log("attack_model", "{attack}/{model}/seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered attack {params.config} --attack {wildcards.attack} --model {wildcards.model} "
        "--seed {wildcards.seed} --checkpoint {input.checkpoint} --images {input.images} "
        "--out {output.adversarial} --metrics {output.metrics} --log {log}"


rule measure_gradients:
    input:
        code=code("gradients"),
        checkpoint=paths.CHECKPOINT,
        images=paths.DATASET_ARRAYS.format(dataset="mnist"),
    output:
        gradients=paths.GRADIENTS,
    wildcard_constraints:
        model="|".join(ATTACKED),
    params:
        config=CONFIG_ARGS,
        settings=config_slice(config, "gradients"),
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=GPUS,
    threads: THREADS
    benchmark:
        cost_record("measure_gradients", "{model}/seed{seed}")
    log:
        paths.log("measure_gradients", "{model}/seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered gradients {params.config} --model {wildcards.model} --checkpoint {input.checkpoint} "
        "--images {input.images} --out {output.gradients} --log {log}"


rule distillation_report:
    input:
        code=code("distillation-report"),
        claims=paths.CLAIMS,  # the published numbers printed beside ours (tempered.stages.report.reference)
        eval_metrics=expand(paths.EVAL_METRICS, model=[*ATTACKED, *TEACHERS], seed=SEEDS),
        attack_metrics=expand(paths.ATTACK_METRICS, attack=ATTACKS, model=ATTACKED, seed=SEEDS),
        gradients=expand(paths.GRADIENTS, model=ATTACKED, seed=SEEDS),
        adversarial=expand(paths.ADVERSARIAL, attack=ATTACKS, model=ATTACKED, seed=SEEDS),
    output:
        table=paths.DISTILLATION_TABLE,
        markdown=paths.DISTILLATION_MARKDOWN,
        metrics=paths.DISTILLATION_METRICS,
        success=report(paths.DISTILLATION_FIGURES["success"], caption="../report/distillation_success.rst",
                       category="Defensive distillation"),
        robustness=report(paths.DISTILLATION_FIGURES["robustness"],
                          caption="../report/distillation_robustness.rst", category="Defensive distillation"),
        accuracy=report(paths.DISTILLATION_FIGURES["accuracy"], caption="../report/distillation_accuracy.rst",
                        category="Defensive distillation"),
        gradients=report(paths.DISTILLATION_FIGURES["gradients"],
                         caption="../report/distillation_gradients.rst", category="Defensive distillation"),
        examples=report(paths.DISTILLATION_FIGURES["examples"], caption="../report/distillation_examples.rst",
                        category="Defensive distillation"),
        success_pdf=pdf(paths.DISTILLATION_FIGURES["success"]),
        robustness_pdf=pdf(paths.DISTILLATION_FIGURES["robustness"]),
        accuracy_pdf=pdf(paths.DISTILLATION_FIGURES["accuracy"]),
        gradients_pdf=pdf(paths.DISTILLATION_FIGURES["gradients"]),
        examples_pdf=pdf(paths.DISTILLATION_FIGURES["examples"]),
    params:
        config=CONFIG_ARGS,
        settings=config_slice(config, "distillation-report"),
    benchmark:
        cost_record("distillation_report")
    log:
        paths.log("distillation_report"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered distillation-report {params.config} --eval-metrics {input.eval_metrics} "
        "--attack-metrics {input.attack_metrics} --gradients {input.gradients} --adversarial {input.adversarial} "
        "--table {output.table} --markdown {output.markdown} --metrics {output.metrics} "
        "--figures {output.success} {output.robustness} {output.accuracy} {output.gradients} {output.examples} "
        "--log {log}"
