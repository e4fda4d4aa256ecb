# Training: one job per (model, seed); models and seeds come from config.


rule train_model:
    input:
        images=paths.DATASET_ARRAYS.format(dataset="mnist"),
        split=paths.SPLIT_INDEXES,
    output:
        checkpoint=paths.CHECKPOINT,
        history=paths.HISTORY,
    params:
        config=CONFIG_ARGS,
        settings=lambda wc: config_slice(config, "train", model=wc.model),
    resources:
        mem_mb=4000,
        runtime=240,
    threads: 2
    log:
        paths.log("train_model", "{model}/seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered train {params.config} --model {wildcards.model} --seed {wildcards.seed} "
        "--images {input.images} --split {input.split} --checkpoint {output.checkpoint} "
        "--history {output.history} --log {log}"
