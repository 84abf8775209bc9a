"""The doctor's checks, run in order, each yielding one line.

Everything runs as production would: Satchel's own STS client, the session policies it
sends for players, its presigner, and OSS calls signed as players' SDKs sign them, through
the endpoint players get. The probe writes one small object inside a probe player's folder
and deletes it again.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime

import aiohttp
from yarl import URL

from satchel_server.config import AccessKey, ScopeSettings, Settings
from satchel_server.credentials.broker import AssumeRoleRequest
from satchel_server.credentials.budget import sts_budget
from satchel_server.credentials.types import Clock, TemporaryCredentials
from satchel_server.doctor.identity import resolve
from satchel_server.doctor.oss_probe import OssAnswer, OssProbe
from satchel_server.doctor.redis_check import check_shared_cache
from satchel_server.doctor.report import CheckResult, failed, passed, warned
from satchel_server.errors import DomainError, UpstreamBug, UpstreamRejected
from satchel_server.presigning.presigner import Presigner
from satchel_server.presigning.signing_credentials import (
    ScopeRefresher,
    ScopeSigningCredentials,
    player_root,
)
from satchel_server.rules.policy import LIST_ACTION, session_policy
from satchel_server.rules.scopes import (
    DOCTOR_SESSION_NAME,
    PresignRequest,
    permission_set,
    player_prefix,
)
from satchel_server.signing import SigningCredentials
from satchel_server.sts.client import AliyunStsClient
from satchel_server.sts.http import new_session
from satchel_server.vocabulary import HttpMethod, PlayerPermission

# Probe players: ids no real player pattern is likely to produce, and valid in any folder.
PROBE_PLAYER = "satchel-doctor"
OTHER_PLAYER = "satchel-doctor-other"
MAX_CLOCK_SKEW = timedelta(minutes=5)
PROBE_BODY = b"satchel doctor probe\n"
ROLE_ALONE_SECONDS = 900
GUIDE = "docs/operations.md"


def _signing(credentials: TemporaryCredentials) -> SigningCredentials:
    return SigningCredentials(
        credentials.access_key_id, credentials.access_key_secret, credentials.security_token
    )


@dataclass
class _Context:
    settings: Settings
    access_key: AccessKey | None  # for scopes that sign with it
    session: aiohttp.ClientSession
    sts: AliyunStsClient
    clock: Clock

    async def assume(self, scope: ScopeSettings, policy: str, seconds: int) -> SigningCredentials:
        request = AssumeRoleRequest(
            role_arn=scope.role_arn,
            role_session_name=DOCTOR_SESSION_NAME,
            policy=policy,
            duration_seconds=seconds,
            external_id=scope.external_id,
        )
        result = await self.sts.assume_role(request, deadline=None)
        return _signing(result.credentials)


async def run_checks(settings: Settings, clock: Clock) -> AsyncIterator[CheckResult]:
    """Every check after the configuration's own (the caller loaded it)."""
    # The transport production uses: the checks see what `satchel serve` would see.
    async with new_session() as session:
        for result in await _sts_answers_and_clock(session, settings, clock):
            yield result
        resolved, line = await resolve(settings, session, clock)
        yield line
        if resolved is not None:
            sts = AliyunStsClient(session, settings.sts, resolved.identity, clock=clock)
            context = _Context(settings, resolved.access_key, session, sts, clock)
            for scope in settings.scopes.values():
                async for result in _scope_checks(context, scope):
                    yield result
    if settings.cache.url:
        yield await check_shared_cache(settings)


async def _sts_answers_and_clock(
    session: aiohttp.ClientSession, settings: Settings, clock: Clock
) -> list[CheckResult]:
    """STS answers an unsigned request with its JSON error, and a Date header to compare."""
    endpoint = settings.sts.endpoint
    fix = (
        "check [sts] endpoint and the network path to it "
        "(inside a VPC: https://sts-vpc.REGION.aliyuncs.com)"
    )
    try:
        async with session.get(
            URL(endpoint.rstrip("/") + "/?Format=JSON", encoded=True),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=settings.sts.request_timeout_seconds),
        ) as response:
            document = await response.json(content_type=None)
            date = response.headers.get("Date", "")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return [failed("STS answers", f"{endpoint}: {type(exc).__name__}", fix)]
    if not isinstance(document, dict) or "RequestId" not in document:
        return [failed("STS answers", f"{endpoint} answered, but not as STS does", fix)]
    answers = passed("STS answers", endpoint)
    try:
        skew = parsedate_to_datetime(date) - clock()
    except (TypeError, ValueError):
        return [answers, failed("clock", "STS sent no Date header to compare with", fix)]
    seconds = abs(skew.total_seconds())
    if abs(skew) > MAX_CLOCK_SKEW:
        return [
            answers,
            failed(
                "clock",
                f"this machine's clock is {seconds:.0f} s off STS's Date header "
                f"(more than {MAX_CLOCK_SKEW.total_seconds():.0f} s): STS and OSS refuse "
                "requests signed this far off",
                "synchronise the clock with NTP (chrony or systemd-timesyncd; on Alibaba Cloud "
                "ntp.cloud.aliyuncs.com inside a VPC)",
            ),
        ]
    return [answers, passed("clock", f"within {seconds:.0f} s of STS's Date header")]


def _assume_fix(scope: ScopeSettings, error: DomainError) -> str:
    code = getattr(error, "code", "")
    where = f"scopes.{scope.name}"
    if code == "NoPermission":
        external = (
            f"its ExternalId condition (sts:ExternalId) must equal {where}.external_id"
            if scope.external_id
            else f"if it demands an ExternalId, set {where}.external_id to it"
        )
        return (
            f"the trust policy of {scope.role_arn} must trust the identity Satchel runs as, "
            f"and {external}"
        )
    if code == "EntityNotExist.Role":
        return f"{where}.role_arn names no role in that account: copy the role's ARN"
    if code.startswith("InvalidParameter.DurationSeconds"):
        return (
            f"raise the role's MaxSessionDuration, or lower {where}.ttl_max_seconds and "
            "signer_ttl_seconds to at most it"
        )
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidAccessKeyId.NotFound"):
        return "Satchel's credentials are wrong or disabled: check the AccessKey pair"
    if code == "InvalidTimeStamp":
        return "synchronise this machine's clock with NTP"
    return f"see the troubleshooting table in {GUIDE}"


def _describe(error: DomainError) -> str:
    if isinstance(error, UpstreamRejected):
        return error.operator_message
    if isinstance(error, UpstreamBug):
        return f"STS refused a parameter: {error.code}"
    return str(error)


# OSS error code -> what to change ({where} is the scope's settings table).
_OSS_FIXES = {
    "SignatureDoesNotMatch": "{where}.region and {where}.endpoint must be the bucket's",
    "NoSuchBucket": "{where}.bucket names no bucket at {where}.endpoint",
    "RequestTimeTooSkewed": "synchronise this machine's clock with NTP",
    "Unreachable": "{where}.endpoint must be reachable: players' apps use it too",
}


def _oss_fix(scope: ScopeSettings, answer: OssAnswer, action: str, resource: str) -> str:
    where = f"scopes.{scope.name}"
    if answer.code == "AccessDenied" and action:
        return f"the role's permission policy must allow {action} on {resource}"
    if answer.code == "InvalidArgument" and "region" in answer.message.lower():
        return f"{where}.region must be the bucket's region"
    fix = _OSS_FIXES.get(answer.code, f"see the troubleshooting table in {GUIDE}")
    return fix.format(where=where)


async def _scope_checks(ctx: _Context, scope: ScopeSettings) -> AsyncIterator[CheckResult]:
    label = f"scope {scope.name}"
    prefix = player_prefix(scope, PROBE_PLAYER)
    permissions = permission_set(scope.permissions)
    policy = session_policy(scope.bucket, prefix, permissions, scope.policy_max_chars)
    try:
        player = await ctx.assume(scope, policy, scope.ttl_max_seconds)
    except DomainError as error:
        yield failed(f"{label}: AssumeRole", _describe(error), _assume_fix(scope, error))
        return
    external = ", ExternalId accepted" if scope.external_id else ""
    yield passed(
        f"{label}: AssumeRole", f"{scope.role_arn} for {scope.ttl_max_seconds} s{external}"
    )
    probe = OssProbe(ctx.session, scope, ctx.clock)
    inside, presigned = await _inside_folder(ctx, probe, _Folder(scope, prefix, player))
    yield inside
    yield await _confined(probe, scope, player)
    try:
        role_alone = await ctx.assume(scope, "", ROLE_ALONE_SECONDS)
    except DomainError as error:
        yield failed(f"{label}: role alone", _describe(error), _assume_fix(scope, error))
        return
    yield await _role_reach(probe, scope, role_alone)
    yield await _region(probe, scope, role_alone)
    yield await _cors(probe, scope, role_alone)
    yield presigned


@dataclass(frozen=True)
class _Folder:
    """The probe player's folder in a scope, and a credential issued for it."""

    scope: ScopeSettings
    prefix: str
    player: SigningCredentials


async def _inside_folder(
    ctx: _Context, probe: OssProbe, folder_of: _Folder
) -> tuple[CheckResult, CheckResult]:
    """Put, get, list and delete in the probe folder, and a presigned GET of the object
    before it is deleted: (folder result, presigned result)."""
    scope, prefix, player = folder_of.scope, folder_of.prefix, folder_of.player
    permissions = permission_set(scope.permissions)
    name = f"scope {scope.name}: player credential in {prefix}"
    key = f"{prefix}probe-{uuid.uuid4().hex}.txt"
    folder = f"acs:oss:*:*:{scope.bucket}/{player_root(scope)}*"
    steps: list[str] = []
    written = False
    if PlayerPermission.WRITE in permissions:
        answer = await probe.call("PUT", key, player, body=PROBE_BODY)
        if not answer.ok:
            return _step_failed(name, scope, "oss:PutObject", folder, answer), _not_run(scope)
        written = True
        steps.append("put")
    if PlayerPermission.READ in permissions:
        answer = await probe.call("GET", key, player)
        readable = (answer.ok and answer.body == PROBE_BODY) or (
            not written and answer.code == "NoSuchKey"
        )
        if not readable:
            return _step_failed(name, scope, "oss:GetObject", folder, answer), _not_run(scope)
        steps.append("get")
    if PlayerPermission.LIST in permissions:
        answer = await probe.call("GET", None, player, query={"prefix": prefix})
        listed = answer.ok and (not written or key.encode() in answer.body)
        if not listed:
            bucket = f"acs:oss:*:*:{scope.bucket} (oss:Prefix {prefix}*)"
            return _step_failed(name, scope, LIST_ACTION, bucket, answer), _not_run(scope)
        steps.append("list")
    presigned = await _presigned_get(ctx, probe, scope, key, written)
    if PlayerPermission.DELETE in permissions:
        answer = await probe.call("DELETE", key, player)
        if not answer.ok:
            return _step_failed(name, scope, "oss:DeleteObject", folder, answer), presigned
        steps.append("delete")
    elif written:
        steps.append(f"the scope does not allow delete: remove {key} by hand")
    return passed(name, ", ".join(steps) + " work"), presigned


def _step_failed(
    name: str, scope: ScopeSettings, action: str, resource: str, answer: OssAnswer
) -> CheckResult:
    return failed(name, f"{action}: {answer.describe()}", _oss_fix(scope, answer, action, resource))


def _not_run(scope: ScopeSettings) -> CheckResult:
    return failed(
        f"scope {scope.name}: presigned GET",
        "not checked: the probe object could not be written and read",
        "fix the player credential check first",
    )


async def _presigned_get(
    ctx: _Context, probe: OssProbe, scope: ScopeSettings, key: str, written: bool
) -> CheckResult:
    """A GET URL from Satchel's own presigner, with its scope-level signer credentials."""
    name = f"scope {scope.name}: presigned GET"
    if PlayerPermission.READ.value not in scope.permissions:
        return passed(name, "not checked: the scope does not allow read")
    budget = sts_budget(ctx.settings.sts.budget_per_second)
    signer = ScopeRefresher(scope, ctx.sts, budget, ctx.access_key, ctx.clock)
    try:
        if signer.current is None:
            await signer.refresh()
    except DomainError as error:
        return failed(name, f"signer credentials: {_describe(error)}", _assume_fix(scope, error))
    presigner = Presigner(
        {scope.name: scope}, ScopeSigningCredentials({scope.name: signer}), ctx.clock
    )
    request = PresignRequest(
        scope=scope,
        player_id=PROBE_PLAYER,
        prefix=player_prefix(scope, PROBE_PLAYER),
        key=key,
        method=HttpMethod.GET,
        expires_seconds=scope.presign_expires_default_seconds,
        content_type=None,
        max_size=None,
        forbid_overwrite=False,
    )
    signed = presigner.presign(request)
    answer = await probe.fetch(signed.url, signed.headers)
    works = (answer.ok and answer.body == PROBE_BODY) or (
        not written and answer.code == "NoSuchKey"
    )
    if works:
        return passed(name, f"{scope.presign_signature} URL through {scope.endpoint}")
    resource = f"acs:oss:*:*:{scope.bucket}/{player_root(scope)}*"
    return failed(name, answer.describe(), _oss_fix(scope, answer, "oss:GetObject", resource))


async def _confined(
    probe: OssProbe, scope: ScopeSettings, player: SigningCredentials
) -> CheckResult:
    """The player credential must reach nothing in another player's folder."""
    other = player_prefix(scope, OTHER_PLAYER)
    name = f"scope {scope.name}: player credential confined"
    key = f"{other}probe-{uuid.uuid4().hex}.txt"
    put = await probe.call("PUT", key, player, body=PROBE_BODY)
    if put.ok:
        await probe.call("DELETE", key, player)
    listing = await probe.call("GET", None, player, query={"prefix": other})
    for what, answer in (("put", put), ("list", listing)):
        if answer.ok:
            return failed(
                name,
                f"a {what} in {other} succeeded with a credential for {PROBE_PLAYER}",
                "Satchel's session policy did not confine the credential: report this as a bug",
            )
        if answer.code != "AccessDenied":
            return failed(
                name,
                f"could not tell: {what} in {other} answered {answer.describe()}",
                _oss_fix(scope, answer, "oss:PutObject", key),
            )
    return passed(name, f"put and list in {other} are denied")


async def _role_reach(
    probe: OssProbe, scope: ScopeSettings, role_alone: SigningCredentials
) -> CheckResult:
    """Warn when the role itself (no session policy) reads outside the template's root."""
    name = f"scope {scope.name}: role's own reach"
    root = player_root(scope)
    if not root:
        return passed(name, "the prefix template starts at the bucket's root")
    outside = "satchel-doctor-outside/probe.txt"
    if outside.startswith(root):
        outside = "x" + outside
    answer = await probe.call("GET", outside, role_alone)
    if answer.code == "AccessDenied":
        return passed(name, f"the role alone cannot read outside {root}")
    if answer.ok or answer.code == "NoSuchKey":
        return warned(
            name,
            f"the role alone can read {outside}, outside {root}: a mistake in a session "
            "policy would not be contained by the role",
            f"narrow the role's permission policy to acs:oss:*:*:{scope.bucket}/{root}*",
        )
    return warned(name, f"could not tell: {answer.describe()}", _oss_fix(scope, answer, "", ""))


async def _region(
    probe: OssProbe, scope: ScopeSettings, role_alone: SigningCredentials
) -> CheckResult:
    """GetBucketLocation, signed V1 (which names no region) so a wrong region still asks."""
    name = f"scope {scope.name}: bucket region"
    where = f"scopes.{scope.name}"
    answer = await probe.call("GET", None, role_alone, query={"location": ""}, signature="v1")
    if answer.ok:
        location = _xml_text(answer.body)
        if location == f"oss-{scope.region}":
            return passed(name, f"{scope.bucket} is in {scope.region}")
        region = location.removeprefix("oss-")
        return failed(
            name,
            f"{scope.bucket} is in {region or 'an unknown region'}, not {scope.region}",
            f'set {where}.region = "{region}" and {where}.endpoint to that region\'s endpoint',
        )
    if answer.code == "AccessDenied" and b"<Endpoint>" in answer.body:
        return failed(
            name,
            f"{scope.bucket} must be addressed through another endpoint: {answer.message}",
            f"set {where}.endpoint and {where}.region to the bucket's region",
        )
    if answer.code == "AccessDenied":
        return _unreadable(name, scope, "location", "oss:GetBucketLocation")
    return failed(name, answer.describe(), _oss_fix(scope, answer, "oss:GetBucketLocation", ""))


async def _cors(
    probe: OssProbe, scope: ScopeSettings, role_alone: SigningCredentials
) -> CheckResult:
    name = f"scope {scope.name}: bucket CORS"
    answer = await probe.call("GET", None, role_alone, query={"cors": ""}, signature="v1")
    if answer.ok:
        rules = answer.body.count(b"<CORSRule>")
        return passed(name, f"{rules} CORS rule(s)")
    if answer.code == "NoSuchCORSConfiguration":
        return warned(
            name,
            f"{scope.bucket} has no CORS rule: browser and WebGL builds cannot use its URLs",
            f"add a CORS rule to the bucket (example in {GUIDE}, Bucket CORS)",
        )
    if answer.code == "AccessDenied":
        return _unreadable(name, scope, "CORS rules", "oss:GetBucketCors")
    return warned(name, answer.describe(), _oss_fix(scope, answer, "oss:GetBucketCors", ""))


def _unreadable(name: str, scope: ScopeSettings, what: str, action: str) -> CheckResult:
    """A warning: the role may not read a bucket setting, so the doctor could not check it."""
    return warned(
        name,
        f"not checked: the role may not read the bucket's {what}",
        f"allow {action} on acs:oss:*:*:{scope.bucket} to check",
    )


def _xml_text(body: bytes) -> str:
    try:
        return (ET.fromstring(body).text or "").strip()  # noqa: S314 - OSS's own document
    except ET.ParseError:
        return ""
