# Membership inference (issues 8, 15): roles per size and model seed (Carlini et al. 2022: each model seed trains
# on its half of the size's pool), every membership model's outputs on the candidates, every attack on each
# target (a recipe at one of membership.seeds; its shadows: the shadow recipe's other seeds, read from their
# outputs), then one table, summary and figures. The models train in rules/train.smk.


rule membership_roles:
    input:
        code=code("membership-roles"),
        split=paths.SPLIT_INDEXES,
    output:
        roles=paths.MEMBERSHIP_ROLES,
    params:
        config=CONFIG_ARGS,
        settings=config_slice(config, "membership-roles"),
    benchmark:
        cost_record("membership_roles", "size{size}/seed{seed}")
    log:
        paths.log("membership_roles", "size{size}/seed{seed}"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered membership-roles {params.config} --split {input.split} --size {wildcards.size} "
        "--seed {wildcards.seed} --out {output.roles} --log {log}"


rule membership_outputs:
    input:
        code=code("membership-outputs"),
        checkpoint=paths.CHECKPOINT,
        images=model_images,
        roles=training_sets,
    output:
        outputs=paths.MEMBERSHIP_OUTPUTS,
    wildcard_constraints:
        model="|".join(MI_RECIPES),
    params:
        config=CONFIG_ARGS,
        settings=lambda wc: config_slice(config, "membership-outputs", model=wc.model),
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=GPUS,
    threads: THREADS
    benchmark:
        cost_record("membership_outputs", "{model}/seed{seed}")
    log:
        paths.log("membership_outputs", "{model}/seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered membership-outputs {params.config} --model {wildcards.model} --seed {wildcards.seed} "
        "--checkpoint {input.checkpoint} --images {input.images} --roles {input.roles} --out {output.outputs} "
        "--log {log}"


rule membership_attack:
    input:
        code=code("membership-attack"),
        target=paths.MEMBERSHIP_OUTPUTS,
        # The shadow recipe at every model seed, the target's own included (the attack drops it): one list for
        # every target seed, so dvc.yaml writes one definition for them (tempered.dvc_export NUMBERS_AS_WRITTEN).
        shadows=lambda wc: expand(paths.MEMBERSHIP_OUTPUTS, model=shadow_recipe_name(wc.model), seed=MI_MODEL_SEEDS),
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
        seed="|".join(MI_SEEDS),
    params:
        config=CONFIG_ARGS,
        settings=lambda wc: config_slice(config, "membership-attack", model=wc.model),
    resources:
        mem_mb=4000,
        runtime=30,
    threads: THREADS
    benchmark:
        cost_record("membership_attack", "{model}/seed{seed}")
    log:
        paths.log("membership_attack", "{model}/seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered membership-attack {params.config} --model {wildcards.model} --seed {wildcards.seed} "
        "--target {input.target} --shadows {input.shadows} --metrics {output.metrics} --scores {output.scores} "
        "--figure {output.figure} --log {log}"


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
