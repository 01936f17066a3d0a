SAE_FILES = [f"{R}/sae/{RUN}/sae_weights.safetensors", f"{R}/sae/{RUN}/cfg.json"]
TEST_ACTS = f"{R}/activations/{{model}}/{{dataset}}/test/{{layer}}"


# Evaluations read the test split of the evaluation dataset ({evalset}), which may differ from
# the one the SAE was trained on ({dataset}).


rule eval_reconstruction:
    input:
        sae=SAE_FILES,
        acts=EVAL_ACTS,
    output:
        f"{R}/eval/{EVAL}/recon.json",
    log:
        f"logs/eval_reconstruction/{EVAL}.log",
    benchmark:
        f"benchmarks/eval_reconstruction/{EVAL}.tsv"
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
        acts=EVAL_ACTS,
        classes=f"{R}/text/{{model}}/classes_{{evalset}}.npy",
        index=f"{R}/data/{{evalset}}/index.parquet",
        weights=model_weights,
    output:
        f"{R}/eval/{EVAL}/zeroshot.json",
    log:
        f"logs/eval_zeroshot/{EVAL}.log",
    benchmark:
        f"benchmarks/eval_zeroshot/{EVAL}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: res("eval_zeroshot", "threads")
    resources:
        mem_mb=res("eval_zeroshot", "mem_mb"),
        runtime=res("eval_zeroshot", "runtime"),
        gpu=res("eval_zeroshot", "gpu"),
    params:
        model=model_entry,
        dataset=eval_dataset_source,
        code=code("eval_zeroshot"),
    script:
        "../workflow_scripts/eval_zeroshot.py"


# The probe, the error baselines and the k-sweep of one evaluation (clipsae/steps/extras.py).
rule eval_extras:
    input:
        sae=SAE_FILES,
        train=f"{R}/activations/{{model}}/{{evalset}}/train/{{layer}}",
        test=EVAL_ACTS,
        classes=f"{R}/text/{{model}}/classes_{{evalset}}.npy",
    output:
        f"{R}/eval/{EVAL}/extras.json",
    log:
        f"logs/eval_extras/{EVAL}.log",
    benchmark:
        f"benchmarks/eval_extras/{EVAL}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: res("eval_extras", "threads")
    resources:
        mem_mb=res("eval_extras", "mem_mb"),
        runtime=res("eval_extras", "runtime"),
        gpu=res("eval_extras", "gpu"),
    params:
        code=code("eval_extras"),
    script:
        "../workflow_scripts/eval_extras.py"
