"""The study (``make study``): the paper's claims — common, extractable, useful — measured on real ShareGPT."""
