"""The commands that regenerate what the package ships, each run as ``python -m mvf.commands.<name>``.

``sweep_interventions`` (the stored intervention sweeps), ``discovery_seeds``
(the clusterings under several seeds), ``train_sae`` (the embedded model's
SAE), ``build_corpus`` (the offline corpus) and ``train_control`` (the trained
control). They run from the installed package, on Colab as in a clone.
"""
