"""Choose the portal a command talks to, and compose its client: the one place that
knows both the REST client and the sandbox (first match wins):

1. ``--portal VALUE``: a webhook URL or a profile name;
2. ``B24_WEBHOOK_URL`` (or ``B24_PORTAL``, a profile name) in the environment;
3. the default profile of ``$XDG_CONFIG_HOME/b24kit/config.yaml``;
4. none: a ConfigError saying how to choose. The sandbox is a portal one names
   (``--portal sandbox``, ``B24_PORTAL=sandbox`` or a profile with ``sandbox: PATH``), never
   a silent fallback: a cron job with a missing setting must fail, not succeed on a local
   file.

Config file::

    default: acme
    profiles:
      acme:
        webhook: https://acme.bitrix24.ru/rest/1/SECRET/
        plan: standard            # or enterprise
      beta:
        oauth:
          rest: https://beta.bitrix24.ru/rest/
          client_id: app.123
          client_secret: SECRET
          refresh_token: TOKEN    # rotated tokens are kept in tokens/beta.json (0600)
      rehearsal:
        sandbox: .b24kit/sandbox.sqlite   # the local sandbox portal, in-process
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from b24kit.client.address import parse_webhook
from b24kit.client.auth import Auth, OAuthAuth, WebhookAuth
from b24kit.client.core import B24Client, RetryPolicy
from b24kit.client.errors import ConfigError
from b24kit.client.limiter import Bucket

SANDBOX_DIR = Path(".b24kit")


def state_root() -> Path:
    """Where every portal's local state lives: ``$B24KIT_STATE_DIR`` or ``./.b24kit``."""
    return Path(os.environ.get("B24KIT_STATE_DIR") or SANDBOX_DIR)


def shared_lock_dir() -> Path:
    """A folder for run locks that every user of this machine can reach: ``/run/lock``'s
    (the system's place for lock files, shared by services with a private /tmp), else the
    temp folder's; made open to all with the sticky bit, as those are, so that each user
    can add a lock and none can remove another's. ``./.b24kit/locks`` where neither can be
    written. ``$B24KIT_LOCK_DIR`` names another (every run on the machine must use it)."""
    chosen = os.environ.get("B24KIT_LOCK_DIR")
    if chosen:
        return Path(chosen)
    for base in (Path("/run/lock"), Path(tempfile.gettempdir())):
        folder = base / "b24kit"
        try:
            folder.mkdir(exist_ok=True)
            if folder.stat().st_uid == os.getuid():
                folder.chmod(0o1777)
            info = folder.stat()
        except OSError:
            continue
        # one another user made without the sticky bit would let them remove a held lock
        shared = info.st_uid in (0, os.getuid()) or info.st_mode & stat.S_ISVTX
        if shared and os.access(folder, os.W_OK | os.X_OK):
            return folder
    return SANDBOX_DIR / "locks"


def config_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "b24kit"


@dataclass
class Connection:
    client: B24Client
    label: str  # safe to print
    plan: str
    sandbox: Any = None  # the in-process Sandbox when no portal was configured
    warnings: tuple[str, ...] = ()

    @property
    def is_sandbox(self) -> bool:
        return self.sandbox is not None

    @property
    def state_key(self) -> str:
        """A folder name for this portal's local state (sync marks, locks): two portals
        never share one. Made from the redacted label, so it holds no secret."""
        host = re.sub(r"^[a-z]+://", "", self.label).split("/")[0]
        host = re.sub(r"[^A-Za-z0-9.-]+", "-", host).strip("-") or "portal"
        digest = hashlib.sha256(self.label.encode("utf-8")).hexdigest()[:8]
        return f"{'sandbox' if self.is_sandbox else host}-{digest}"

    @property
    def portal_key(self) -> str:
        """One name per portal, whichever webhook, user or profile reaches it: the host,
        lowercased, without a default port (the sandbox: its own state key)."""
        if self.is_sandbox:
            return self.state_key
        host = re.sub(r"^[a-z]+://", "", self.label.lower()).split("/")[0].rsplit("@", 1)[-1]
        host = re.sub(r":(443|80)$", "", host)
        return re.sub(r"[^a-z0-9.-]+", "-", host).strip("-") or "portal"

    def lock_path(self, root: Path | None = None) -> Path:
        """The portal's run lock (b24kit.locks): one file per portal host, shared by every
        webhook and user of it, under ``root`` or ``$B24KIT_STATE_DIR``; else, for a real
        portal, in a folder every user of this machine shares (``shared_lock_dir``), so a
        cron job started in one folder and a person's run in another take the same lock
        (under ``./.b24kit`` they did not); the local sandbox's, beside its database."""
        name = f"{self.portal_key}.lock"
        if root is not None or os.environ.get("B24KIT_STATE_DIR") or self.is_sandbox:
            return (root or state_root()) / "locks" / name
        return shared_lock_dir() / name

    def state_dir(self, root: Path | None = None) -> Path:
        """This portal's local state folder (sync marks, the run lock) under ``root``:
        by default ``$B24KIT_STATE_DIR``, else ``./.b24kit``."""
        return (root or state_root()) / self.state_key

    async def close(self) -> None:
        await self.client.aclose()
        if self.sandbox is not None:
            self.sandbox.close()


def _load_config(path: Path) -> tuple[dict[str, Any], list[str]]:
    warnings: list[str] = []
    if not path.exists():
        return {}, warnings
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        warnings.append(f"{path} is readable by other users; it holds secrets: chmod 600 {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        # where and what, never the text around it: a config file holds webhook URLs, OAuth
        # client secrets and refresh tokens, which a YAML error quotes
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "a syntax error"
        raise ConfigError(f"{path}{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'profiles'")
    return data, warnings


NO_PORTAL = (
    "no portal chosen: pass --portal URL|PROFILE|sandbox, or set B24_WEBHOOK_URL or "
    "B24_PORTAL, or a default profile in {config}"
)
SANDBOX = "sandbox"


def _profile_auth(name: str, profile: Mapping[str, Any], cfg_dir: Path) -> Auth:
    if "webhook" in profile:
        return WebhookAuth(parse_webhook(str(profile["webhook"])))
    oauth = profile.get("oauth")
    if isinstance(oauth, Mapping):
        token_file = cfg_dir / "tokens" / f"{name}.json"
        stored: dict[str, Any] = {}
        if token_file.exists():
            stored = json.loads(token_file.read_text(encoding="utf-8"))

        def save(tokens: dict[str, Any]) -> None:
            token_file.parent.mkdir(parents=True, exist_ok=True)
            token_file.write_text(
                json.dumps(
                    {k: tokens[k] for k in ("access_token", "refresh_token") if k in tokens}
                ),
                encoding="utf-8",
            )
            token_file.chmod(0o600)

        try:
            return OAuthAuth(
                rest_base=str(oauth["rest"]),
                access_token=str(stored.get("access_token") or oauth.get("access_token") or ""),
                refresh_token=str(stored.get("refresh_token") or oauth["refresh_token"]),
                client_id=str(oauth["client_id"]),
                client_secret=str(oauth["client_secret"]),
                token_url=str(oauth.get("token_url", "https://oauth.bitrix.info/oauth/token/")),
                on_tokens=save,
            )
        except KeyError as exc:
            raise ConfigError(f"profile {name!r}: oauth needs {exc.args[0]!r}") from None
    raise ConfigError(f"profile {name!r} has neither 'webhook' nor 'oauth'")


def connect(
    portal: str | None = None,
    *,
    plan: str | None = None,
    env: Mapping[str, str] | None = None,
    sandbox_dir: Path = SANDBOX_DIR,
    max_in_flight: int = 50,  # the bucket paces; the standard burst is 50
) -> Connection:
    env = os.environ if env is None else env
    cfg_dir = config_dir(env)
    config, warnings = _load_config(cfg_dir / "config.yaml")
    profiles = config.get("profiles") or {}

    def from_profile(name: str) -> tuple[Auth | Path, str]:
        if name == SANDBOX:
            return sandbox_dir / "sandbox.sqlite", "standard"
        profile = profiles.get(name)
        if not isinstance(profile, Mapping):
            known = ", ".join([*sorted(profiles), SANDBOX])
            raise ConfigError(f"no profile {name!r} in {cfg_dir / 'config.yaml'} (known: {known})")
        plan = str(profile.get("plan", "standard"))
        if "sandbox" in profile:
            return Path(str(profile["sandbox"] or sandbox_dir / "sandbox.sqlite")), plan
        return _profile_auth(name, profile, cfg_dir), plan

    target: Auth | Path | None = None
    chosen_plan = "standard"
    value = portal or env.get("B24_WEBHOOK_URL") or None
    if value:
        if "://" in value:
            target = WebhookAuth(parse_webhook(value))
        else:
            target, chosen_plan = from_profile(value)
    elif env.get("B24_PORTAL"):
        target, chosen_plan = from_profile(env["B24_PORTAL"])
    elif config.get("default"):
        target, chosen_plan = from_profile(str(config["default"]))
    if target is None:
        raise ConfigError(NO_PORTAL.format(config=cfg_dir / "config.yaml"))
    plan = plan or chosen_plan
    if plan not in ("standard", "enterprise"):
        raise ConfigError(f"unknown plan {plan!r}; use standard or enterprise")
    bucket = Bucket.for_plan(plan)
    retry = RetryPolicy()
    if env.get("B24KIT_RETRIES"):
        try:
            retry.attempts = max(1, int(env["B24KIT_RETRIES"]))
        except ValueError:
            raise ConfigError("B24KIT_RETRIES must be a whole number") from None
    if isinstance(target, Auth):
        client = B24Client(target, bucket=bucket, max_in_flight=max_in_flight, retry=retry)
        return Connection(client, target.portal, plan, warnings=tuple(warnings))

    from b24kit.sandbox import Sandbox, SandboxConfig

    db = target
    sandbox = Sandbox(SandboxConfig(db=str(db), limits=plan))
    hook = parse_webhook(sandbox.webhook_url("http://sandbox.local"))
    client = B24Client(
        WebhookAuth(hook),
        transport=sandbox.transport(),
        bucket=bucket,
        max_in_flight=max_in_flight,
        retry=retry,
    )
    label = f"local sandbox portal ({db}, in-process)"
    return Connection(client, label, plan, sandbox=sandbox, warnings=tuple(warnings))
