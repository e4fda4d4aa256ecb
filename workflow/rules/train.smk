# Training: one job per (model, seed); models and seeds come from config. Distillation students train on
# their teacher's soft labels (rule soft_labels), every other model on the labels. Membership recipes
# (mi<size>_...) train here too, each model seed on its half of the pool (training_sets) instead of the split. A
# model whose training would repeat another's exactly (TWINS: the teacher at T=1 is the base CNN) reuses that
# training (rule reuse_training).


rule train_model:
    input:
        code=code("train"),
        images=model_images,
        split=training_sets,
    output:
        checkpoint=paths.CHECKPOINT,
        history=paths.HISTORY,
    wildcard_constraints:
        model="|".join(m for m in TRAINED if m not in ALL_STUDENTS and m not in TWINS),
    params:
        config=CONFIG_ARGS,
        settings=lambda wc: config_slice(config, "train", model=wc.model),
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=GPUS,
    threads: THREADS
    benchmark:
        cost_record("train_model", "{model}/seed{seed}")
    log:
        paths.log("train_model", "{model}/seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered train {params.config} --model {wildcards.model} --seed {wildcards.seed} "
        "--images {input.images} --split {input.split} --checkpoint {output.checkpoint} "
        "--history {output.history} --log {log}"


rule reuse_training:
    input:
        code=code("reuse-training"),
        checkpoint=lambda wc: paths.CHECKPOINT.format(model=TWINS[wc.model], seed=wc.seed),
        history=lambda wc: paths.HISTORY.format(model=TWINS[wc.model], seed=wc.seed),
    output:
        checkpoint=paths.CHECKPOINT,
        history=paths.HISTORY,
    wildcard_constraints:
        model="|".join(TWINS) or "(?!)",  # no twins: a pattern that matches nothing
    params:
        config=CONFIG_ARGS,
        settings=lambda wc: config_slice(config, "reuse-training", model=wc.model),
    benchmark:
        cost_record("reuse_training", "{model}/seed{seed}")
    log:
        paths.log("reuse_training", "{model}/seed{seed}"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered reuse-training {params.config} --model {wildcards.model} "
        "--twin-checkpoint {input.checkpoint} --twin-history {input.history} --checkpoint {output.checkpoint} "
        "--history {output.history} --log {log}"


rule soft_labels:
    input:
        code=code("soft-labels"),
        checkpoint=paths.CHECKPOINT,
        images=model_images,
        split=training_sets,
    output:
        soft_labels=paths.SOFT_LABELS,
    wildcard_constraints:
        model="|".join(ALL_TEACHERS),
    params:
        config=CONFIG_ARGS,
        settings=lambda wc: config_slice(config, "soft-labels", model=wc.model),
    resources:
        mem_mb=4000,
        runtime=30,
    threads: THREADS
    benchmark:
        cost_record("soft_labels", "{model}/seed{seed}")
    log:
        paths.log("soft_labels", "{model}/seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered soft-labels {params.config} --model {wildcards.model} --checkpoint {input.checkpoint} "
        "--images {input.images} --split {input.split} --out {output.soft_labels} --log {log}"


rule train_student:
    input:
        code=code("train"),
        images=model_images,
        split=training_sets,
        soft_labels=lambda wc: paths.SOFT_LABELS.format(model=GRID[wc.model].teacher().name, seed=wc.seed),
    output:
        checkpoint=paths.CHECKPOINT,
        history=paths.HISTORY,
    wildcard_constraints:
        model="|".join(ALL_STUDENTS),
    params:
        config=CONFIG_ARGS,
        settings=lambda wc: config_slice(config, "train", model=wc.model),
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=GPUS,
    threads: THREADS
    benchmark:
        cost_record("train_student", "{model}/seed{seed}")
    log:
        paths.log("train_student", "{model}/seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered train {params.config} --model {wildcards.model} --seed {wildcards.seed} "
        "--images {input.images} --split {input.split} --soft-labels {input.soft_labels} "
        "--checkpoint {output.checkpoint} --history {output.history} --log {log}"
