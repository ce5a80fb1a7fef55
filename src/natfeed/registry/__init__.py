"""Stage register and the MLflow model registry: logging, the promotion gate, rollback, the pyfunc chat model."""
