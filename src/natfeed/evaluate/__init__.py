"""Stage evaluate: likelihood metrics, reward-model and LLM judges, the side-by-side sheet."""
