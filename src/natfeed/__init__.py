"""natfeed: turn real chat logs into naturally-occurring-feedback datasets (SFT/KTO) and better chat models.

Subpackages follow the pipeline's domains (a stage, its params section and its module share a name):
``core`` (conversations, categories, I/O, language, logging, MLflow tracking), ``params`` (typed
params.yaml), ``data`` (ingest, validate, build_kto, extract_quality), ``extract`` (the extractor
backends: ``heuristic`` and ``llm``), ``model`` (base_model, train), ``evaluate`` and ``registry``.
"""

__version__ = "0.1.0"
