"""LLM extractor backends: prompts, answer parsing and one module per engine (openai, transformers, vllm,
ray), over the shared :class:`natfeed.extract.llm.base.LLMExtractor`."""
