"""The results table and the Markdown report, built from sections that each stage contributes."""
