# Training: one job per (model, seed); models and seeds come from config.


rule train_model:
    input:
        images=paths.DATASET_ARRAYS.format(dataset="mnist"),
        split=paths.SPLIT_INDEXES,
    output:
        checkpoint=paths.CHECKPOINT,
        history=paths.HISTORY,
    params:
        settings=lambda wc: config["models"][wc.model],
        monitor=config["evaluation"],
    resources:
        mem_mb=4000,
        runtime=240,
    threads: 2
    log:
        paths.log("train_model", "{model}/seed{seed}"),
    shell:
        "python -m tempered train {CONFIG_ARGS} --model {wildcards.model} --seed {wildcards.seed} "
        "--images {input.images} --split {input.split} --checkpoint {output.checkpoint} "
        "--history {output.history} --log {log}"
