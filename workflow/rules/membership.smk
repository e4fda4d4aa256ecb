# Membership inference (issue 8): roles per target size and per shadow, the shadows' outputs for the attacker,
# every attack per target, then one table, summary and figures. Targets and shadows train in rules/train.smk.


rule membership_target_roles:
    input:
        code=code("membership-roles"),
        split=paths.SPLIT_INDEXES,
    output:
        roles=paths.TARGET_ROLES,
    params:
        config=CONFIG_ARGS,
        settings=config_slice(config, "membership-roles"),
    benchmark:
        cost_record("membership_target_roles", "size{size}")
    log:
        paths.log("membership_target_roles", "size{size}"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered membership-roles {params.config} --split {input.split} --size {wildcards.size} "
        "--out {output.roles} --log {log}"


rule membership_shadow_roles:
    input:
        code=code("membership-roles"),
        split=paths.SPLIT_INDEXES,
    output:
        roles=paths.SHADOW_ROLES,
    params:
        config=CONFIG_ARGS,
        settings=config_slice(config, "membership-roles"),
    benchmark:
        cost_record("membership_shadow_roles", "size{size}/shadow{k}")
    log:
        paths.log("membership_shadow_roles", "size{size}/shadow{k}"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered membership-roles {params.config} --split {input.split} --size {wildcards.size} "
        "--shadow {wildcards.k} --out {output.roles} --log {log}"


rule membership_shadow:
    input:
        code=code("membership-shadow"),
        checkpoint=paths.CHECKPOINT,
        images=model_images,
        roles=training_sets,
        target_roles=lambda wc: paths.TARGET_ROLES.format(size=membership_size(wc.model)),
    output:
        outputs=paths.SHADOW_OUTPUTS,
    wildcard_constraints:
        model="|".join(MI_SHADOWS),
    params:
        config=CONFIG_ARGS,
        settings=lambda wc: config_slice(config, "membership-shadow", model=wc.model),
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=GPUS,
    threads: THREADS
    benchmark:
        cost_record("membership_shadow", "{model}/seed{seed}")
    log:
        paths.log("membership_shadow", "{model}/seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered membership-shadow {params.config} --model {wildcards.model} "
        "--checkpoint {input.checkpoint} --images {input.images} --roles {input.roles} "
        "--target-roles {input.target_roles} --out {output.outputs} --log {log}"


rule membership_attack:
    input:
        code=code("membership-attack"),
        checkpoint=paths.CHECKPOINT,
        images=model_images,
        roles=training_sets,
        shadows=lambda wc: expand(paths.SHADOW_OUTPUTS, model=shadow_names(wc.model), seed=wc.seed),
    output:
        metrics=paths.MEMBERSHIP_METRICS,
        scores=directory(paths.MEMBERSHIP_SCORES_DIR),
        figure=report(
            paths.MEMBERSHIP_ROC,
            caption="../report/membership_roc.rst",
            category="Membership inference",
            subcategory="ROC per target",
            labels={"model": "{model}", "seed": "{seed}"},
        ),
        figure_pdf=pdf(paths.MEMBERSHIP_ROC),
    wildcard_constraints:
        model="|".join(MI_TARGETS),
    params:
        config=CONFIG_ARGS,
        settings=lambda wc: config_slice(config, "membership-attack", model=wc.model),
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=GPUS,
    threads: THREADS
    benchmark:
        cost_record("membership_attack", "{model}/seed{seed}")
    log:
        paths.log("membership_attack", "{model}/seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered membership-attack {params.config} --model {wildcards.model} "
        "--checkpoint {input.checkpoint} --images {input.images} --roles {input.roles} --shadows {input.shadows} "
        "--metrics {output.metrics} --scores {output.scores} --figure {output.figure} --log {log}"


rule membership_report:
    input:
        code=code("membership-report"),
        metrics=expand(paths.MEMBERSHIP_METRICS, model=MI_TARGETS, seed=MI_SEEDS),
    output:
        table=paths.MEMBERSHIP_TABLE,
        paired_table=paths.MEMBERSHIP_PAIRED_TABLE,
        markdown=paths.MEMBERSHIP_MARKDOWN,
        summary=paths.MEMBERSHIP_SUMMARY,
        vs_temperature=report(paths.MEMBERSHIP_FIGURES["vs_temperature"], caption="../report/membership.rst",
                              category="Membership inference", subcategory="Across targets"),
        scaling=report(paths.MEMBERSHIP_FIGURES["scaling"], caption="../report/membership.rst",
                       category="Membership inference", subcategory="Across targets"),
        vs_generalization=report(paths.MEMBERSHIP_FIGURES["vs_generalization"], caption="../report/membership.rst",
                                 category="Membership inference", subcategory="Across targets"),
        pdfs=[pdf(f) for f in paths.MEMBERSHIP_FIGURES.values()],
    params:
        config=CONFIG_ARGS,
        settings=config_slice(config, "membership-report"),
    benchmark:
        cost_record("membership_report")
    log:
        paths.log("membership_report"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered membership-report {params.config} --metrics {input.metrics} --table {output.table} "
        "--paired-table {output.paired_table} "
        "--markdown {output.markdown} --summary {output.summary} --vs-temperature {output.vs_temperature} "
        "--scaling {output.scaling} --vs-generalization {output.vs_generalization} --log {log}"
