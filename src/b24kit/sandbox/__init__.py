"""A local Bitrix24 portal that speaks the REST protocol, backed by SQLite.

from b24kit.sandbox import Sandbox
sandbox = Sandbox(limits="off")          # in memory
sandbox.call("crm.deal.add", {"fields": {"TITLE": "Трактор"}})
transport = sandbox.transport()           # httpx transport, no socket
"""

from b24kit.sandbox.app import DEFAULT_DB, Response, Sandbox, SandboxConfig, open_sandbox
from b24kit.sandbox.faults import Faults, FaultSpecError

__all__ = [
    "DEFAULT_DB",
    "Faults",
    "FaultSpecError",
    "Response",
    "Sandbox",
    "SandboxConfig",
    "open_sandbox",
]
