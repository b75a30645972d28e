"""The service front: the original LiteLLM Observatory's HTTP API, where every accepted run is an
ordinary ``python -m pytest`` run of a suite in a subprocess.

The plugin never imports this package; FastAPI and uvicorn come with the ``[server]`` extra and
are imported only by ``app.py`` and ``cli.py``'s ``serve``.
"""
