"""Shared building blocks: conversations and categories, table schemas, I/O, language, logging, MLflow."""
