"""Every engine (tests/engines/conftest.py: local, colossalai torch_ddp, colossalai hybrid)
passes the engine contract in one process."""

from __future__ import annotations

from contract import EngineContract


class TestEngineContract(EngineContract):
    pass
