# The bridge to DVC: one target rule `dvc_<family>` per artifact family, whose
# input is the family's files (the pipeline table: src/datalign/studies/pipeline.py).
# Each DVC stage (dvc.yaml, generated from the same table) runs
#   snakemake dvc_<family> --allowed-rules <the family's rules> dvc_<family>


for _family in pipeline.all_families():

    rule:
        name:
            f"dvc_{_family.name}"
        input:
            pipeline.family_targets(_family.name, config),
        localrule: True
