# The reproduction report: every claim of workflow/claims.yaml beside our measurement, verdicts computed.
from tempered.stages.report.claims import load_claims
from tempered.stages.report.inputs import report_inputs


rule report:
    input:
        code=code("report"),
        claims=paths.CLAIMS,
        metrics=report_inputs(config, load_claims(paths.CLAIMS)),
        tables=[paths.SZEGEDY_MARKDOWN, paths.DISTILLATION_MARKDOWN, paths.CALIBRATION_MARKDOWN, paths.OOD_MARKDOWN,
                paths.MEMBERSHIP_MARKDOWN],
    output:
        markdown=paths.REPORT_MARKDOWN,
        table=paths.CLAIMS_TABLE,
        metrics=paths.REPORT_METRICS,
        figure=report(
            paths.TEMPERATURE_SUMMARY,
            caption="../report/temperature_summary.rst",
            category="Summary",
        ),
        figure_pdf=pdf(paths.TEMPERATURE_SUMMARY),
    params:
        config=CONFIG_ARGS,
        settings=config_slice(config, "report"),
    benchmark:
        cost_record("report")
    log:
        paths.log("report"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered report {params.config} --claims {input.claims} --markdown {output.markdown} "
        "--table {output.table} --metrics {output.metrics} --figure {output.figure} --log {log}"
