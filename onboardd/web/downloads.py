"""Streaming a built export file to the caller (the API's and the admin UI's Excel export)."""

from __future__ import annotations

import contextlib

from aiohttp import web

from onboardd.logging import get_logger
from onboardd.services import analytics_export as export_service

_log = get_logger("downloads")


async def stream_workbook(request: web.Request, out: export_service.ExportFile,
                          headers: dict[str, str] | None = None) -> web.StreamResponse:
    """Send the workbook as an attachment under its own file name, in chunks; a caller who
    goes away mid-download is logged, not an error. `headers` are sent with it (the admin
    UI's security headers: the guard cannot add them once the response has started)."""
    response = web.StreamResponse(headers={
        **(headers or {}),
        "Content-Type": export_service.XLSX_CONTENT_TYPE,
        "Content-Disposition": f'attachment; filename="{out.filename}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    })
    response.content_length = out.size
    await response.prepare(request)
    try:
        async with contextlib.aclosing(export_service.chunks(out)) as chunks:
            async for chunk in chunks:
                await response.write(chunk)
        await response.write_eof()
    except ConnectionError:
        _log.info("export_aborted", path=request.path, reason="client disconnected")
    return response
