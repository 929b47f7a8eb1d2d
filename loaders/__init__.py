"""Loaders: turn ERP/WMS/EDI/file data into engine deltas (via Redis Streams or bulk)."""
