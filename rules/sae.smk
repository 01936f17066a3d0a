rule train_sae:
    input:
        train=f"{R}/activations/{{model}}/{{dataset}}/train/{{layer}}",
        val=f"{R}/activations/{{model}}/{{dataset}}/test/{{layer}}",
    output:
        weights=f"{R}/sae/{RUN}/sae_weights.safetensors",
        cfg=f"{R}/sae/{RUN}/cfg.json",
        log=f"{R}/sae/{RUN}/log.parquet",
        metrics=f"{R}/sae/{RUN}/metrics.json",
        sparsity=f"{R}/sae/{RUN}/sparsity.safetensors",
    log:
        f"logs/train_sae/{RUN}.log",
    benchmark:
        f"benchmarks/train_sae/{RUN}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: res("train_sae", "threads")
    resources:
        mem_mb=res("train_sae", "mem_mb"),
        runtime=res("train_sae", "runtime"),
        gpu=res("train_sae", "gpu"),
    params:
        entry=lambda w: config["saes"][w.sae],
        code=code("train_sae"),
    script:
        "../workflow_scripts/train_sae.py"
