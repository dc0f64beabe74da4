"""Report-book helpers: code that renders generated pages of the Jupyter Book."""

import warnings

# Every template imports this package before anything that imports timm. The kernels have no
# ipywidgets, so timm's import of `tqdm.auto` warns that IProgress is missing: a notice that said
# nothing about the run and showed on every page of the static book.
warnings.filterwarnings("ignore", message="IProgress not found")
