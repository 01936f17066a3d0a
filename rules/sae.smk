rule train_sae:
    input:
        train=lambda w: ACTS.format(split=training_data(w).split, **w),
        val=lambda w: ACTS.format(split=training_data(w).val_split, **w),
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
        entry=sae_hyperparameters,
        data=lambda w: training_data(w).to_params(),
        code=code("train_sae"),
    script:
        "../workflow_scripts/train_sae.py"
