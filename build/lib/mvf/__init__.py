"""mvf: multi-dimensional features in language models, as an executable book."""
