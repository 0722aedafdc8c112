"""Model families and the model registry (step 3 of the tutorial)."""
