# The generated datasets know every image's factors (shape, colour, background, ...), so their
# latents are checked against that truth, and steering is measured on the final embedding.

from clipsae.data.synthetic import SyntheticSpec


def truth_runs():
    """The runs on generated datasets, where every image's factor values are known."""
    for c in combos():
        if config["datasets"][c["dataset"]]["source"] == "synthetic":
            yield c


def steering_runs():
    return [c for c in truth_runs() if c["layer"] == "final"]


def factor_of(dataset):
    """The factor a generated dataset's labels are (its classes)."""
    return config["datasets"][dataset].get("label_by", SyntheticSpec.label_by)


def other_classes(w):
    """Class embeddings of another generated dataset labelled by another factor: steering
    should change this dataset's predictions and leave that one's alone."""
    label_by = factor_of(w.dataset)
    for name, entry in config["datasets"].items():
        if entry["source"] == "synthetic" and factor_of(name) != label_by:
            return f"{R}/text/{w.model}/classes_{name}.npy"
    return []


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
    threads: res("ground_truth", "threads")
    resources:
        mem_mb=res("ground_truth", "mem_mb"),
        runtime=res("ground_truth", "runtime"),
        gpu=res("ground_truth", "gpu"),
    params:
        top_n=config["naming"]["top_n"],
        center=config["naming"]["center"],
        device=config["device"],
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
    threads: res("steering", "threads")
    resources:
        mem_mb=res("steering", "mem_mb"),
        runtime=res("steering", "runtime"),
        gpu=res("steering", "gpu"),
    params:
        factor=lambda w: factor_of(w.dataset),
        device=config["device"],
    script:
        "../workflow_scripts/steering.py"
