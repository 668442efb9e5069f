"""The adopting team's own bridge: a sync handler, an async one and a generator."""

import sys

from mlbridge_worker import BaseBridge, handler


class MyBridge(BaseBridge):
    framework_name = "mine"

    def _initialize_framework(self) -> None:
        pass

    @handler
    def add(self, a: int, b: int) -> int:
        return a + b

    @handler
    async def shout(self, text: str) -> str:
        return text.upper()

    @handler
    def count(self, n: int):
        yield from range(n)

    @handler
    def where(self) -> dict:
        import mlbridge_worker

        # numpy must stay unimported: the runtime's core needs msgpack only.
        return {"runtime": mlbridge_worker.__file__, "numpy": "numpy" in sys.modules}
