"""Benchmarks of journey (`python -m bench`); fixtures and measurements, not product."""
