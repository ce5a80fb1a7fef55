"""Model stages: base_model (the embedded default model) and train (TRL SFT then KTO)."""
