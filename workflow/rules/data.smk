# Data: fetch and verify the raw IDX files, parse them once, and split MNIST.


rule fetch_mnist:
    output:
        arrays=paths.DATASET_ARRAYS.format(dataset="mnist"),
        manifest=paths.DATASET_MANIFEST.format(dataset="mnist"),
    params:
        settings=config["data"]["mnist"],
    log:
        paths.log("fetch_mnist"),
    localrule: True
    shell:
        "python -m tempered fetch {CONFIG_ARGS} --dataset mnist --out {output.arrays} "
        "--manifest {output.manifest} --log {log}"


rule fetch_fashion_mnist:
    output:
        arrays=paths.DATASET_ARRAYS.format(dataset="fashion_mnist"),
        manifest=paths.DATASET_MANIFEST.format(dataset="fashion_mnist"),
    params:
        settings=config["data"]["fashion_mnist"],
    log:
        paths.log("fetch_fashion_mnist"),
    localrule: True
    shell:
        "python -m tempered fetch {CONFIG_ARGS} --dataset fashion_mnist --out {output.arrays} "
        "--manifest {output.manifest} --log {log}"


rule split:
    output:
        indexes=paths.SPLIT_INDEXES,
        manifest=paths.SPLIT_MANIFEST,
    params:
        settings=config["split"],
    log:
        paths.log("split"),
    localrule: True
    shell:
        "python -m tempered split {CONFIG_ARGS} --out {output.indexes} --manifest {output.manifest} --log {log}"
