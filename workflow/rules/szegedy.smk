# Szegedy et al. 2014 ("Intriguing properties of neural networks") section 4: the models train and evaluate through
# train_model / evaluate_model (config 'models'); here, their training-set error (reported, never tuned on), one
# saved L-BFGS adversarial set per (model, seed), the transfer of every set to every model, figures and tables.
from tempered.stages.szegedy.groups import attacked_szegedy_models, szegedy_groups

SZEGEDY_GROUPS = szegedy_groups(config)  # raises ConfigError naming the key when a table names a wrong model
SZEGEDY_ATTACKED = attacked_szegedy_models(config)
SZEGEDY_MODELS = list(dict.fromkeys(m for group in SZEGEDY_GROUPS.values() for m in group))


rule training_set_error:
    input:
        code=code("training-set-error"),
        checkpoint=paths.CHECKPOINT,
        images=paths.DATASET_ARRAYS.format(dataset="mnist"),
        split=paths.SPLIT_INDEXES,
    output:
        metrics=paths.TRAINING_SET_ERROR,
    wildcard_constraints:
        model="|".join(SZEGEDY_MODELS),
    params:
        config=CONFIG_ARGS,
        settings=lambda wc: config_slice(config, "training-set-error", model=wc.model),
    resources:
        mem_mb=2000,
        runtime=10,
    threads: THREADS
    benchmark:
        cost_record("training_set_error", "{model}/seed{seed}")
    log:
        paths.log("training_set_error", "{model}/seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered training-set-error {params.config} --model {wildcards.model} "
        "--checkpoint {input.checkpoint} --images {input.images} --split {input.split} --out {output.metrics} "
        "--log {log}"


rule lbfgs_attack:
    input:
        code=code("lbfgs-attack"),
        checkpoint=paths.CHECKPOINT,
        images=paths.DATASET_ARRAYS.format(dataset="mnist"),
        split=paths.SPLIT_INDEXES,
    output:
        adversarial=paths.LBFGS_ADVERSARIAL,
        metrics=paths.LBFGS_METRICS,
    wildcard_constraints:
        model="|".join(SZEGEDY_ATTACKED),
    params:
        config=CONFIG_ARGS,
        settings=config_slice(config, "lbfgs-attack"),
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=GPUS,
    threads: THREADS
    benchmark:
        cost_record("lbfgs_attack", "{model}/seed{seed}")
    log:
        paths.log("lbfgs_attack", "{model}/seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered lbfgs-attack {params.config} --model {wildcards.model} --seed {wildcards.seed} "
        "--checkpoint {input.checkpoint} --images {input.images} --split {input.split} --out {output.adversarial} "
        "--metrics {output.metrics} --log {log}"


rule szegedy_transfer:
    input:
        code=code("szegedy-transfer"),
        checkpoints=expand(paths.CHECKPOINT, model=SZEGEDY_ATTACKED, allow_missing=True),
        adversarial=expand(paths.LBFGS_ADVERSARIAL, model=SZEGEDY_ATTACKED, allow_missing=True),
        images=paths.DATASET_ARRAYS.format(dataset="mnist"),
        split=paths.SPLIT_INDEXES,
    output:
        metrics=paths.SZEGEDY_TRANSFER,
    params:
        config=CONFIG_ARGS,
        settings=config_slice(config, "szegedy-transfer"),
        models=" ".join(SZEGEDY_ATTACKED),
    resources:
        mem_mb=4000,
        runtime=30,
    threads: THREADS
    benchmark:
        cost_record("szegedy_transfer", "seed{seed}")
    log:
        paths.log("szegedy_transfer", "seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered szegedy-transfer {params.config} --seed {wildcards.seed} --models {params.models} "
        "--checkpoints {input.checkpoints} --adversarial {input.adversarial} --images {input.images} "
        "--split {input.split} --out {output.metrics} --log {log}"


rule plot_lbfgs_examples:
    input:
        code=code("szegedy-examples"),
        adversarial=paths.LBFGS_ADVERSARIAL,
        images=paths.DATASET_ARRAYS.format(dataset="mnist"),
    output:
        figure=report(
            paths.SZEGEDY_EXAMPLES,
            caption="../report/szegedy_examples.rst",
            category="Minimal adversarial examples",
            subcategory="Examples",
            labels={"model": "{model}", "seed": "{seed}"},
        ),
        figure_pdf=pdf(paths.SZEGEDY_EXAMPLES),
    wildcard_constraints:
        model="|".join(SZEGEDY_ATTACKED),
    params:
        config=CONFIG_ARGS,
        settings=config_slice(config, "szegedy-examples"),
    benchmark:
        cost_record("plot_lbfgs_examples", "{model}/seed{seed}")
    log:
        paths.log("plot_lbfgs_examples", "{model}/seed{seed}"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered szegedy-examples {params.config} --model {wildcards.model} "
        "--adversarial {input.adversarial} --images {input.images} --out {output.figure} --log {log}"


rule szegedy_report:
    input:
        code=code("szegedy-report"),
        claims=paths.CLAIMS,  # the published numbers printed beside ours (tempered.stages.report.reference)
        eval_metrics=expand(paths.EVAL_METRICS, model=SZEGEDY_MODELS, seed=SEEDS),
        training_set_error=expand(paths.TRAINING_SET_ERROR, model=SZEGEDY_MODELS, seed=SEEDS),
        attack_metrics=expand(paths.LBFGS_METRICS, model=SZEGEDY_ATTACKED, seed=SEEDS),
        transfer=expand(paths.SZEGEDY_TRANSFER, seed=SEEDS),
    output:
        tables=[path for pair in paths.SZEGEDY_TABLES.values() for path in pair],
        markdown=paths.SZEGEDY_MARKDOWN,
        metrics=paths.SZEGEDY_METRICS,
        heatmap=report(
            paths.SZEGEDY_TRANSFER_HEATMAP,
            caption="../report/szegedy_transfer.rst",
            category="Minimal adversarial examples",
            subcategory="Transfer",
        ),
        heatmap_pdf=pdf(paths.SZEGEDY_TRANSFER_HEATMAP),
    params:
        config=CONFIG_ARGS,
        settings=config_slice(config, "szegedy-report"),
    benchmark:
        cost_record("szegedy_report")
    log:
        paths.log("szegedy_report"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered szegedy-report {params.config} --eval-metrics {input.eval_metrics} "
        "--training-set-error {input.training_set_error} --attack-metrics {input.attack_metrics} "
        "--transfer {input.transfer} --tables {output.tables} --markdown {output.markdown} "
        "--metrics {output.metrics} --heatmap {output.heatmap} --log {log}"
