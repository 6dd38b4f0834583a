"""Evaluation of generators: FID/KID/IS with the offline FID Inception, precision/recall,
density/coverage, and the Frechet classifier distance on digits (see docs/evaluation.md)."""
