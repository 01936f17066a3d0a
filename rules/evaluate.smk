SAE_FILES = [f"{R}/sae/{RUN}/sae_weights.safetensors", f"{R}/sae/{RUN}/cfg.json"]
TEST_ACTS = f"{R}/activations/{{model}}/{{dataset}}/test/{{layer}}"
SPLICE = f"{R}/splice/{{model}}/{{dataset}}/splice.json"


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


# The probe, the error baselines, the k-sweep and the monosemanticity of one evaluation
# (clipsae/steps/extras.py); the monosemanticity judges images by their final embeddings.
rule eval_extras:
    input:
        sae=SAE_FILES,
        train=f"{R}/activations/{{model}}/{{evalset}}/train/{{layer}}",
        test=EVAL_ACTS,
        classes=f"{R}/text/{{model}}/classes_{{evalset}}.npy",
        embeddings=f"{R}/activations/{{model}}/{{evalset}}/test/final",
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
        monosemanticity=config["evaluation"]["monosemanticity"],
        code=code("eval_extras"),
    script:
        "../workflow_scripts/eval_extras.py"


# The SpLiCE baseline of a model on a dataset: the final embedding as a sparse non-negative mix
# of the vocabulary's text embeddings (clipsae/steps/splice.py).
rule eval_splice:
    input:
        train=f"{R}/activations/{{model}}/{{dataset}}/train/final",
        test=f"{R}/activations/{{model}}/{{dataset}}/test/final",
        classes=f"{R}/text/{{model}}/classes_{{dataset}}.npy",
        vocab=f"{R}/text/{{model}}/vocab.npy",
    output:
        SPLICE,
    log:
        "logs/eval_splice/{model}/{dataset}.log",
    benchmark:
        "benchmarks/eval_splice/{model}/{dataset}.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: res("eval_splice", "threads")
    resources:
        mem_mb=res("eval_splice", "mem_mb"),
        runtime=res("eval_splice", "runtime"),
        gpu=res("eval_splice", "gpu"),
    params:
        splice=config["evaluation"]["splice"],
        code=code("eval_splice"),
    script:
        "../workflow_scripts/eval_splice.py"


# Seed-to-seed alignment of an SAE and its `align_with` partner (clipsae/steps/alignment.py).
rule sae_alignment:
    input:
        sae=SAE_FILES,
        partner=partner_sae,
    output:
        f"{R}/eval/{RUN}/alignment.json",
    log:
        f"logs/sae_alignment/{RUN}.log",
    benchmark:
        f"benchmarks/sae_alignment/{RUN}.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: res("sae_alignment", "threads")
    resources:
        mem_mb=res("sae_alignment", "mem_mb"),
        runtime=res("sae_alignment", "runtime"),
        gpu=res("sae_alignment", "gpu"),
    params:
        partner=lambda w: config["saes"][w.sae]["align_with"],
        code=code("sae_alignment"),
    script:
        "../workflow_scripts/sae_alignment.py"
