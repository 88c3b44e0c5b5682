"""Reports: one self-contained HTML page per run, and a comparison of runs on the same folds."""

from glioscope.report.compare import comparison_rows, write_comparison
from glioscope.report.run_report import write_report
from glioscope.report.terminal import headline_text

__all__ = ["write_report", "write_comparison", "comparison_rows", "headline_text"]
