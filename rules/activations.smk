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
    conda:
        "../envs/torch.yaml"
    threads: res("extract_image", "threads")
    resources:
        mem_mb=res("extract_image", "mem_mb"),
        runtime=res("extract_image", "runtime"),
        gpu=res("extract_image", "gpu"),
    params:
        model=model_entry,
        dataset=dataset_source,
        extraction=extraction_settings(),
        code=code("extract_image"),
    script:
        "../workflow_scripts/extract_image.py"


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
        name=f"vocab|classes_({names('datasets')})",
    conda:
        "../envs/torch.yaml"
    threads: res("embed_text", "threads")
    resources:
        mem_mb=res("embed_text", "mem_mb"),
        runtime=res("embed_text", "runtime"),
        gpu=res("embed_text", "gpu"),
    params:
        model=model_entry,
        prompts=text_prompts,
        code=code("embed_text"),
    script:
        "../workflow_scripts/embed_text.py"
