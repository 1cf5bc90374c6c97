"""Directory put first on ``PYTHONPATH`` of local pods: its ``sitecustomize`` gives Python servers the pod's address."""
