"""The execution environment every stage shares: atomic outputs, device choice, job logs."""
