"""``evaluate``: the policy against the base model and SFT-only against KTO, with optional judges."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from natfeed.params.base import Section
from natfeed.params.endpoint import EndpointParams
from natfeed.params.extract import TorchDtype

PrimaryMetric = Literal["auto", "kto_reward_accuracy", "kto_reward_margin", "rm_win_rate", "llm_win_rate"]


class RmJudgeParams(Section):
    """Reward-model judge: a Hugging Face sequence-classification model scores each (prompt, reply)."""

    model: str = Field(..., description="Hub id or local path of an AutoModelForSequenceClassification RM "
                       "with one output (e.g. sfairXC/FsfairX-LLaMA3-RM-v0.1)")
    batch_size: int = Field(4, gt=0, description="(prompt, reply) pairs per forward pass")
    max_length: int = Field(2048, gt=1, description="Tokens per scored conversation (the end is kept)")
    tie_margin: float = Field(0.0, ge=0, description="|score difference| at or below this is a tie")
    trust_remote_code: bool = Field(False, description="Allow the RM's own modelling code (e.g. Eurus-RM)")


class LlmJudgeParams(EndpointParams):
    """LLM judge over an OpenAI-compatible chat-completions API (vllm serve, a hosted model): the endpoint
    settings of :class:`EndpointParams` (shared with extract.openai; ``max_concurrency`` is read as
    ``concurrency`` with a deprecation line), with the judge's own defaults."""

    base_url: str = Field(..., description="API root, e.g. http://localhost:8000/v1; requests go to "
                          "{base_url}/chat/completions")
    model: str = Field(..., description="Model name the endpoint serves")
    concurrency: int = Field(8, gt=0, description="Requests in flight at once")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout")
    max_retries: int = Field(4, ge=0, description="Retries on timeouts, connection errors, 429 and 5xx")
    max_backoff_s: float = Field(30.0, ge=0, description="Longest retry delay")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature of the judge")
    max_tokens: int = Field(16, gt=0, description="Judge answer length (raise for reasoning models)")


class SanityPrompt(Section):
    """A factual question every model should get right: a regression that breaks the model shows here."""

    prompt: str = Field(..., min_length=1, description="One user message")
    expect: str = Field(..., min_length=1, description="A word the greedy reply must contain (any case)")


def _sanity_defaults() -> list[SanityPrompt]:
    return [SanityPrompt(prompt="What is the capital of France? Answer in one word.", expect="Paris"),
            SanityPrompt(prompt="What is the capital of Japan? Answer in one word.", expect="Tokyo"),
            SanityPrompt(prompt="What is 2 + 2? Answer with a number.", expect="4"),
            SanityPrompt(prompt="What colour is the sky on a clear day? Answer in one word.", expect="blue")]


class EvaluateParams(Section):
    """Policy vs base and SFT-only vs KTO: intrinsic KTO metrics, judged win rates, a side-by-side sheet."""

    reference: Literal["sft", "base"] = Field("sft", description="Reference model of the policy's KTO implicit reward: sft (the "
                           "model KTO started from, TRL's ref) or base")
    beta: float = Field(0.1, gt=0, description="KTO beta scaling the implicit reward; keep = train.kto.beta")
    batch_size: int = Field(8, gt=0, description="Sequences per forward pass / generate call")
    max_length: int = Field(512, gt=1, description="Tokens per scored sequence (prompt head cut first); "
                            "as train.kto.max_length")
    max_new_tokens: int = Field(64, gt=0, description="Greedy reply length on held-out prompts")
    repetition_penalty: float = Field(1.0, gt=0, description="Greedy replies: >1 discourages repeating tokens "
                                      "(transformers' repetition_penalty; 1.0 = off)")
    max_prompts: int | None = Field(None, ge=0, description="Cap on held-out prompts (first N); null = all")
    device: str = Field("auto", description="auto (cuda if available, else cpu), cpu, cuda, cuda:1, ...")
    dtype: TorchDtype = Field("auto", description="auto (float32 on CPU, bfloat16 on GPU) or a torch dtype name")
    cpu_threads: int | None = Field(1, ge=1, description="torch threads while evaluating on CPU: 1 suits the "
                                    "tiny default (more threads contend on a busy machine); null = torch's default")
    primary_metric: PrimaryMetric = Field("auto", description="kto_reward_accuracy, kto_reward_margin, "
                                          "rm_win_rate or llm_win_rate; auto = "
                                "llm_win_rate if the LLM judge is on, else rm_win_rate if the RM judge is "
                                "on, else kto_reward_accuracy (win rates: policy vs base)")
    sanity: list[SanityPrompt] = Field(default_factory=_sanity_defaults, description="Factual prompts each model "
                                       "answers (greedy); the share answered right is reported per model")
    sanity_max_new_tokens: int = Field(16, gt=0, description="Reply length for the sanity prompts")
    rm_judge: RmJudgeParams | None = Field(None, description="Reward-model judge; null = off")
    llm_judge: LlmJudgeParams | None = Field(None, description="LLM judge; null = off")

    @model_validator(mode="after")
    def _choices(self) -> EvaluateParams:
        judge = {"rm_win_rate": self.rm_judge, "llm_win_rate": self.llm_judge}
        if self.primary_metric in judge and judge[self.primary_metric] is None:
            raise ValueError(f"primary_metric {self.primary_metric} needs "
                             f"{self.primary_metric.split('_')[0]}_judge to be configured")
        return self


