# OOD and misclassification detection (Hendrycks & Gimpel 2017; Liang et al. 2018; DeVries & Taylor 2018): the
# OOD test sets, one scoring job per (model, seed) for ood.models and the distillation students, then a report.
from tempered.stages.ood.scored_models import ood_model_names

OOD_MODELS = ood_model_names(config)


rule fetch_ood_sets:
    input:
        code=code("fetch-ood-sets"),
    output:
        arrays=paths.OOD_DOWNLOADED_ARRAYS,
        manifest=paths.OOD_DOWNLOADED_MANIFEST,
    params:
        config=CONFIG_ARGS,
        settings=config_slice(config, "fetch-ood-sets"),
    benchmark:
        cost_record("fetch_ood_sets")
    log:
        paths.log("fetch_ood_sets"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered fetch-ood-sets {params.config} --out {output.arrays} --manifest {output.manifest} "
        "--log {log}"


rule detect_ood:
    input:
        code=code("ood"),
        checkpoint=paths.CHECKPOINT,
        images=paths.DATASET_ARRAYS.format(dataset="mnist"),
        split=paths.SPLIT_INDEXES,
        fashion=paths.DATASET_ARRAYS.format(dataset="fashion_mnist"),
        downloaded=paths.OOD_DOWNLOADED_ARRAYS,
        downloaded_manifest=paths.OOD_DOWNLOADED_MANIFEST,
        calibration=paths.CALIBRATION_METRICS,
    output:
        metrics=paths.OOD_METRICS,
        scores=directory(paths.OOD_SCORES_DIR),
        roc=report(
            paths.OOD_ROC,
            caption="../report/ood_roc.rst",
            category="OOD detection",
            subcategory="ROC curves",
            labels={"model": "{model}", "seed": "{seed}"},
        ),
        roc_pdf=pdf(paths.OOD_ROC),
        histograms=report(
            paths.OOD_HISTOGRAMS,
            caption="../report/ood_scores.rst",
            category="OOD detection",
            subcategory="Score histograms",
            labels={"model": "{model}", "seed": "{seed}"},
        ),
        histograms_pdf=pdf(paths.OOD_HISTOGRAMS),
    wildcard_constraints:
        model="|".join(OOD_MODELS),
    params:
        config=CONFIG_ARGS,
        settings=lambda wc: config_slice(config, "ood", model=wc.model),
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=GPUS,
    threads: THREADS
    benchmark:
        cost_record("detect_ood", "{model}/seed{seed}")
    log:
        paths.log("detect_ood", "{model}/seed{seed}"),
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered ood {params.config} --model {wildcards.model} --seed {wildcards.seed} "
        "--checkpoint {input.checkpoint} --images {input.images} --split {input.split} --fashion {input.fashion} "
        "--downloaded {input.downloaded} --downloaded-manifest {input.downloaded_manifest} "
        "--calibration {input.calibration} --metrics {output.metrics} --scores {output.scores} "
        "--roc {output.roc} --histograms {output.histograms} --log {log}"


rule ood_report:
    input:
        code=code("ood-report"),
        claims=paths.CLAIMS,  # the published numbers printed beside ours (tempered.stages.report.reference)
        metrics=expand(paths.OOD_METRICS, model=OOD_MODELS, seed=SEEDS),
        manifest=paths.OOD_DOWNLOADED_MANIFEST,
    output:
        table=paths.OOD_TABLE,
        markdown=paths.OOD_MARKDOWN,
        figure=report(
            paths.OOD_AUROC_VS_T,
            caption="../report/ood_auroc_vs_temperature.rst",
            category="OOD detection",
            subcategory="Across models",
        ),
        figure_pdf=pdf(paths.OOD_AUROC_VS_T),
    params:
        config=CONFIG_ARGS,
    benchmark:
        cost_record("ood_report")
    log:
        paths.log("ood_report"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered ood-report {params.config} --metrics {input.metrics} --manifest {input.manifest} "
        "--table {output.table} --markdown {output.markdown} --figure {output.figure} --log {log}"
