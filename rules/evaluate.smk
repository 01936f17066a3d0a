SAE_FILES = [f"{R}/sae/{RUN}/sae_weights.safetensors", f"{R}/sae/{RUN}/cfg.json"]
TEST_ACTS = f"{R}/activations/{{model}}/{{dataset}}/test/{{layer}}"


rule eval_reconstruction:
    input:
        sae=SAE_FILES,
        acts=TEST_ACTS,
    output:
        f"{R}/eval/{RUN}/recon.json",
    log:
        f"logs/eval_reconstruction/{RUN}.log",
    benchmark:
        f"benchmarks/eval_reconstruction/{RUN}.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: res("eval_reconstruction", "threads")
    resources:
        mem_mb=res("eval_reconstruction", "mem_mb"),
        runtime=res("eval_reconstruction", "runtime"),
        gpu=res("eval_reconstruction", "gpu"),
    params:
        code=code("eval_reconstruction"),
    script:
        "../workflow_scripts/eval_reconstruction.py"


rule eval_zeroshot:
    input:
        sae=SAE_FILES,
        acts=TEST_ACTS,
        classes=f"{R}/text/{{model}}/classes_{{dataset}}.npy",
        index=f"{R}/data/{{dataset}}/index.parquet",
        weights=model_weights,
    output:
        f"{R}/eval/{RUN}/zeroshot.json",
    log:
        f"logs/eval_zeroshot/{RUN}.log",
    benchmark:
        f"benchmarks/eval_zeroshot/{RUN}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: res("eval_zeroshot", "threads")
    resources:
        mem_mb=res("eval_zeroshot", "mem_mb"),
        runtime=res("eval_zeroshot", "runtime"),
        gpu=res("eval_zeroshot", "gpu"),
    params:
        model=model_entry,
        dataset=dataset_source,
        code=code("eval_zeroshot"),
    script:
        "../workflow_scripts/eval_zeroshot.py"
