"""No library progress widgets: what a chapter shows must not depend on what is already cached.

In a notebook, transformers' and huggingface_hub's progress bars are
ipywidgets. They appear only when there is work to do (the first load converts
the embedded GGUF; a pretrained SAE downloads), so a chapter executed on an
empty cache would show widgets that a warm one does not, and a widget without
a kernel renders as nothing in the book. mvf's own loops print text bars.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from tqdm.std import tqdm as text_tqdm


@contextmanager
def library_bars_off() -> Iterator[None]:
    """Switch off transformers' and huggingface_hub's progress bars inside the block, then restore them."""
    import huggingface_hub.utils as hub
    from transformers import modeling_gguf_pytorch_utils as gguf_conversion
    from transformers.utils import logging

    transformers_shown = logging.is_progress_bar_enabled()
    hub_shown = not hub.are_progress_bars_disabled()
    # The GGUF conversion calls tqdm.auto directly, past transformers' switch.
    conversion_bar = gguf_conversion.tqdm
    logging.disable_progress_bar()
    hub.disable_progress_bars()
    gguf_conversion.tqdm = partial(text_tqdm, disable=True)
    try:
        yield
    finally:
        gguf_conversion.tqdm = conversion_bar
        if transformers_shown:
            logging.enable_progress_bar()
        if hub_shown:
            hub.enable_progress_bars()
