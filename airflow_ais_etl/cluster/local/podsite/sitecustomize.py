"""Inside a local pod, binding ``0.0.0.0`` binds the pod's own address, as in a pod's network namespace.

Python runs this at start-up because the local backend puts this directory first on ``PYTHONPATH``
and sets ``AIS_ETL_LOCAL_POD_IP``. AIS's Python transformer servers bind ``0.0.0.0`` in their code
(``HTTPMultiThreadedServer(host="0.0.0.0")``, ``uvicorn.run(host="0.0.0.0")``); on one machine
the first pod would take every other pod's port. IPv4 binds to ``0.0.0.0``/``""`` become binds to
the pod's loopback address; anything else is untouched. A ``sitecustomize`` further down the path
(a distribution's own) still runs afterwards. Standard library only.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import socket
import sys


def _patch_bind(ip: str) -> None:
    original = socket.socket.bind

    def bind(self: socket.socket, address: object) -> None:
        if (
            self.family == socket.AF_INET
            and isinstance(address, tuple)
            and address[:1] in (("0.0.0.0",), ("",))
        ):
            address = (ip, *address[1:])
        original(self, address)  # type: ignore[arg-type]

    socket.socket.bind = bind  # type: ignore[method-assign,assignment]


def _chain() -> None:
    """Run the next ``sitecustomize`` on the path, which this module shadows."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    ours = sys.modules.get("sitecustomize")
    sys.modules["sitecustomize"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        if ours is not None:
            sys.modules["sitecustomize"] = ours


_ip = os.environ.get("AIS_ETL_LOCAL_POD_IP", "")
if _ip:
    _patch_bind(_ip)
_chain()
