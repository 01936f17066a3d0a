"""The results table and the Markdown report."""
