"""Deep features for small cohorts: a frozen 2D network embeds each slice, a small model learns the patient's label.

    method, recipe = glioscope.methods.load_recipe("mil-tumour", quick=True)
    method.run(recipe, Path("cohorts/lgg"), Path("runs/mil"), splits=Path("splits/lgg"))

`settings` (the recipes' schema: recipes/deepfeatures/deepfeatures.yaml), `embed` (the frozen
backbone and its cache), `inputs` (a patient's bag of embeddings and its pooled statistics),
`mil` (the patient-level gated-attention model) and `run` (a run folder like every run's).
"""
