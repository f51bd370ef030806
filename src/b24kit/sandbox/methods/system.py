"""user.*, scope, methods, method.get, server.time, profile (global scope)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from b24kit.encoding import as_list, php_truthy
from b24kit.sandbox import errors
from b24kit.sandbox.registry import GLOBAL, METHODS, CallContext, Paged, arg, method
from b24kit.sandbox.values import intval

ALL_SCOPES = ("crm", "user", "userfieldconfig")


def _user(ctx: CallContext, user_id: int) -> dict[str, Any]:
    data = ctx.portal.user(user_id)
    if data is None:
        raise errors.old_style("User not found")
    out: dict[str, Any] = {"ID": str(data.pop("ID")), "ACTIVE": bool(data.pop("ACTIVE", True))}
    data.pop("ADMIN", None)
    out.update(
        {
            k: (v if isinstance(v, (list, dict, bool)) or v is None else str(v))
            for k, v in data.items()
        }
    )
    return out


@method("user.current", "user")
def user_current(ctx: CallContext, params: dict[str, Any]) -> Any:
    return _user(ctx, ctx.user_id)


@method("user.get", "user")
def user_get(ctx: CallContext, params: dict[str, Any]) -> Any:
    flt = arg(params, "filter") or {}
    wanted = None
    if isinstance(flt, Mapping) and flt.get("ID") not in (None, ""):
        wanted = {intval(v) for v in as_list(flt["ID"])}
    if arg(params, "ID") not in (None, ""):
        wanted = {intval(arg(params, "ID"))}
    rows = ctx.portal.db.all("SELECT id FROM users ORDER BY id")
    users = [_user(ctx, r["id"]) for r in rows if wanted is None or r["id"] in wanted]
    if isinstance(flt, Mapping) and php_truthy(flt.get("ACTIVE")):
        # user-get.md: ACTIVE = true excludes terminated users
        users = [u for u in users if u["ACTIVE"] is True]
    start = max(ctx.start, 0)
    return Paged(
        users[start : start + 50], len(users), start + 50 if start + 50 < len(users) else None
    )


@method("profile")
def profile(ctx: CallContext, params: dict[str, Any]) -> Any:
    """profile.md: strings throughout, "" for an unset gender or time zone; PERSONAL_PHOTO
    only when a photo was uploaded."""
    data = ctx.portal.user(ctx.user_id) or {}
    out: dict[str, Any] = {"ID": str(ctx.user_id), "ADMIN": bool(data.get("ADMIN"))}
    for key in ("NAME", "LAST_NAME", "PERSONAL_GENDER", "TIME_ZONE"):
        out[key] = "" if data.get(key) is None else str(data[key])
    if data.get("PERSONAL_PHOTO"):
        out["PERSONAL_PHOTO"] = str(data["PERSONAL_PHOTO"])
    return out


@method("scope")
def scope(ctx: CallContext, params: dict[str, Any]) -> Any:
    if php_truthy(arg(params, "full")):
        return sorted(ALL_SCOPES)
    return sorted(ctx.scopes)


def _available(ctx: CallContext, scopes: tuple[str, ...]) -> bool:
    return all(s == GLOBAL or s in ctx.scopes for s in scopes)


@method("methods")
def methods(ctx: CallContext, params: dict[str, Any]) -> Any:
    wanted = arg(params, "scope")
    full = php_truthy(arg(params, "full"))
    out = []
    for spec in METHODS.values():
        if wanted is not None:
            # methods.md: a scope given without a value lists the common methods
            if spec.scopes[0] != (str(wanted) or GLOBAL):
                continue
        elif not full and not _available(ctx, spec.scopes):
            continue
        out.append(spec.name)
    return sorted(out)


@method("method.get")
def method_get(ctx: CallContext, params: dict[str, Any]) -> Any:
    name = str(arg(params, "name") or "").lower()
    spec = METHODS.get(name)
    return {
        "isExisting": spec is not None,
        "isAvailable": spec is not None and _available(ctx, spec.scopes),
    }


@method("server.time")
def server_time(ctx: CallContext, params: dict[str, Any]) -> Any:
    return ctx.portal.now()


@method("batch")
def batch(ctx: CallContext, params: dict[str, Any]) -> Any:
    """Registered so ``methods`` and scope checks see it; Sandbox._run executes it."""
    raise errors.make(errors.INTERNAL)
