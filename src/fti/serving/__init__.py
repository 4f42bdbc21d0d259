"""The HTTP model server (``fti serve``): needs the ``serve`` extra (FastAPI, uvicorn).

>>> from fti.serving import create_app                                        # doctest: +SKIP
>>> app = create_app(fti.connect(), "delays@production")                      # doctest: +SKIP
"""

from fti.serving.app import create_app

__all__ = ["create_app"]
