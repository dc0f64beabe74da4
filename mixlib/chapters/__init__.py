"""The book's chapters: one module per chapter (`<name>.py` for `notebooks/<name>.ipynb`,
`configuration.py` for each configuration's chapter of `notebooks/train.ipynb`), the chapter list
(`contents.py`), and what several chapters share: the statistics, the score labels, the per-image
scores, the comparison figures, the glossary, the template parameters and the browser check of the
built book.

No chapter module imports another; what two of them need sits in a module of its own here. Nothing
here imports the sweep (`mixlib.sweep`), which runs these chapters.
"""

import warnings

# Every template imports this package before anything that imports timm. The kernels have no
# ipywidgets, so timm's import of `tqdm.auto` warns that IProgress is missing: a notice that said
# nothing about the run and showed on every page of the static book.
warnings.filterwarnings("ignore", message="IProgress not found")
