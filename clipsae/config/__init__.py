"""Workflow configuration: the JSON schema (package data) and the checks that need code."""
