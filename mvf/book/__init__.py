"""The book's machinery, apart from the paper's methods: executing and comparing the chapters, their named numbers,
the stored sweeps and stand-in models they fall back on, and the Colab setup."""
