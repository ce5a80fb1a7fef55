"""Backends ``transformers`` (batched, for small models) and ``paper_loop`` (the paper's original loop).

``transformers``: turn mode scores each allowed label's log-likelihood after the prompt — the prompt
is run once (left-padded batch, KV cache kept) and the labels' continuation tokens are scored on the
cache repeated once per label — so the answer is exactly constrained to the choices and the confidence
is the chosen label's probability normalised over the choices (greedy = the most likely label; with
``temperature > 0`` a label is sampled). Paper mode is batched ``generate`` (left padding, the chat
template, greedy by default) and the shared JSON parsing and span matching.

``paper_loop`` re-implements the paper's procedure as the speed baseline: one conversation at a time,
``generate`` with sampling, JSON objects found with a regex, a span kept only if it occurs verbatim
in a user turn from the 2nd on.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from natfeed.core.conversation import Conversation, judged_turns
from natfeed.core.device import resolve_device, resolve_dtype
from natfeed.extract.base import Detection
from natfeed.extract.llm.base import Answer, LocalTokenizerExtractor, prompt_config
from natfeed.extract.llm.calibration import (
    PriorKey,
    choose_label,
    content_free_request,
    describe_prior,
    log_softmax,
)
from natfeed.extract.llm.parse import parse_category
from natfeed.extract.llm.prompts import Request, paper_request

if TYPE_CHECKING:
    from natfeed.params import ExtractParams

log = logging.getLogger(__name__)


class TransformersExtractor(LocalTokenizerExtractor):
    backend = "transformers"
    calibrates = True

    def __init__(self, params: ExtractParams) -> None:
        super().__init__(params)
        self.tcfg = params.transformers
        self._model: Any = None
        self._priors: dict[PriorKey, list[float]] = {}  # content-free label priors (log, normalised)

    # -- loading (lazy: a resumed run whose shards are all done never loads the model) ----------------
    def prepare_tokenizer(self, tokenizer: Any) -> Any:
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    @property
    def model(self) -> Any:
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM

            device = resolve_device(self.tcfg.device)
            model = AutoModelForCausalLM.from_pretrained(self.params.llm.model,
                                                         dtype=resolve_dtype(self.tcfg.dtype, device))
            self._model = model.to(device).eval()
            torch.manual_seed(self.params.llm.seed)
            log.info("%s: loaded %s on %s", self.backend, self.params.llm.model, device)
        return self._model

    def answer_tokens(self, req: Request) -> int:
        llm = self.params.llm
        return llm.max_new_tokens if req.mode == "turn" else llm.paper_max_new_tokens

    def _pad(self, seqs: Sequence[list[int]]) -> tuple[Any, Any]:
        import torch

        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=self.model.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.model.device)
        return ids, mask

    # -- generation -----------------------------------------------------------------------------
    def generate(self, requests: list[Request]) -> list[Answer]:
        ids = [self.prompt_ids(r) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: len(ids[i]))  # similar lengths pad less
        answers: list[Answer | None] = [None] * len(requests)
        size = self.tcfg.batch_size
        for start in range(0, len(order), size):
            chunk = order[start:start + size]
            reqs = [requests[i] for i in chunk]
            seqs = [ids[i] for i in chunk]
            out = self._labels(reqs, seqs) if reqs[0].mode == "turn" else self._generate(seqs)
            for i, ans in zip(chunk, out, strict=True):
                answers[i] = ans
        return [a for a in answers if a is not None]

    def _labels(self, reqs: list[Request], seqs: list[list[int]]) -> list[Answer]:
        """Exact choice constraint: log P(label | prompt) for every allowed label; pick one. With
        ``extract.llm.calibration: content_free`` the scores are divided by the model's prior over the labels
        (its answer to the same prompt with the conversation replaced by N/A) before picking."""
        choices = list(reqs[0].choices or ())
        logprobs = label_logprobs(self.model, self.tokenizer, seqs, choices, self._pad)
        calibrated = self.params.llm.calibration == "content_free"
        out = []
        for req, row, seq in zip(reqs, logprobs, seqs, strict=True):
            pick = choose_label(row.tolist(), self._prior(req, choices) if calibrated else None,
                                self.params.llm.temperature, _multinomial)
            label = choices[pick.index]
            n_label = len(self.tokenizer(label, add_special_tokens=False)["input_ids"])
            out.append(Answer(label, pick.logprob, len(seq), n_label, raw_logprob=pick.raw_logprob))
        return out

    def _prior(self, req: Request, choices: list[str]) -> list[float]:
        """log P(label | content-free prompt), normalised over the choices; one forward pass per prompt shape."""
        key, free = content_free_request(req)
        if key not in self._priors:
            row = label_logprobs(self.model, self.tokenizer, [self.prompt_ids(free)], choices, self._pad)[0]
            self._priors[key] = log_softmax(row.tolist())
            log.info("%s: content-free label prior %s", self.backend, describe_prior(choices, self._priors[key]))
        return self._priors[key]

    def _generate(self, seqs: list[list[int]], sample: bool | None = None, temperature: float | None = None,
                  top_p: float = 1.0) -> list[Answer]:
        import torch

        llm = self.params.llm
        sample = llm.temperature > 0 if sample is None else sample
        kwargs: dict[str, Any] = {"max_new_tokens": llm.paper_max_new_tokens, "do_sample": sample,
                                  "pad_token_id": self.tokenizer.pad_token_id}
        if sample:
            kwargs.update(temperature=temperature or llm.temperature, top_p=top_p, top_k=0)
        if llm.ignore_eos:
            kwargs["min_new_tokens"] = llm.paper_max_new_tokens
        ids, mask = self._pad(seqs)
        with torch.inference_mode():
            gen = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        new = gen[:, ids.shape[1]:]
        out = []
        for row, seq in zip(new, seqs, strict=True):
            n = int((row != self.tokenizer.pad_token_id).sum()) if not llm.ignore_eos else len(row)
            text = self.tokenizer.decode(row, skip_special_tokens=True)
            out.append(Answer(text, None, len(seq), n))
        return out


def _multinomial(probs: list[float]) -> int:
    """One index drawn from ``probs`` with torch's generator (seeded with extract.llm.seed at load)."""
    import torch

    return int(torch.multinomial(torch.tensor(probs), 1))


def label_logprobs(model: Any, tokenizer: Any, seqs: list[list[int]], choices: list[str],
                   pad: Callable[[Sequence[list[int]]], tuple[Any, Any]]) -> Any:
    """``[len(seqs), len(choices)]`` tensor of log P(choice tokens | prompt), the prompt run once."""
    import torch

    labels = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
    ids, mask = pad(seqs)
    n, k = len(seqs), len(labels)
    with torch.inference_mode():
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # [n, V]
        scores = torch.stack([first[:, lab[0]] for lab in labels], dim=1)  # [n, k]
        width = max(len(lab) for lab in labels)
        if width == 1:
            return scores
        cache = out.past_key_values
        cache.batch_repeat_interleave(k)
        # feed label tokens 0..width-2 to score tokens 1..width-1 (rows: prompt i, label j at i*k + j)
        feed = torch.tensor([lab[:-1] + [lab[-1]] * (width - len(lab)) for lab in labels], device=ids.device)
        feed = feed[:, : width - 1].repeat(n, 1)
        lab_mask = torch.tensor([[1] * (len(lab) - 1) + [0] * (width - len(lab)) for lab in labels],
                                device=ids.device).repeat(n, 1)
        full_mask = torch.cat([mask.repeat_interleave(k, dim=0), lab_mask], dim=1)
        start = mask.sum(-1).repeat_interleave(k)[:, None]
        pos = start + torch.arange(width - 1, device=ids.device)[None, :]
        cont = model(input_ids=feed, attention_mask=full_mask, position_ids=pos, past_key_values=cache,
                     use_cache=False)
        logp = torch.log_softmax(cont.logits.float(), dim=-1)  # [n*k, width-1, V]
        target = torch.tensor([lab[1:] + [0] * (width - len(lab)) for lab in labels], device=ids.device)
        target = target.repeat(n, 1)
        tok_lp = logp.gather(-1, target[..., None])[..., 0] * lab_mask[:, : width - 1]
        return scores + tok_lp.sum(-1).view(n, k)


_JSON_OBJECT = re.compile(r"\{.*?\}", re.DOTALL)


class PaperLoopExtractor(TransformersExtractor):
    """The paper's loop: one conversation at a time, sampled ``generate``, regex JSON, verbatim spans."""

    backend = "paper_loop"

    def __init__(self, params: ExtractParams) -> None:
        super().__init__(params.model_copy(update={"mode": "paper"}))

    def requests(self, conversations: Sequence[Conversation]) -> list[Request]:
        cfg = prompt_config(self.params, self.count_tokens())
        return [paper_request(conv, cfg) for conv in conversations if any(True for _ in judged_turns(conv))]

    def generate(self, requests: list[Request]) -> list[Answer]:
        """One conversation at a time, sampled (the paper's loop)."""
        return [self._generate([self.prompt_ids(req)], sample=True, temperature=self.tcfg.paper_loop_temperature,
                               top_p=self.tcfg.paper_loop_top_p)[0] for req in requests]

    def extract(self, conversations: Sequence[Conversation]) -> list[Detection]:
        requests = self.requests(conversations)
        by_id = {c.conversation_id: c for c in conversations}
        out: list[Detection] = []
        for req, ans in zip(requests, self.answers(requests), strict=True):  # the judgement cache, the budget
            found = _JSON_OBJECT.findall(ans.text)
            objects = []
            for blob in found:
                try:
                    objects.append(json.loads(blob))
                except json.JSONDecodeError:
                    continue
            if not objects and "[]" not in ans.text:
                self._fail(req, ans.text, "no_json")
            out.extend(self._verbatim(list(judged_turns(by_id[req.conversation_id])), objects))
        return out

    def _verbatim(self, turns: list[Any], objects: list[Any]) -> list[Detection]:
        out: dict[int, Detection] = {}
        for obj in objects:
            if not isinstance(obj, dict):
                continue
            span = obj.get("text") or obj.get("span") or ""
            try:
                cat = parse_category(str(obj.get("pattern") or obj.get("category") or ""))
            except ValueError:
                cat = None
            hit = next((t for t in turns if span and span in t.user_text), None)
            if cat is None or hit is None:
                self.counters["unmatched_spans"] += bool(span) and hit is None
                continue
            out.setdefault(hit.user_turn, Detection(hit, cat, 1.0, f"paper_loop span: {span[:120]}"))
        return [out[k] for k in sorted(out)]
