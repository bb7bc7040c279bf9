# datalign: does the training data fit the task, and what does training on it buy?
#
#   snakemake --cores 2                                 the offline default study
#   snakemake --cores 2 --configfile config/paper.yaml  the paper's datasets and models
#   snakemake --report results/report.html              every plot with its caption
#
# The default study comes from the workflow profile (profiles/default/config.yaml:
# `configfile: config/config.yaml`), which Snakemake reads by itself from the
# repository root: a `--configfile` on the command line replaces it whole, and
# `--config key=value` overrides one key. The rules only say which artifact
# comes from which; the science lives in src/datalign. Shared rules first, then
# one folder of rules per study the config enables (`studies:`).


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset="[A-Za-z0-9_]+",
    split="train|validation|test",


include: "workflow/rules/shared/study.smk"
include: "workflow/rules/shared/data.smk"


# The language-model layer (tokenizer, token ids, probe) where the config has one:
# a study on images alone needs neither.
if config.get("tokenizer") and config.get("probe"):

    include: "workflow/rules/shared/lm.smk"



for _study in STUDIES:
    for _rule_file in _study.rule_files:

        include: _rule_file


include: "workflow/rules/dvc.smk"


rule all:
    default_target: True
    input:
        final_targets(),
