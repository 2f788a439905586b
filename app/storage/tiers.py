"""Two backends as one: new files go to the primary, reads fall back to the other.

This is what lets `convect storage migrate` move files while the deployment serves them:
a file is in the old backend, then in both, then in the new one, and at every step a
read finds it. Deletes remove a file from both.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from app.db.transaction import Tx
from app.storage.backend import AfterCommit, BlobBackend, BlobMissing


class TieredBlobs(BlobBackend):
    """Writes to `primary`; reads from `primary`, else from `secondary`."""

    def __init__(self, primary: BlobBackend, secondary: BlobBackend) -> None:
        self.primary = primary
        self.secondary = secondary
        self.chunk_size = primary.chunk_size

    async def open(self) -> None:
        """Open both backends."""
        await self.primary.open()
        try:
            await self.secondary.open()
        except BaseException:
            await self.primary.close()
            raise

    async def close(self) -> None:
        """Close both backends."""
        try:
            await self.secondary.close()
        finally:
            await self.primary.close()

    async def put(self, storage_id: str, chunks: AsyncIterable[bytes]) -> None:
        """Store into the primary."""
        await self.primary.put(storage_id, chunks)

    async def read(self, storage_id: str, start: int, stop: int) -> AsyncIterator[bytes]:
        """From the primary; from the secondary when the primary does not have the file,
        even part way through (a migration moved it meanwhile: the read goes on from the
        same byte in the other backend)."""
        position = start
        order = (self.primary, self.secondary, self.primary)  # moved, then moved back
        for i, backend in enumerate(order):
            try:
                async for piece in backend.read(storage_id, position, stop):
                    position += len(piece)
                    yield piece
                return
            except BlobMissing:
                if i + 1 == len(order):
                    raise

    async def delete(self, tx: Tx, storage_id: str) -> AfterCommit | None:
        """Delete from both (each inside `tx` or after the commit)."""
        hooks = [
            hook
            for hook in (
                await self.primary.delete(tx, storage_id),
                await self.secondary.delete(tx, storage_id),
            )
            if hook is not None
        ]
        if not hooks:
            return None

        async def both() -> None:
            for hook in hooks:
                await hook()

        return both

    async def discard(self, storage_id: str) -> None:
        """Discard from the primary (where stores go)."""
        await self.primary.discard(storage_id)

    async def sweep(self, older_than_s: float) -> int:
        """Sweep both."""
        return await self.primary.sweep(older_than_s) + await self.secondary.sweep(older_than_s)
