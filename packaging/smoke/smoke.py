"""The Python smoke test of an installed wheel: python smoke.py VERSION

Derives a context with a deadline and a cause, cancels a child of it with
another cause, and observes both errors and both causes; an asyncio task
working under the deadline is stopped by it. The version the package
reports, and the one its C ABI reports, must be VERSION.
"""

import asyncio
import sys

import polyctx

expected = sys.argv[1]
assert polyctx.__version__ == expected, f"polyctx.__version__ is {polyctx.__version__}, not {expected}"
c_version = polyctx.c_library().ctx_version().decode()
assert c_version == expected, f"ctx_version() is {c_version!r}, not {expected}"

budget = TimeoutError("budget spent")
with polyctx.with_timeout(polyctx.background(), 0.2, cause=budget) as (request, _):
    call, cancel_call = polyctx.with_cancel_cause(request)
    cancel_call(ConnectionResetError("client went away"))
    assert isinstance(call.err(), polyctx.Canceled), call.err()
    assert isinstance(polyctx.cause(call), ConnectionResetError)
    assert request.err() is None, "cancelling a child never cancels its parent"

    async def work():
        async with polyctx.scope(request):
            await asyncio.sleep(60)

    try:
        asyncio.run(work())
        raise AssertionError("the deadline did not stop the task")
    except polyctx.DeadlineExceeded as e:
        assert e.__cause__ is budget
    assert isinstance(request.err(), polyctx.DeadlineExceeded)
    assert polyctx.cause(request) is budget

print(f"python {sys.version_info.major}.{sys.version_info.minor}: polyctx {polyctx.__version__}: ok")
