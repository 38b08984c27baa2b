"""What keeps the proxy closed where mitmproxy would stay open. Runs only in the bundle.

* :class:`Refused`, the layer put in place of mitmproxy's raw TCP/UDP layers: it closes the client
  connection and never opens one to the server. mitmproxy 12 picks its raw layer for any tunnel whose
  first bytes do not look like HTTP or TLS (a first segment under 3 bytes is enough), and that layer
  connects and relays even after the ``tcp_start`` hook killed the flow, so a refusal has to replace
  the layer itself (decision 0010).
  :func:`install_layer_guard` puts the check into mitmproxy's own layer choice (an addon's
  ``next_layer`` hook runs before the built-in one and cannot see its choice), and makes it wait for
  a TLS record header that arrives a byte at a time instead of guessing "not TLS".
* :func:`fail_closed`: a hook that raises must refuse what it was judging. mitmproxy logs an addon's
  exception and carries on, which for a request means forwarding it unscanned.
* :func:`install_body_cap`: a request body is read into memory before it is scanned; past a cap (and,
  for a request already refused at its headers, past a small allowance) the request is answered
  ``413`` and the rest of its body is never read. mitmproxy's own ``body_size_limit`` would also cut
  responses, so the cap wraps the one method that sees each chunk of a request body arrive.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from mitmproxy import flow as mflow
from mitmproxy import http
from mitmproxy.addons import next_layer as next_layer_addon
from mitmproxy.proxy import commands, layer
from mitmproxy.proxy.layers import http as http_layers
from mitmproxy.proxy.layers import tcp as tcp_layers
from mitmproxy.proxy.layers import udp as udp_layers

__all__ = ["Refused", "fail_closed", "install_body_cap", "install_layer_guard", "is_raw_layer",
           "may_become_http", "may_become_tls", "probably_not_http"]

log = logging.getLogger("claude_bottle.egress")

F = TypeVar("F", bound=Callable[..., Any])


class Refused(layer.Layer):
    """A layer that closes the client's connection and drops every byte it was sent. No server
    connection is ever opened from here."""

    closed = False

    def _handle_event(self, event: Any) -> Generator[Any, Any, None]:
        if not self.closed:
            self.closed = True
            yield commands.CloseConnection(self.context.client)


def install_layer_guard(on_refused: Callable[[Any], None]) -> None:
    """Wrap mitmproxy's layer choice: a raw TCP/UDP layer is replaced by :class:`Refused` (after
    ``on_refused(context)`` logs it), and fewer bytes than a TLS record header that could still be
    one defer the choice (mitmproxy's own ``NeedsMoreData``). The last call's callback is used."""
    cls: Any = next_layer_addon.NextLayer
    cls._claude_bottle_on_refused = on_refused
    if getattr(cls, "_claude_bottle_guarded", False):
        return
    original = cls._next_layer

    def _next_layer(self: Any, context: Any, data_client: bytes, data_server: bytes) -> Any:
        if not data_server and (may_become_tls(data_client) or may_become_http(data_client)):
            raise next_layer_addon.NeedsMoreData
        chosen = original(self, context, data_client, data_server)
        # With rawtcp off mitmproxy falls back to HTTP for what it judged not HTTP; that would end in
        # a parse error with no audit line, so it is refused here, in words.
        guessed_http = (isinstance(chosen, http_layers.HttpLayer)
                        and chosen.mode is http_layers.HTTPMode.transparent
                        and probably_not_http(data_client, data_server))
        if is_raw_layer(chosen) or guessed_http:
            # A layer enters its context's stack when it is made: take it (and any children) out.
            stack = context.layers
            if chosen in stack:
                del stack[stack.index(chosen):]
            cls._claude_bottle_on_refused(context)
            return Refused(context)
        return chosen

    cls._next_layer = _next_layer
    cls._claude_bottle_guarded = True


def is_raw_layer(candidate: object) -> bool:
    """A layer that would relay bytes nobody judged."""
    return isinstance(candidate, tcp_layers.TCPLayer | udp_layers.UDPLayer)


_TLS_RECORD_START = b"\x16\x03"


def may_become_http(data: bytes) -> bool:
    """Letters only so far, fewer than any request line needs before its first space: could still be
    an HTTP method arriving a few bytes at a time (``PO`` then ``ST /``), so wait."""
    return 0 < len(data) < 24 and data.isalpha()


def probably_not_http(data: bytes, data_server: bytes) -> bool:
    """mitmproxy's own test for "this tunnel does not carry HTTP" (its raw TCP fallback), kept here
    because with ``rawtcp`` off it would guess HTTP instead."""
    return (len(data) < 3 or b" " not in data or data.find(b" ") > data.find(b"\n") > -1
            or not data[:3].isalpha() or bool(data_server) or data.startswith(b"SSH"))


def may_become_tls(data: bytes) -> bool:
    """Fewer bytes than a TLS record header, all of them a TLS record header's: wait for more before
    choosing a layer (a client may send its ClientHello one byte at a time)."""
    return 0 < len(data) < 3 and _TLS_RECORD_START.startswith(data)


def fail_closed(on_error: Callable[..., None]) -> Callable[[F], F]:
    """Wrap an addon's hook method so any exception calls ``on_error(self, exc, *hook_args)``, which
    refuses what the hook was judging (a 403, a dropped message, a server error) and writes the audit
    line. Works for plain and ``async`` hooks (mitmproxy tells them apart by
    :func:`inspect.iscoroutinefunction`, which sees through this wrapper). If ``on_error`` itself
    fails, the exception propagates: mitmproxy then drops the connection rather than forwarding."""

    def wrap(hook: F) -> F:
        if inspect.iscoroutinefunction(hook):
            @functools.wraps(hook)
            async def run_async(*args: Any) -> Any:
                try:
                    return await hook(*args)
                except Exception as exc:
                    log.exception("egress check failed; refusing")
                    on_error(args[0], exc, *args[1:])
                    return None
            return run_async  # type: ignore[return-value]

        @functools.wraps(hook)
        def run(*args: Any) -> Any:
            try:
                return hook(*args)
            except Exception as exc:
                log.exception("egress check failed; refusing")
                on_error(args[0], exc, *args[1:])
                return None
        return run  # type: ignore[return-value]

    return wrap


def install_body_cap(limit: Callable[[http.HTTPFlow], int],
                     refuse: Callable[[http.HTTPFlow, int], str],
                     keep_whole: Callable[[http.HTTPFlow], bool] = lambda flow: False) -> None:
    """Own mitmproxy's body-size decisions (``HttpStream.check_body_size``):

    * a request body is checked against ``limit(flow)`` as each chunk arrives (and against a declared
      ``Content-Length`` before the first); past it, ``refuse(flow, size)`` returns the message of a
      ``413`` that ends the stream, and the rest is never read or buffered. A request body is never
      streamed: it is scanned whole before anything of it leaves;
    * a response body streams to the agent past ``stream_large_bodies`` (bounded memory for big
      downloads), except where ``keep_whole(flow)`` (a response to a request the proxy put a credential
      in: it is checked for the value before the agent sees it).

    The last call's callbacks are the ones used (one addon per proxy process)."""
    stream_cls: Any = http_layers.HttpStream
    stream_cls._claude_bottle_cap = (limit, refuse, keep_whole)
    if getattr(stream_cls, "_claude_bottle_capped", False):
        return
    original = stream_cls.check_body_size

    def check_body_size(self: Any, request: bool) -> Generator[Any, Any, bool]:
        cap_for, refuse_with, whole = stream_cls._claude_bottle_cap
        if self.flow is None or self.flow.request is None:
            return (yield from original(self, request))
        if not request:
            if whole(self.flow):
                return False  # buffered in full, never streamed, so the response checks see it all
            return (yield from original(self, request))
        size = len(self.request_body_buf)
        if not size:
            declared = self.flow.request.headers.get("content-length", "")
            size = int(declared) if declared.isascii() and declared.isdigit() else 0
        if size > cap_for(self.flow):
            message = refuse_with(self.flow, size)
            self.flow.error = mflow.Error(message)
            self.request_body_buf.clear()
            yield http_layers.SendHttp(
                http_layers.ResponseProtocolError(self.stream_id, message,
                                                  http_layers.ErrorCode.REQUEST_TOO_LARGE),
                self.context.client)
            self.flow.live = False
            self.client_state = self.state_errored
            return True
        return False  # never mitmproxy's streaming of a request: it would leave unscanned

    stream_cls.check_body_size = check_body_size
    stream_cls._claude_bottle_capped = True
