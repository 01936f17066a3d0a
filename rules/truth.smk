# The generated datasets know every image's factors (shape, colour, background, ...), so their
# latents are checked against that truth, and steering is measured on the final embedding.


rule ground_truth:
    input:
        sae=SAE_FILES,
        train=f"{R}/activations/{{model}}/{{dataset}}/train/{{layer}}",
        test=TEST_ACTS,
        index=f"{R}/data/{{dataset}}/index.parquet",
        names=f"{R}/interpret/{RUN}/vocab.csv",
        vocab=f"{R}/text/{{model}}/vocab.npy",
    output:
        table=f"{R}/eval/{RUN}/ground_truth.parquet",
        summary=f"{R}/eval/{RUN}/ground_truth.json",
    log:
        f"logs/ground_truth/{RUN}.log",
    benchmark:
        f"benchmarks/ground_truth/{RUN}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: res("ground_truth", "threads")
    resources:
        mem_mb=res("ground_truth", "mem_mb"),
        runtime=res("ground_truth", "runtime"),
        gpu=res("ground_truth", "gpu"),
    params:
        top_n=config["naming"]["top_n"],
        center=config["naming"]["center"],
        code=code("ground_truth"),
    script:
        "../workflow_scripts/ground_truth.py"


rule steering:
    input:
        sae=SAE_FILES,
        acts=TEST_ACTS,
        truth=f"{R}/eval/{RUN}/ground_truth.parquet",
        classes=f"{R}/text/{{model}}/classes_{{dataset}}.npy",
        other=other_classes,
        index=f"{R}/data/{{dataset}}/index.parquet",
    output:
        table=f"{R}/eval/{RUN}/steering.parquet",
        neighbours=f"{R}/eval/{RUN}/steering.neighbours.parquet",
        summary=f"{R}/eval/{RUN}/steering.json",
    log:
        f"logs/steering/{RUN}.log",
    benchmark:
        f"benchmarks/steering/{RUN}.tsv"
    wildcard_constraints:
        layer="final",
    conda:
        "../envs/torch.yaml"
    threads: res("steering", "threads")
    resources:
        mem_mb=res("steering", "mem_mb"),
        runtime=res("steering", "runtime"),
        gpu=res("steering", "gpu"),
    params:
        factor=lambda w: factor_of(w.dataset),
        code=code("steering"),
    script:
        "../workflow_scripts/steering.py"
