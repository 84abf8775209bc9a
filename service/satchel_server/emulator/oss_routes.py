"""Which operation a request names: one table, keyed by (scope, method, sub-resource).

OSS selects an operation by the method and by at most one *selecting* sub-resource among
the query parameters it signs (`SUB_RESOURCES`, the signing core's list): `PUT /key?acl` is
PutObjectAcl, never PutObject. A route also lists the further sub-resources its operation
reads (`honours`); `security-token` is read by authentication on every route. Anything else
in that list is refused as OSS refuses what it does not offer: 501 NotImplemented, so an
app never sees a sub-resource call quietly treated as a plain put, get or delete.

Each route names the RAM action checked against the caller's policies on the route's own
target (the object, or the bucket); operations that touch a second object (a copy's source)
or add actions for some headers (`x-oss-tagging`) check those too, in their handlers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from satchel_server.emulator.errors import OssError
from satchel_server.emulator.oss_addressing import Target
from satchel_server.emulator.oss_bucket import get_bucket_cors, get_bucket_location
from satchel_server.emulator.oss_call import Handler
from satchel_server.emulator.oss_listing import list_objects
from satchel_server.emulator.oss_multipart import (
    abort_upload,
    complete_upload,
    initiate_upload,
    list_parts,
    list_uploads,
    upload_part,
    upload_part_copy,
)
from satchel_server.emulator.oss_objects import (
    RESPONSE_OVERRIDES,
    copy_object,
    delete_multiple,
    delete_object,
    get_object,
    get_object_meta,
    head_object,
    post_object,
    put_object,
)
from satchel_server.emulator.oss_subresources import (
    delete_object_tagging,
    get_object_acl,
    get_object_tagging,
    get_symlink,
    put_object_acl,
    put_object_tagging,
    put_symlink,
    restore_object,
)
from satchel_server.signing.oss_v1 import SUB_RESOURCES

Scope = Literal["bucket", "object"]
COPY_SOURCE_HEADER = "x-oss-copy-source"
# Read by authentication, whatever the operation.
_AUTH_PARAMS = frozenset({"security-token"})


@dataclass(frozen=True)
class Route:
    operation: str  # OSS's name for it
    action: str  # the RAM action on the route's target
    handler: Handler
    honours: frozenset[str] = frozenset()
    # The operation when `x-oss-copy-source` is present (it reads the source with
    # oss:GetObject besides `action` on the target); None: the header is refused.
    copy: tuple[str, Handler] | None = None


RouteKey = tuple[Scope, str, str | None]

ROUTES: Mapping[RouteKey, Route] = {
    ("object", "PUT", None): Route(
        "PutObject", "oss:PutObject", put_object, copy=("CopyObject", copy_object)
    ),
    ("object", "GET", None): Route(
        "GetObject", "oss:GetObject", get_object, honours=frozenset(RESPONSE_OVERRIDES)
    ),
    ("object", "HEAD", None): Route("HeadObject", "oss:GetObject", head_object),
    ("object", "DELETE", None): Route("DeleteObject", "oss:DeleteObject", delete_object),
    ("object", "HEAD", "objectMeta"): Route("GetObjectMeta", "oss:GetObject", get_object_meta),
    ("object", "PUT", "acl"): Route("PutObjectACL", "oss:PutObjectAcl", put_object_acl),
    ("object", "GET", "acl"): Route("GetObjectACL", "oss:GetObjectAcl", get_object_acl),
    ("object", "PUT", "tagging"): Route(
        "PutObjectTagging", "oss:PutObjectTagging", put_object_tagging
    ),
    ("object", "GET", "tagging"): Route(
        "GetObjectTagging", "oss:GetObjectTagging", get_object_tagging
    ),
    ("object", "DELETE", "tagging"): Route(
        "DeleteObjectTagging", "oss:DeleteObjectTagging", delete_object_tagging
    ),
    ("object", "PUT", "symlink"): Route("PutSymlink", "oss:PutObject", put_symlink),
    ("object", "GET", "symlink"): Route("GetSymlink", "oss:GetObject", get_symlink),
    ("object", "POST", "restore"): Route("RestoreObject", "oss:RestoreObject", restore_object),
    ("object", "POST", "uploads"): Route(
        "InitiateMultipartUpload", "oss:PutObject", initiate_upload
    ),
    ("object", "PUT", "uploadId"): Route(
        "UploadPart",
        "oss:PutObject",
        upload_part,
        honours=frozenset({"partNumber"}),
        copy=("UploadPartCopy", upload_part_copy),
    ),
    ("object", "GET", "uploadId"): Route("ListParts", "oss:ListParts", list_parts),
    ("object", "POST", "uploadId"): Route(
        "CompleteMultipartUpload", "oss:PutObject", complete_upload
    ),
    ("object", "DELETE", "uploadId"): Route(
        "AbortMultipartUpload", "oss:AbortMultipartUpload", abort_upload
    ),
    ("bucket", "GET", None): Route(
        "ListObjects", "oss:ListObjects", list_objects, honours=frozenset({"continuation-token"})
    ),
    ("bucket", "GET", "uploads"): Route(
        "ListMultipartUploads", "oss:ListMultipartUploads", list_uploads
    ),
    ("bucket", "POST", "delete"): Route(
        "DeleteMultipleObjects", "oss:DeleteObject", delete_multiple
    ),
    ("bucket", "GET", "location"): Route(
        "GetBucketLocation", "oss:GetBucketLocation", get_bucket_location
    ),
    ("bucket", "GET", "cors"): Route("GetBucketCors", "oss:GetBucketCors", get_bucket_cors),
    # A browser form upload: the form, not the URL, names the key (and is signed itself).
    ("bucket", "POST", None): Route("PostObject", "oss:PutObject", post_object),
}

SELECTORS = frozenset(selector for _, _, selector in ROUTES if selector is not None)
HONOURED = frozenset().union(*(route.honours for route in ROUTES.values())) | _AUTH_PARAMS
# Every signed sub-resource the emulator does not offer at all.
REFUSED = SUB_RESOURCES - SELECTORS - HONOURED


@dataclass(frozen=True)
class Resolved:
    operation: str
    action: str
    handler: Handler


def _not_implemented(name: str) -> OssError:
    return OssError("NotImplemented", f"The emulator does not implement the {name} sub-resource.")


def resolve(method: str, target: Target, has_copy_source: bool) -> Resolved:
    """The operation a request names, or the error OSS answers for it."""
    scope: Scope = "bucket" if target.key is None else "object"
    subs = {name for name, _ in target.query if name in SUB_RESOURCES}
    refused = sorted(subs & REFUSED)
    if refused:
        raise _not_implemented(refused[0])
    selecting = sorted(subs & SELECTORS)
    if len(selecting) > 1:
        raise OssError("InvalidArgument", "A request may name only one sub-resource.")
    selector = selecting[0] if selecting else None
    route = ROUTES.get((scope, method, selector))
    if route is None:
        if any(key[0] == scope and key[2] == selector for key in ROUTES):
            raise OssError("MethodNotAllowed")
        raise _not_implemented(selector or f"{scope}-level {method}")
    unread = sorted(subs - {selector} - route.honours - _AUTH_PARAMS)
    if unread:
        raise _not_implemented(f"{unread[0]} (with {route.operation})")
    if has_copy_source:
        if route.copy is None:
            raise OssError("InvalidArgument", f"{route.operation} takes no {COPY_SOURCE_HEADER}.")
        operation, handler = route.copy
        return Resolved(operation, route.action, handler)
    return Resolved(route.operation, route.action, route.handler)
