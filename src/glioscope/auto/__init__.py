"""`glioscope auto`: point it at a cohort, get the best honest model it can find in a time budget.

fingerprint.py  what the cohort is (and the refusals that come first)
plan.py         the candidate recipes that fit it, their settings, the choice rule; a YAML a person can edit
folds.py        one set of patient-level outer folds, and inner folds inside each
execute.py      trials, the budget, every training of every candidate, resumable
select.py       the nested choice: per outer fold, on inner out-of-fold predictions only
report.py       the final model's package, the leaderboard and the report
run.py          the verb, composed
"""

from glioscope.auto.run import auto

__all__ = ["auto"]
