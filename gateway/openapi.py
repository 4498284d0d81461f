"""The OpenAPI 3.1 document, built from the routes the gateway declares."""
from __future__ import annotations

import re

from gateway.http import FHIR_JSON, ROUTES, RouteSpec

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "code": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "message": {"type": "string"}}}},
        "details": {},
    },
}

# FHIR routes answer a FHIR R4 resource (a Bundle or an Invoice), validated
# against the fhir.resources models in the tests; described by its type here.
FHIR_RESOURCE = {"type": "object", "required": ["resourceType"],
                 "properties": {"resourceType": {"type": "string"}, "id": {"type": "string"}},
                 "description": "A FHIR R4 resource (http://hl7.org/fhir/R4/)"}

# A text answer (the live-update stream's server-sent events).
TEXT = {"type": "string"}

ERROR_RESPONSES = {
    "400": "Malformed request", "401": "Missing or invalid bearer token",
    "403": "The caller's role may not do this", "404": "No such record",
    "409": "The record's state does not allow this", "422": "Invalid input; errors name each field",
    "503": "The owning service, its database or the message broker is unavailable; nothing was done "
           "unless the detail says it may have been. Try again after Retry-After seconds",
}
ETAG_HEADER = {"description": "The record's version: send it back as If-Match with a change",
               "schema": {"type": "string"}}
RETRY_AFTER_HEADER = {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}}


def _operation(spec: RouteSpec, components: dict) -> dict:
    operation = {
        "operationId": spec.operation_id,
        "summary": spec.summary,
        "tags": [spec.tag],
        "security": [{"bearer": []}],
        "description": "Roles: " + ", ".join(spec.roles) + " (and admin)." + (
            "\n\n" + spec.description if spec.description else ""),
        "responses": {str(spec.status): {"description": "Success", "content": {
            spec.media_type: {"schema": _answer_schema(spec, components)}}}},
    }
    if spec.html:
        operation["responses"][str(spec.status)]["content"]["text/html"] = {"schema": {"type": "string"}}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", spec.path)
    ]
    if spec.paginated:
        parameters += [
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
            {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
        ]
    if spec.idempotent:
        parameters.append({
            "name": "Idempotency-Key", "in": "header", "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
            "description": "Send a unique key (visible ASCII); a retry with the same key and the same body returns "
                           "the first answer and changes nothing; the same key with a different body is refused "
                           "with 422."})
    if spec.conditional and spec.method != "GET":
        parameters.append({
            "name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
            "description": "The ETag of the record as you read it: the change is made only if nobody changed the "
                         "record meanwhile, else 412. Without it the change is made whatever happened meanwhile."})
    for name, kind, description in spec.query:
        parameters.append({"name": name, "in": "query", "description": description, "schema": {"type": kind}})
    if parameters:
        operation["parameters"] = parameters
    if spec.body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _component(spec.body, components, mode="validation")}}}
    for status, description in ERROR_RESPONSES.items():
        operation["responses"][status] = {
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    operation["responses"]["503"]["headers"] = {"Retry-After": RETRY_AFTER_HEADER}
    if spec.conditional and spec.method == "GET":
        operation["responses"][str(spec.status)]["headers"] = {"ETag": ETAG_HEADER}
    elif spec.conditional:
        operation["responses"]["412"] = {
            "description": "If-Match names a version of the record that is no longer current; nothing was changed",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    return operation


def _answer_schema(spec: RouteSpec, components: dict) -> dict:
    if isinstance(spec.answer, dict):
        return spec.answer
    if spec.answer is not None:
        return _component(spec.answer, components)
    return FHIR_RESOURCE if spec.media_type == FHIR_JSON else TEXT if spec.media_type.startswith("text/") else {}


def _component(model, components: dict, mode: str = "serialization") -> dict:
    """A ``$ref`` to the model's named component, adding it (and the models
    it uses) to the document's components."""
    name = model.__name__
    if name not in components:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
        for nested, definition in schema.pop("$defs", {}).items():
            components.setdefault(nested, definition)
        components[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def document() -> dict:
    paths: dict[str, dict] = {}
    components: dict[str, dict] = {"Problem": PROBLEM_SCHEMA}
    for spec in ROUTES:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Ketamine clinic operations API", "version": "1.0.0",
                 "description": "Staff API of the clinic back office. Errors are application/problem+json."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An access token from the clinic's OpenID Connect identity provider "
                               "(static development tokens only where configured)"}},
        },
    }
