rule results_table:
    input:
        recon=per_eval(f"{R}/eval/{EVAL}/recon.json"),
        zeroshot=per_eval(f"{R}/eval/{EVAL}/zeroshot.json"),
        cfg=per_eval(f"{R}/sae/{RUN}/cfg.json"),
        extras=per_eval(f"{R}/eval/{EVAL}/extras.json"),
        splice=[SPLICE.format(**pair) for pair in splice_pairs()],
    output:
        parquet=f"{R}/tables/results.parquet",
        markdown=f"{R}/tables/results.md",
    log:
        "logs/results_table.log",
    benchmark:
        "benchmarks/results_table.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: res("results_table", "threads")
    resources:
        mem_mb=res("results_table", "mem_mb"),
        runtime=res("results_table", "runtime"),
    params:
        runs=list(evaluations()),
        splice=splice_pairs(),
        code=code("results_table"),
    script:
        "../workflow_scripts/results_table.py"


rule report:
    input:
        table=f"{R}/tables/results.parquet",
        stats=per_combo(f"{R}/features/{RUN}/stats.parquet"),
        collages=per_combo(f"{R}/collages/{RUN}"),
        names=per_combo(f"{R}/interpret/{RUN}/vocab.csv"),
        vlm=per_combo(f"{R}/interpret/{RUN}/vlm_summary.json"),
        vlm_names=per_combo(f"{R}/interpret/{RUN}/vlm.csv"),
        interpretations=per_combo(f"{R}/interpret/{RUN}/interpretations.csv"),
        interpretations_summary=per_combo(f"{R}/interpret/{RUN}/interpretations.json"),
        explore_clusters=per_combo(f"{R}/explore/{RUN}/clusters.parquet"),
        explore_clusters_image=per_combo(f"{R}/explore/{RUN}/clusters.jpg"),
        explore_examples=per_combo(f"{R}/explore/{RUN}/examples.json"),
        explore_examples_image=per_combo(f"{R}/explore/{RUN}/examples.jpg"),
        acts=[ACTS.format(**e) for e in extractions()],
        truth=[f"{R}/eval/{RUN}/ground_truth.json".format(**c) for c in truth_runs()],
        steering=[f"{R}/eval/{RUN}/steering.json".format(**c) for c in steering_runs()],
        extras=per_eval(f"{R}/eval/{EVAL}/extras.json"),
        models=list(model_records().values()),
        splice=[SPLICE.format(**pair) for pair in splice_pairs()],
        alignments=[f"{R}/eval/{RUN}/alignment.json".format(**a) for a in alignments()],
    output:
        report=f"{R}/report.md",
        figure=f"{R}/figures/l0_vs_fvu.png",
        accuracy=f"{R}/figures/accuracy.png",
        delta=f"{R}/figures/l0_vs_delta_accuracy.png",
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: res("report", "threads")
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    params:
        runs=list(combos()),
        extractions=list(extractions()),
        truth_runs=list(truth_runs()),
        steering_runs=steering_runs(),
        published=published_figures(),
        evaluations=list(evaluations()),
        models=list(model_records()),
        splice=splice_pairs(),
        alignments=alignments(),
        code=code("report"),
    script:
        "../workflow_scripts/report.py"
