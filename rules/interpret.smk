rule encode_features:
    input:
        sae=SAE_FILES,
        acts=TEST_ACTS,
    output:
        stats=f"{R}/features/{RUN}/stats.parquet",
        top=f"{R}/features/{RUN}/top_images.parquet",
    log:
        f"logs/encode_features/{RUN}.log",
    benchmark:
        f"benchmarks/encode_features/{RUN}.tsv"
    threads: res("encode_features", "threads")
    resources:
        mem_mb=res("encode_features", "mem_mb"),
        runtime=res("encode_features", "runtime"),
        gpu=res("encode_features", "gpu"),
    params:
        top_k=config["features"]["top_k"],
        device=config["device"],
    script:
        "../workflow_scripts/encode_features.py"


rule collages:
    input:
        stats=f"{R}/features/{RUN}/stats.parquet",
        top=f"{R}/features/{RUN}/top_images.parquet",
        acts=TEST_ACTS,
        index=f"{R}/data/{{dataset}}/index.parquet",
    output:
        directory(f"{R}/collages/{RUN}"),
    log:
        f"logs/collages/{RUN}.log",
    benchmark:
        f"benchmarks/collages/{RUN}.tsv"
    threads: res("collages", "threads")
    resources:
        mem_mb=res("collages", "mem_mb"),
        runtime=res("collages", "runtime"),
    params:
        dataset=dataset_entry,
        n_latents=config["features"]["n_collages"],
        tile=config["features"]["tile"],
    script:
        "../workflow_scripts/collages.py"


rule name_by_vocab:
    input:
        sae=SAE_FILES,
        vocab=f"{R}/text/{{model}}/vocab.npy",
        weights=model_weights,
    output:
        f"{R}/interpret/{RUN}/vocab.csv",
    log:
        f"logs/name_by_vocab/{RUN}.log",
    benchmark:
        f"benchmarks/name_by_vocab/{RUN}.tsv"
    threads: res("name_by_vocab", "threads")
    resources:
        mem_mb=res("name_by_vocab", "mem_mb"),
        runtime=res("name_by_vocab", "runtime"),
    params:
        model=model_entry,
        top_n=config["naming"]["top_n"],
        center=config["naming"]["center"],
    script:
        "../workflow_scripts/name_by_vocab.py"
