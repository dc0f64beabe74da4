"""The sweep: `python -m mixlib report` executes every notebook of a profile on Dask and builds the book.

`runner.py` plans and submits the notebooks, `cluster.py` chooses where they run, `kernels.py` keeps a
warm kernel per worker, and `bench.py` (`python -m mixlib bench sweep`) times the sweep against the
serial runner. The sweep reads the chapter list of `mixlib.chapters` to know what to execute; no
chapter imports the sweep.
"""
