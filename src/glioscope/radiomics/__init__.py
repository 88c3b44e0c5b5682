"""The radiomics baseline: PyRadiomics features in the tumour mask and a regularised classifier, on the same folds.

    glioscope cv radiomics --cohort cohorts/brats --splits splits/brats      # logistic regression, L1 or L2
    glioscope cv radiomics-rf --cohort cohorts/brats --splits splits/brats   # random forest

inputs (the cohort's channels and masks per patient) -> extract (PyRadiomics, cached, in
processes) -> classifier (inner CV on each fold's training patients) -> run (the fold loop and
the run folder, evaluated and reported like a deep run's); portable keeps each fold's fitted
classifier as plain arrays and feature_set featurises new patients, so that a trained run is
applied, tested and exported like a deep one (glioscope.methods.radiomics); settings holds the
recipes' schema (RADIOMICS, for the generic loader). Nothing is imported here, so that the
extraction's worker processes start light; PyRadiomics is imported only where features are computed.
"""
