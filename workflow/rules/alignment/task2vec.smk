# Task2Vec: one Fisher embedding per batch of each (dataset, split) the study compares.
#
# resources.task2vec.sets_per_job (default 1) says how many sets one job embeds; a
# resource choice, not part of the params: the arrays are the same either way.
#   1: rule task2vec, one job (one process) per set.
#   N > 1: rule task2vec_group embeds consecutive chunks of N of the study's sets
#     (plan.embedding_groups) in one process each, importing torch and loading the
#     probe once, into the group's folder (A.embedding_group); rule task2vec then
#     copies each set's two files to their usual paths (a local `cp`, no Python).
#     Snakemake cannot give one rule's jobs different lists of fixed output paths, so
#     the group writes a folder of its own, which it keeps: a later edit of its
#     inputs, params or script reruns the group, and its copies after it.
# The two variants live in files of their own: Snakemake records a script rule's code
# as written, indentation included: the one-set rule stays verbatim at column 0, the
# rule Snakemake recorded for runs made before the option existed.


if plan.task2vec_sets_per_job(config) == 1:

    include: "task2vec_single.smk"

else:

    include: "task2vec_grouped.smk"
