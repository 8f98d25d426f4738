"""The studio: a local web page and JSON API to explore trained generators, static run reports, and
TensorBoard logging.

Parts:
- :mod:`.runs`: finding run folders under a root, loading their generators, model cards (no web framework);
- :mod:`.render`: sample grids, latent interpolation strips and GIFs as PNG/GIF bytes (no web framework);
- :mod:`.evals`: every evaluation of a run (``metrics.jsonl``, ``gankit eval --json`` reports) as rows and charts;
- :mod:`.params`: strict validation of request parameters (types, bounds, unknown names);
- :mod:`.app`: the ASGI app (Starlette, optional extra ``[serve]``) and ``page.html``;
- :mod:`.server`: the uvicorn settings ``gankit serve`` runs with (a deadline on request headers; loopback test);
- :mod:`.report`: ``gankit report`` — one self-contained HTML file per run;
- :mod:`.tensorboard`: a training callback writing TensorBoard event files (optional extra ``[tensorboard]``).

Importing this package imports no optional dependency.
"""
