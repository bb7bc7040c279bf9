# Task2Vec, several sets per job (resources.task2vec.sets_per_job > 1). Included by
# task2vec.smk, which says how the grouping works.

TASK2VEC_GROUPS = plan.embedding_groups(config)
TASK2VEC_GROUP_OF = {(s.dataset, s.split): i for i, group in enumerate(TASK2VEC_GROUPS) for s in group}


def task2vec_group_sets(wildcards):
    """The sets of group number `wildcards.group` (plan.embedding_groups)."""
    return TASK2VEC_GROUPS[int(wildcards.group)]


def task2vec_group_of(wildcards):
    """The group folder a set's files are copied from."""
    try:
        return A.embedding_group(TASK2VEC_GROUP_OF[(wildcards.dataset, wildcards.split)])
    except KeyError:
        raise WorkflowError(
            f"{wildcards.dataset}/{wildcards.split} is not one of the study's embedding sets: "
            "with resources.task2vec.sets_per_job > 1 only those are embedded"
        ) from None


rule task2vec_group:
    input:
        probe=P.probe_model(),
        tokens=lambda wc: [P.tokens(s.dataset, s.split) for s in task2vec_group_sets(wc)],
    output:
        group=directory(A.embedding_group()),
    params:
        task2vec=canonical(config["task2vec"]),
        sets=lambda wc: [[s.dataset, s.split] for s in task2vec_group_sets(wc)],
        seeds=lambda wc: [derived_seed(config, "task2vec", s.dataset, s.split) for s in task2vec_group_sets(wc)],
    wildcard_constraints:
        group=r"\d+",
    conda:
        CONDA_ENV
    log:
        P.log("task2vec/group_{group}"),
    benchmark:
        P.benchmark("task2vec/group_{group}")
    threads: rule_threads("task2vec")
    resources:
        mem_mb=res("task2vec", "mem_mb"),
        # the per-set runtime (minutes), times the sets of the job
        runtime=lambda wc: res("task2vec", "runtime") * len(task2vec_group_sets(wc)),
        gpu=res("task2vec", "gpu"),
    script:
        "../../scripts/alignment/task2vec.py"


# Each set's files, from its group's folder to the usual paths (the same bytes).
rule task2vec:
    input:
        group=task2vec_group_of,
    output:
        embeddings=A.embeddings(),
        meta=A.embeddings_meta(),
    localrule: True
    # a shell command, not `run:`: Snakemake runs a `run:` job in a Python process of its
    # own that parses the workflow again (~4 s here), as long as the start-up saved
    shell:
        "cp {input.group:q}/{wildcards.dataset:q}/{wildcards.split:q}.npz {output.embeddings:q}"
        " && cp {input.group:q}/{wildcards.dataset:q}/{wildcards.split:q}.json {output.meta:q}"
