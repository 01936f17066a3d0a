rule prepare_dataset:
    output:
        index=f"{R}/data/{{dataset}}/index.parquet",
        classes=f"{R}/data/{{dataset}}/classes.json",
    log:
        "logs/prepare_dataset/{dataset}.log",
    benchmark:
        "benchmarks/prepare_dataset/{dataset}.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: res("prepare_dataset", "threads")
    resources:
        mem_mb=res("prepare_dataset", "mem_mb"),
        runtime=res("prepare_dataset", "runtime"),
    params:
        entry=dataset_source,
        code=code("prepare_dataset"),
    script:
        "../workflow_scripts/prepare_dataset.py"
