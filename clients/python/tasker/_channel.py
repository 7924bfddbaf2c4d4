"""Channel construction and the bearer-token metadata shared by client and worker."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import grpc

Metadata = List[Tuple[str, str]]

#: Worker and client receive JSON documents that can exceed gRPC's 4 MiB default.
DEFAULT_OPTIONS: Tuple[Tuple[str, Any], ...] = (("grpc.max_receive_message_length", -1),)


def make_channel(
    address: str,
    credentials: Optional[grpc.ChannelCredentials] = None,
    options: Optional[Sequence[Tuple[str, Any]]] = None,
) -> grpc.Channel:
    """Opens a channel to ``host:port``: TLS when ``credentials`` are given, plaintext otherwise."""
    merged = dict(DEFAULT_OPTIONS)
    merged.update(dict(options or ()))
    opts = list(merged.items())
    if credentials is not None:
        return grpc.secure_channel(address, credentials, options=opts)
    return grpc.insecure_channel(address, options=opts)


def auth_metadata(token: Optional[str]) -> Metadata:
    """``authorization: Bearer <token>`` metadata, or none when there is no token."""
    return [("authorization", f"Bearer {token}")] if token else []
