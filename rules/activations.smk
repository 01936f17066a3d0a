rule extract_image:
    input:
        index=f"{R}/data/{{dataset}}/index.parquet",
        weights=model_weights,
    output:
        directory(f"{R}/activations/{{model}}/{{dataset}}/{{split}}/{{layer}}"),
    log:
        "logs/extract_image/{model}/{dataset}/{split}/{layer}.log",
    benchmark:
        "benchmarks/extract_image/{model}/{dataset}/{split}/{layer}.tsv"
    threads: res("extract_image", "threads")
    resources:
        mem_mb=res("extract_image", "mem_mb"),
        runtime=res("extract_image", "runtime"),
        gpu=res("extract_image", "gpu"),
    params:
        model=model_entry,
        dataset=dataset_entry,
        extraction=config["extraction"],
        device=config["device"],
    script:
        "../workflow_scripts/extract_image.py"


def text_source(w):
    if w.name == "vocab":
        return config["vocabulary"]
    return f"{R}/data/{w.name.removeprefix('classes_')}/classes.json"


def text_templates(w):
    if w.name == "vocab":
        return None
    return config["datasets"][w.name.removeprefix("classes_")].get("templates")


rule embed_text:
    input:
        source=text_source,
        weights=model_weights,
    output:
        f"{R}/text/{{model}}/{{name}}.npy",
        f"{R}/text/{{model}}/{{name}}.parquet",
    log:
        "logs/embed_text/{model}/{name}.log",
    benchmark:
        "benchmarks/embed_text/{model}/{name}.tsv"
    wildcard_constraints:
        name="vocab|classes_(" + names("datasets") + ")",
    threads: res("embed_text", "threads")
    resources:
        mem_mb=res("embed_text", "mem_mb"),
        runtime=res("embed_text", "runtime"),
        gpu=res("embed_text", "gpu"),
    params:
        model=model_entry,
        templates=text_templates,
    script:
        "../workflow_scripts/embed_text.py"
