"""clipsae: CLIP activations -> sparse autoencoders -> metrics, collages, RU/EN names -> report."""

# A file given with --configfile is a whole experiment: it replaces the demo config, rather
# than being merged into it (Snakemake's default would also run the demo's models and datasets).
if not config:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/activations.smk"
include: "rules/sae.smk"
include: "rules/evaluate.smk"
include: "rules/interpret.smk"
include: "rules/truth.smk"
include: "rules/report.smk"


localrules:
    all,
    results_table,
    report,


rule all:
    input:
        "results/report.md",
