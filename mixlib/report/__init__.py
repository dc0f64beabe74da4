"""Report-book helpers: code that renders generated pages of the Jupyter Book."""
