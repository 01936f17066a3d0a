rule encode_features:
    input:
        sae=SAE_FILES,
        acts=TEST_ACTS,
    output:
        stats=f"{R}/features/{RUN}/stats.parquet",
        top=f"{R}/features/{RUN}/top_images.parquet",
        weak=f"{R}/features/{RUN}/weak_images.parquet",
    log:
        f"logs/encode_features/{RUN}.log",
    benchmark:
        f"benchmarks/encode_features/{RUN}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: res("encode_features", "threads")
    resources:
        mem_mb=res("encode_features", "mem_mb"),
        runtime=res("encode_features", "runtime"),
        gpu=res("encode_features", "gpu"),
    params:
        top_k=config["features"]["top_k"],
        n_weak=config["features"]["n_weak"],
        weak_quantile=config["features"]["weak_quantile"],
        code=code("encode_features"),
    script:
        "../workflow_scripts/encode_features.py"


rule collages:
    input:
        stats=f"{R}/features/{RUN}/stats.parquet",
        top=f"{R}/features/{RUN}/top_images.parquet",
        weak=f"{R}/features/{RUN}/weak_images.parquet",
        acts=TEST_ACTS,
        index=f"{R}/data/{{dataset}}/index.parquet",
    output:
        directory(f"{R}/collages/{RUN}"),
    log:
        f"logs/collages/{RUN}.log",
    benchmark:
        f"benchmarks/collages/{RUN}.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: res("collages", "threads")
    resources:
        mem_mb=res("collages", "mem_mb"),
        runtime=res("collages", "runtime"),
    params:
        dataset=dataset_source,
        n_latents=config["features"]["n_collages"],
        latents=config["features"]["latents"],
        tile=config["features"]["tile"],
        code=code("collages"),
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
    conda:
        "../envs/cpu.yaml"
    threads: res("name_by_vocab", "threads")
    resources:
        mem_mb=res("name_by_vocab", "mem_mb"),
        runtime=res("name_by_vocab", "runtime"),
    params:
        model=model_entry,
        top_n=config["naming"]["top_n"],
        center=config["naming"]["center"],
        code=code("name_by_vocab"),
    script:
        "../workflow_scripts/name_by_vocab.py"


rule interpret_vlm:
    input:
        collages=f"{R}/collages/{RUN}",
    output:
        csv=f"{R}/interpret/{RUN}/vlm.csv",
        summary=f"{R}/interpret/{RUN}/vlm_summary.json",
    log:
        f"logs/interpret_vlm/{RUN}.log",
    benchmark:
        f"benchmarks/interpret_vlm/{RUN}.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: res("interpret_vlm", "threads")
    resources:
        mem_mb=res("interpret_vlm", "mem_mb"),
        runtime=res("interpret_vlm", "runtime"),
    params:
        vlm=vlm_naming_params,
        code=code("interpret_vlm"),
    script:
        "../workflow_scripts/interpret_vlm.py"


rule clean_interpretations:
    input:
        sae=SAE_FILES,
        names=f"{R}/interpret/{RUN}/vocab.csv",
        vlm=f"{R}/interpret/{RUN}/vlm.csv",
        acts=TEST_ACTS,
        final=f"{R}/activations/{{model}}/{{dataset}}/test/final",
        manual=config["interpret"]["manual"] or [],
        weights=model_weights,
        index=f"{R}/data/{{dataset}}/index.parquet",
    output:
        table=f"{R}/interpret/{RUN}/interpretations.csv",
        summary=f"{R}/interpret/{RUN}/interpretations.json",
        simulation=f"{R}/interpret/{RUN}/simulation.csv",
    log:
        f"logs/clean_interpretations/{RUN}.log",
    benchmark:
        f"benchmarks/clean_interpretations/{RUN}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: res("clean_interpretations", "threads")
    resources:
        mem_mb=res("clean_interpretations", "mem_mb"),
        runtime=res("clean_interpretations", "runtime"),
        gpu=res("clean_interpretations", "gpu"),
    params:
        model=model_entry,
        scoring=config["interpret"]["scoring"],
        # The VLM simulation score: its images, how they are sampled, and the VLM that answers.
        dataset=dataset_source,
        simulation=config["interpret"]["simulation"],
        vlm=vlm_naming_params,
        code=code("clean_interpretations"),
    script:
        "../workflow_scripts/clean_interpretations.py"


rule explore:
    input:
        sae=SAE_FILES,
        acts=TEST_ACTS,
        stats=f"{R}/features/{RUN}/stats.parquet",
        top=f"{R}/features/{RUN}/top_images.parquet",
        names=f"{R}/interpret/{RUN}/interpretations.csv",
        classes=f"{R}/text/{{model}}/classes_{{dataset}}.npy",
        class_names=f"{R}/text/{{model}}/classes_{{dataset}}.parquet",
        index=f"{R}/data/{{dataset}}/index.parquet",
        weights=model_weights,
    output:
        clusters=f"{R}/explore/{RUN}/clusters.parquet",
        clusters_image=f"{R}/explore/{RUN}/clusters.jpg",
        examples=f"{R}/explore/{RUN}/examples.json",
        examples_image=f"{R}/explore/{RUN}/examples.jpg",
    log:
        f"logs/explore/{RUN}.log",
    benchmark:
        f"benchmarks/explore/{RUN}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: res("explore", "threads")
    resources:
        mem_mb=res("explore", "mem_mb"),
        runtime=res("explore", "runtime"),
        gpu=res("explore", "gpu"),
    params:
        model=model_entry,
        dataset=dataset_source,
        explore=config["explore"],
        code=code("explore"),
    script:
        "../workflow_scripts/explore.py"
