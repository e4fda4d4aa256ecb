# Evaluation: logits and metrics on the sets held out from each model's training set, then across seeds.


rule evaluate_model:
    input:
        code=code("evaluate"),
        checkpoint=paths.CHECKPOINT,
        images=paths.DATASET_ARRAYS.format(dataset="mnist"),
        split=paths.SPLIT_INDEXES,
    output:
        logits=paths.LOGITS,
        metrics=paths.EVAL_METRICS,
    params:
        config=CONFIG_ARGS,
        settings=lambda wc: config_slice(config, "evaluate", model=wc.model),
    resources:
        mem_mb=4000,
        runtime=30,
    threads: THREADS
    benchmark:
        cost_record("evaluate_model", "{model}/seed{seed}")
    log:
        paths.log("evaluate_model", "{model}/seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered evaluate {params.config} --model {wildcards.model} --checkpoint {input.checkpoint} "
        "--images {input.images} --split {input.split} --logits {output.logits} --metrics {output.metrics} "
        "--log {log}"


rule summarize_seeds:
    input:
        code=code("summarize"),
        metrics=expand(paths.EVAL_METRICS, seed=SEEDS, allow_missing=True),
    output:
        summary=paths.SEED_SUMMARY,
    params:
        config=CONFIG_ARGS,
    benchmark:
        cost_record("summarize_seeds", "{model}")
    log:
        paths.log("summarize_seeds", "{model}"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered summarize {params.config} --model {wildcards.model} --metrics {input.metrics} "
        "--out {output.summary} --log {log}"
