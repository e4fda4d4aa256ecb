# Data: fetch and verify the raw IDX files, parse them once, and split MNIST.


rule fetch_mnist:
    input:
        code=code("fetch"),
    output:
        arrays=paths.DATASET_ARRAYS.format(dataset="mnist"),
        manifest=paths.DATASET_MANIFEST.format(dataset="mnist"),
    params:
        config=CONFIG_ARGS,
        settings=config_slice(config, "fetch", dataset="mnist"),
    benchmark:
        cost_record("fetch_mnist")
    log:
        paths.log("fetch_mnist"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered fetch {params.config} --dataset mnist --out {output.arrays} "
        "--manifest {output.manifest} --log {log}"


rule fetch_fashion_mnist:
    input:
        code=code("fetch"),
    output:
        arrays=paths.DATASET_ARRAYS.format(dataset="fashion_mnist"),
        manifest=paths.DATASET_MANIFEST.format(dataset="fashion_mnist"),
    params:
        config=CONFIG_ARGS,
        settings=config_slice(config, "fetch", dataset="fashion_mnist"),
    benchmark:
        cost_record("fetch_fashion_mnist")
    log:
        paths.log("fetch_fashion_mnist"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered fetch {params.config} --dataset fashion_mnist --out {output.arrays} "
        "--manifest {output.manifest} --log {log}"


rule split:
    input:
        code=code("split"),
    output:
        indexes=paths.SPLIT_INDEXES,
        manifest=paths.SPLIT_MANIFEST,
    params:
        config=CONFIG_ARGS,
        settings=config_slice(config, "split"),
    benchmark:
        cost_record("split")
    log:
        paths.log("split"),
    localrule: True
    conda:
        "../envs/tempered.yaml"
    shell:
        "python -m tempered split {params.config} --out {output.indexes} --manifest {output.manifest} --log {log}"
