"""The radiomics baseline: PyRadiomics features in the tumour mask and a regularised classifier, on the same folds.

    glioscope cv radiomics --cohort cohorts/brats --splits splits/brats      # logistic regression, L1 or L2
    glioscope cv radiomics-rf --cohort cohorts/brats --splits splits/brats   # random forest

inputs (the cohort's channels and masks per patient) -> extract (PyRadiomics, cached, in
processes) -> classifier (inner CV on each fold's training patients) -> run (the fold loop and
the run folder, evaluated and reported like a deep run's); settings holds the recipes' schema
and loader (load_radiomics_recipe, is_radiomics_recipe). Nothing is imported here, so that the
extraction's worker processes start light; PyRadiomics is imported only where features are computed.
"""
