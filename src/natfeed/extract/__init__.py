"""Feedback extraction backends (heuristic on CPU; LLM backends plug into the same interface)."""
