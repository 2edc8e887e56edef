"""The Comfy API v2 (OpenAPI spec 2.0.0): Comfy Cloud, Comfy deployments and comfy-api-proxy.

Where a fact comes from is marked in comments: [spec] the public OpenAPI spec 2.0.0 (its
operationId or schema), [proxy] what comfy-api-proxy 0.1.6 does, [inferred] our own reading.
Each fact, with its exact source, is a line of docs/WIRE.md §5 ([inferred] is its [guess]).
"""
