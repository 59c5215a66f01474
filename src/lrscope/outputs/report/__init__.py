"""Figures and reports: matplotlib (Agg) figures drawn from plain arrays or the store."""
