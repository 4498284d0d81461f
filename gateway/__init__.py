"""The HTTP gateway for staff UIs: JSON under /api/v1/, bearer tokens with
roles, problem+json errors, and an OpenAPI document. It holds no data of its
own; every route is an RPC call to the service that owns the data."""
