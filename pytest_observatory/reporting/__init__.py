"""Reporters: each one reads CheckResults from pytest_observatory_check_finished, nothing else."""
