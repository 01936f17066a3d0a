rule build_embedded_clip:
    output:
        weights=f"{R}/models/{{model}}/open_clip_model.safetensors",
        report=f"{R}/models/{{model}}/build.json",
    log:
        "logs/build_embedded_clip/{model}.log",
    benchmark:
        "benchmarks/build_embedded_clip/{model}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: res("build_embedded_clip", "threads")
    resources:
        mem_mb=res("build_embedded_clip", "mem_mb"),
        runtime=res("build_embedded_clip", "runtime"),
        gpu=res("build_embedded_clip", "gpu"),
    params:
        arch=lambda w: model_entry(w)["arch"],
        build=lambda w: model_entry(w)["build"],
        code=code("build_embedded_clip"),
    script:
        "../workflow_scripts/build_embedded_clip.py"
