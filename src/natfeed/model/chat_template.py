"""natfeed's chat template: given to a base model that has none (``load_tokenizer``) and to the from-scratch
test model (tests/support/scratch.py).

Every turn is ``<|role|>\n{content}<|end|>``. The assistant's text *and* its end token sit inside
``{% generation %}`` so that TRL's assistant-only loss trains the model to stop. The prompt rendered with
``add_generation_prompt`` is a prefix of the prompt+completion rendering, which TRL's tokenisation needs.
"""

BOS, EOS, PAD = "<|bos|>", "<|end|>", "<|pad|>"
ROLE_TOKENS = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}
SPECIAL_TOKENS = [PAD, BOS, EOS, *ROLE_TOKENS.values()]

CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}"
    "{{- raise_exception('unsupported role: ' + message['role']) -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- '<|assistant|>\n' -}}"
    "{%- generation -%}{{- message['content'] + eos_token -}}{%- endgeneration -%}"
    "{%- else -%}"
    "{{- '<|' + message['role'] + '|>\n' + message['content'] + eos_token -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>\n' -}}{%- endif -%}"
)
