"""``dataset_card``: what the card of the extracted dataset says about its name, licence and sources."""

from __future__ import annotations

from pydantic import Field

from natfeed.params.base import Section

SAMPLE_SOURCES = """Conversations of the embedded sample: WildChat-1M (Zhao et al., 2024; ODC-BY 1.0; cite arXiv:2405.01470)
and OpenAssistant oasst1 (Köpf et al., 2023; Apache-2.0; cite arXiv:2304.07327), development rows only, plus a few
synthetic rows written for natfeed (`source: synthetic`); see `data/raw/NOTICE.md`. Users' messages may contain
offensive or personal content. The extracted labels are natfeed's output, released under Apache-2.0."""


SAMPLE_CITATIONS = """@inproceedings{zhao2024wildchat,
  title     = {WildChat: 1M ChatGPT Interaction Logs in the Wild},
  author    = {Zhao, Wenting and Ren, Xiang and Hessel, Jack and Cardie, Claire and Choi, Yejin and Deng, Yuntian},
  booktitle = {The Twelfth International Conference on Learning Representations},
  year      = {2024},
  note      = {arXiv:2405.01470}
}
@inproceedings{kopf2023openassistant,
  title     = {OpenAssistant Conversations -- Democratizing Large Language Model Alignment},
  author    = {K{\\"o}pf, Andreas and others},
  booktitle = {Advances in Neural Information Processing Systems 36, Datasets and Benchmarks Track},
  year      = {2023},
  note      = {arXiv:2304.07327}
}"""


class DatasetCardParams(Section):
    """The dataset card (``data/processed/README.md``): set these for your own logs."""

    pretty_name: str = Field("natfeed naturally occurring feedback", description="Title of the card")
    license: str = Field("other", description="Hub licence id (odc-by, apache-2.0, ...; other: name it below)")
    license_name: str = Field("odc-by-1.0-and-apache-2.0", description="With license: other")
    license_link: str = Field("https://opendatacommons.org/licenses/by/1-0/", description="With license: other")
    sources: str = Field(SAMPLE_SOURCES, description="Where the conversations come from, their licences, citations")
    source_citations: str = Field(SAMPLE_CITATIONS, description="BibTeX of the conversations' sources "
                                  "(printed after the paper's); empty for none")
