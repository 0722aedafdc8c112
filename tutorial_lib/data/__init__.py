"""Step 4, data: the synthetic sample, dataset checks, conversion, splitting and download."""
