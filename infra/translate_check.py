#!/usr/bin/env python3
"""Checks the SAM template as CloudFormation deploys it, offline.

The template goes through aws-sam-translator (the AWS::Serverless transform CloudFormation runs)
the way `sam package` hands it over (CodeUri rewritten to s3://<bucket>/<content hash>), and the
checks below look at the transformed resources with CloudFormation's own resolution of parameters,
pseudo parameters, conditions and mappings applied. They pin what cfn-lint, `sam validate` and
checkov cannot know: that a redeploy ships what it says and that the first deploy of a new account
behaves.

    python3 infra/translate_check.py [template] [samconfig.toml]

Prints one line per check and exits 1 if any failed. Needs aws-sam-translator and PyYAML; no AWS
credentials and no network.
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any, Callable

import yaml

# The translator resolves AWS::Region and AWS::Partition from a boto3 session; nothing is called.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
from samtranslator.translator.transform import transform  # noqa: E402

logging.disable(logging.WARNING)  # the translator's metrics chatter

HERE = Path(__file__).resolve().parent
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CloudFront Managed-CachingDisabled
STACK_UUID = "5f6b1a40-8c1e-11ef-a3b4-0a1b2c3d4e5f"
LONG_STACK_NAME = "s" * 128  # CloudFormation's maximum stack name length


# ------------------------------------------------------------------------------------ loading


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (`!Ref X` -> {"Ref": "X"}, `!Sub ..` -> {"Fn::Sub": ..})."""


def _short_tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _short_tag)


def load_template(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=CfnLoader)


class NoManagedPolicies:
    """The template names no managed policy by name, so the IAM lookup is never needed."""

    def load(self) -> dict:
        return {}


def packaged(template: dict, code_key: str) -> dict:
    """What `sam package` uploads: every local CodeUri replaced by its S3 location."""
    tpl = copy.deepcopy(template)
    for name, res in tpl["Resources"].items():
        if res.get("Type") == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = f"s3://artifacts/{name}-{code_key}"
    return tpl


class Deployed:
    """The transformed template with one set of parameter values, resolved as CloudFormation does."""

    def __init__(self, template: dict, overrides: dict[str, str] | None = None, code_key: str = "v1"):
        self.source = template
        self.params = {
            name: str(p.get("Default", "")) for name, p in template.get("Parameters", {}).items()
        }
        self.params.update(overrides or {})
        self.pseudo = {
            "AWS::StackName": "tagger",
            "AWS::StackId": f"arn:aws:cloudformation:us-east-1:123456789012:stack/tagger/{STACK_UUID}",
            "AWS::Region": "us-east-1",
            "AWS::AccountId": "123456789012",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.cfn = transform(
            packaged(template, code_key), dict(self.params), NoManagedPolicies()
        )
        self._conditions: dict[str, bool] = {}

    def with_stack_name(self, name: str) -> "Deployed":
        self.pseudo["AWS::StackName"] = name
        self.pseudo["AWS::StackId"] = (
            f"arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/{STACK_UUID}"
        )
        return self

    # -- resolution

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.cfn["Conditions"][name]))
        return self._conditions[name]

    def exists(self, logical_id: str) -> bool:
        res = self.cfn["Resources"].get(logical_id)
        return res is not None and ("Condition" not in res or self.condition(res["Condition"]))

    def resolve(self, v: Any) -> Any:
        """Parameters, pseudo parameters, conditions, mappings and string functions resolved;
        references to resources stay as `<Ref X>` / `<X.Attr>`; AWS::NoValue removes the key."""
        if isinstance(v, list):
            return [x for x in (self.resolve(i) for i in v) if x is not NO_VALUE]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (fn, arg), = v.items()
            if fn == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                if arg in self.params:
                    return self.params[arg]
                if arg in self.pseudo:
                    return self.pseudo[arg]
                return f"<Ref {arg}>"
            if fn == "Fn::GetAtt":
                return f"<{'.'.join(arg)}>"
            if fn == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                extra = {k: self.resolve(x) for k, x in extra.items()}

                def var(m: re.Match) -> str:
                    name = m.group(1)
                    if name in extra:
                        return str(extra[name])
                    got = self.resolve({"Ref": name}) if "." not in name else f"<{name}>"
                    return str(got)

                return re.sub(r"\$\{([^}!]+)\}", var, text)
            if fn == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.condition(cond) else no)
            if fn == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return str(a) == str(b)
            if fn == "Fn::Not":
                return not self.resolve(arg[0])
            if fn == "Fn::And":
                return all(self.resolve(x) for x in arg)
            if fn == "Fn::Or":
                return any(self.resolve(x) for x in arg)
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::FindInMap":
                m, k1, k2 = (self.resolve(x) for x in arg)
                return self.cfn["Mappings"][m][str(k1)][str(k2)]
            if fn == "Fn::Split":
                sep, text = arg[0], self.resolve(arg[1])
                return str(text).split(sep)
            if fn == "Fn::Select":
                items, i = self.resolve(arg[1]), int(self.resolve(arg[0]))
                # A runtime value (e.g. a Function URL) splits into fewer parts offline.
                return items[i] if i < len(items) else f"<Select {i} of {items}>"
            if fn == "Fn::Join":
                return arg[0].join(str(x) for x in self.resolve(arg[1]))
        out = {}
        for k, x in v.items():
            r = self.resolve(x)
            if r is not NO_VALUE:
                out[k] = r
        return out

    def resource(self, logical_id: str) -> dict:
        """A resource as deployed: Properties resolved, attributes kept."""
        res = self.cfn["Resources"][logical_id]
        out = {k: x for k, x in res.items() if k != "Properties"}
        out["Properties"] = self.resolve(res.get("Properties", {}))
        return out

    def of_type(self, kind: str) -> dict[str, dict]:
        return {
            lid: self.resource(lid)
            for lid, r in self.cfn["Resources"].items()
            if r.get("Type") == kind and self.exists(lid)
        }

    def rule_failures(self) -> list[str]:
        """Assertion descriptions of the template's Rules that these parameters violate."""
        failed = []
        for rule in self.cfn.get("Rules", {}).values():
            if "RuleCondition" in rule and not self.resolve(rule["RuleCondition"]):
                continue
            for a in rule.get("Assertions", []):
                if not self.resolve(a["Assert"]):
                    failed.append(a.get("AssertDescription", "rule assertion"))
        return failed


NO_VALUE = object()


# ------------------------------------------------------------------------------------ checks

CHECKS: list[tuple[str, Callable[[dict, Path], None]]] = []


def check(title: str):
    def register(fn):
        CHECKS.append((title, fn))
        return fn

    return register


class Failed(Exception):
    pass


def require(ok: bool, message: str) -> None:
    if not ok:
        raise Failed(message)


def live_version(d: Deployed) -> tuple[str, dict]:
    """The version resource the `live` alias points to: (logical id, deployed definition)."""
    alias = d.resource("PredictFunctionAliaslive")["Properties"]
    target = d.cfn["Resources"]["PredictFunctionAliaslive"]["Properties"]["FunctionVersion"]
    require("Fn::GetAtt" in target, f"alias live does not point at a version resource: {alias}")
    version_id = target["Fn::GetAtt"][0]
    return version_id, d.resource(version_id)


PARAMETER_CHANGES = {
    "PredictMemoryMB": "512",
    "PredictTimeoutSeconds": "30",
    "ModelRefreshSecs": "300",
    "ModelVersion": "20240101-abc",
    "LogLevel": "DEBUG",
}


def other_value(param: dict) -> str | None:
    """A valid value different from the parameter's default, if one is easy to pick."""
    default = str(param.get("Default", ""))
    if "AllowedValues" in param:
        others = [str(v) for v in param["AllowedValues"] if str(v) != default]
        return others[0] if others else None
    if param.get("Type") == "Number":
        n = int(default) + 1
        return str(n) if n <= int(param.get("MaxValue", n)) else str(int(default) - 1)
    return None


@check("1. a parameter-only redeploy publishes a new version and moves `live` to it")
def version_follows_parameters(tpl: dict, _: Path) -> None:
    base = Deployed(tpl)
    base_id, base_version = live_version(base)
    # Same inputs: same version (no spurious republish on every deploy).
    again_id, again_version = live_version(Deployed(tpl))
    require((base_id, base_version) == (again_id, again_version), "same parameters, different version")
    # New code: new version (what SAM's hash is for).
    new_code_id, _ = live_version(Deployed(tpl, code_key="v2"))
    require(new_code_id != base_id, "a code change does not publish a new version")
    # The named ones, then every other parameter that changes the function's configuration.
    changes = dict(PARAMETER_CHANGES)
    for name, param in tpl.get("Parameters", {}).items():
        value = other_value(param)
        if name not in changes and value is not None:
            changes[name] = value
    fn_before = base.resource("PredictFunction")["Properties"]
    for name, value in changes.items():
        changed = Deployed(tpl, {name: value})
        fn_after = changed.resource("PredictFunction")["Properties"]
        if name not in PARAMETER_CHANGES and fn_after == fn_before:
            continue
        require(fn_before != fn_after, f"{name}={value} does not change the function at all")
        vid, version = live_version(changed)
        # CloudFormation creates a new version when the logical id changes or when a property of
        # AWS::Lambda::Version changes (all of them require replacement).
        require(
            (vid, version) != (base_id, base_version),
            f"{name}={value} changes $LATEST but not the version `live` points to "
            f"({vid}, properties {version['Properties']})",
        )


@check("2. first deploy: bucket not orphaned on a failed create, reservations optional")
def first_deploy(tpl: dict, _: Path) -> None:
    d = Deployed(tpl)
    bucket = d.resource("DataBucket")
    require(
        bucket.get("DeletionPolicy") == "RetainExceptOnCreate",
        f"DataBucket DeletionPolicy is {bucket.get('DeletionPolicy')!r}, not RetainExceptOnCreate "
        "(a failed first deploy leaves the bucket behind)",
    )
    require(bucket.get("UpdateReplacePolicy") == "Retain", "DataBucket UpdateReplacePolicy is not Retain")
    # Defaults: one warm instance (the product's promise) and one training slot.
    train = d.resource("TrainFunction")["Properties"]
    require(train.get("ReservedConcurrentExecutions") == 1, "training is not one-at-a-time by default")
    pcc = d.resource("PredictFunctionAliaslive")["Properties"].get("ProvisionedConcurrencyConfig")
    require(pcc == {"ProvisionedConcurrentExecutions": "1"}, f"default warm instances: {pcc}")
    # Both can be turned off for an account without spare concurrency.
    low = Deployed(tpl, {"WarmInstances": "0", "TrainReservedConcurrency": "0"})
    require(
        "ReservedConcurrentExecutions" not in low.resource("TrainFunction")["Properties"],
        "TrainReservedConcurrency=0 still reserves concurrency",
    )
    require(
        "ProvisionedConcurrencyConfig" not in low.resource("PredictFunctionAliaslive")["Properties"],
        "WarmInstances=0 still provisions concurrency",
    )
    # Nothing else claims account concurrency.
    for lid, res in d.of_type("AWS::Lambda::Function").items():
        if lid != "TrainFunction":
            require("ReservedConcurrentExecutions" not in res["Properties"], f"{lid} reserves concurrency")


@check("3. samconfig.toml: no SAM build cache (it hashes only each function's folder)")
def no_stale_build_cache(_: dict, samconfig: Path) -> None:
    config = tomllib.loads(samconfig.read_text())
    for env, commands in config.items():
        if not isinstance(commands, dict):
            continue
        for command, section in commands.items():
            params = section.get("parameters", {}) if isinstance(section, dict) else {}
            require(
                params.get("cached") is not True,
                f"[{env}.{command}.parameters] cached = true: `sam build` reuses a binary when only "
                "shared/, another crate or Cargo.lock changed",
            )


def edge_ttl(cache_control: str | None, min_ttl: int, default_ttl: int, max_ttl: int) -> int:
    """Seconds CloudFront keeps a response (CloudFront Developer Guide, "Manage how long content
    stays in the cache"): no-store/no-cache/private -> MinTTL (0 = not cached); s-maxage, else
    max-age, clamped to [MinTTL, MaxTTL]; no header -> DefaultTTL."""
    if cache_control is None:
        return default_ttl
    directives = {}
    for part in cache_control.split(","):
        key, _, value = part.strip().lower().partition("=")
        directives[key] = value
    if {"no-store", "no-cache", "private"} & directives.keys():
        return min_ttl
    age = directives.get("s-maxage") or directives.get("max-age")
    if age:
        return max(min_ttl, min(int(age), max_ttl))
    return default_ttl


def model_cache_control(d: Deployed) -> str:
    """Cache-Control of a 200 from GET /model: `public, max-age=<MODEL_CACHE_SECS>` when the
    template sets it; the handler's blanket `no-store` otherwise."""
    env = d.resource("PredictFunction")["Properties"]["Environment"]["Variables"]
    secs = env.get("MODEL_CACHE_SECS")
    return "no-store" if secs is None else f"public, max-age={secs}"


def model_behaviour_ttls(d: Deployed) -> tuple[int, int, int]:
    dist = d.resource("Distribution")["Properties"]["DistributionConfig"]
    behaviours = {b["PathPattern"]: b for b in dist.get("CacheBehaviors", [])}
    require("/model" in behaviours, "no CloudFront behaviour for /model")
    require(
        dist["DefaultCacheBehavior"]["CachePolicyId"] == CACHING_DISABLED
        and behaviours.get("/predict*", {}).get("CachePolicyId") == CACHING_DISABLED,
        "POST /predict and the default behaviour must not be cached",
    )
    policy_ref = behaviours["/model"]["CachePolicyId"]
    lid = policy_ref[len("<Ref ") : -1] if str(policy_ref).startswith("<Ref ") else None
    require(lid is not None, f"/model uses cache policy {policy_ref}, not the template's own")
    cfg = d.resource(lid)["Properties"]["CachePolicyConfig"]
    return tuple(int(cfg[k]) for k in ("MinTTL", "DefaultTTL", "MaxTTL"))  # type: ignore[return-value]


@check("4. GET /model is cached at the edge for ModelCacheSeconds; errors are not")
def model_is_cached(tpl: dict, _: Path) -> None:
    d = Deployed(tpl)
    lo, default, hi = model_behaviour_ttls(d)
    header = model_cache_control(d)
    ttl = edge_ttl(header, lo, default, hi)
    require(ttl == 60, f"GET /model answered with `{header}` stays {ttl} s at the edge, not 60 s")
    # An error (503 before the first model, 500) says no-store and must not stick.
    require(edge_ttl("no-store", lo, default, hi) == 0, f"MinTTL {lo} overrides no-store on errors")
    # The parameter drives both ends.
    off = Deployed(tpl, {"ModelCacheSeconds": "0"})
    lo, default, hi = model_behaviour_ttls(off)
    require(edge_ttl(model_cache_control(off), lo, default, hi) == 0, "ModelCacheSeconds=0 still caches")
    longer = Deployed(tpl, {"ModelCacheSeconds": "300"})
    lo, default, hi = model_behaviour_ttls(longer)
    require(edge_ttl(model_cache_control(longer), lo, default, hi) == 300, "ModelCacheSeconds=300 ignored")


@check("5. training refuses uploads larger than its memory can hold (template side)")
def upload_cap(tpl: dict, _: Path) -> None:
    d = Deployed(tpl)
    train = d.resource("TrainFunction")["Properties"]
    cap = train["Environment"]["Variables"].get("MAX_UPLOAD_MB")
    require(cap is not None, "TrainFunction has no MAX_UPLOAD_MB")
    require(
        int(cap) * 2.2 <= int(train["MemorySize"]),
        f"MAX_UPLOAD_MB={cap} with {train['MemorySize']} MB: training peaks at 2.2-3x the CSV size",
    )


def env_filter_level(spec: str, target: str) -> int:
    """Most verbose level `tracing_subscriber::EnvFilter` lets through for `target` (0 off .. 5
    trace): the longest matching target directive (a string prefix) wins over the bare level."""
    levels = {"off": 0, "error": 1, "warn": 2, "info": 3, "debug": 4, "trace": 5}
    best: tuple[int, int] | None = None  # (prefix length, level)
    default = None
    for directive in spec.split(","):
        directive = directive.strip()
        if not directive:
            continue
        if "=" in directive:
            name, level = directive.split("=", 1)
            if target.startswith(name) and (best is None or len(name) > best[0]):
                best = (len(name), levels[level.lower()])
        elif directive.lower() in levels:
            default = levels[directive.lower()]
    if best is not None:
        return best[1]
    return 1 if default is None else default  # EnvFilter's default is error


SECRET_TARGETS = [
    "aws_sigv4::http_request::sign",
    "aws_smithy_runtime::client::orchestrator",
    "aws_smithy_runtime_api::client::http",
    "aws_config::imds",
    "hyper::proto::h1::role",
    "hyper_util::client::legacy",
    "h2::codec::framed_write",
    "rustls::client::hs",
]


@check("6. RUST_LOG never lets the AWS SDK, HTTP or TLS crates trace (template side)")
def sdk_logs_capped(tpl: dict, _: Path) -> None:
    names = {1: "ERROR", 2: "WARN", 3: "INFO", 4: "DEBUG", 5: "TRACE"}
    for level in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR"):
        d = Deployed(tpl, {"LogLevel": level})
        for fn, own in (("TrainFunction", "train::handler"), ("PredictFunction", "predict::handler")):
            spec = str(d.resource(fn)["Properties"]["Environment"]["Variables"].get("RUST_LOG", ""))
            want = {v: k for k, v in names.items()}[level]
            require(
                env_filter_level(spec, own) == want,
                f"LogLevel={level}: {fn} RUST_LOG={spec!r} logs its own code at "
                f"{names.get(env_filter_level(spec, own))}",
            )
            for target in SECRET_TARGETS:
                got = env_filter_level(spec, target)
                require(
                    got <= min(3, want),
                    f"LogLevel={level}: {fn} RUST_LOG={spec!r} lets {target} log at {names[got]}",
                )


@check("7a. a rule rejects FunctionUrlAuthType=NONE with EnableEdge=true")
def rule_rejects_open_url_behind_edge(tpl: dict, _: Path) -> None:
    for auth, edge in itertools.product(["AWS_IAM", "NONE"], ["true", "false"]):
        failures = Deployed(tpl, {"FunctionUrlAuthType": auth, "EnableEdge": edge}).rule_failures()
        if (auth, edge) == ("NONE", "true"):
            require(failures != [], "FunctionUrlAuthType=NONE with EnableEdge=true is accepted")
        else:
            require(failures == [], f"FunctionUrlAuthType={auth} EnableEdge={edge} rejected: {failures}")


@check("7b. every spelling of .csv under data/ triggers training, nothing else does")
def csv_trigger_any_case(tpl: dict, _: Path) -> None:
    d = Deployed(tpl)
    configs = d.resource("DataBucket")["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    filters = []
    for c in configs:
        rules = {r["Name"].lower(): r["Value"] for r in c["Filter"]["S3Key"]["Rules"]}
        require(c["Function"] == "<TrainFunction.Arn>", f"notification to {c['Function']}")
        require(c["Event"] == "s3:ObjectCreated:*", f"notification on {c['Event']}")
        filters.append((rules.get("prefix", ""), rules.get("suffix", "")))
    # S3 refuses overlapping configurations for the same event (prefix and suffix both overlap).
    for (p1, s1), (p2, s2) in itertools.combinations(filters, 2):
        overlap = (p1.startswith(p2) or p2.startswith(p1)) and (s1.endswith(s2) or s2.endswith(s1))
        require(not overlap, f"S3 rejects overlapping filters {p1}*{s1} and {p2}*{s2}")

    def triggers(key: str) -> bool:  # S3 filter matching is case-sensitive
        return any(key.startswith(p) and key.endswith(s) for p, s in filters)

    spellings = ["".join(c) for c in itertools.product("cC", "sS", "vV")]
    for s in spellings:
        require(triggers(f"data/questions.{s}"), f"an upload of data/questions.{s} does not train")
    for key in ["data/questions.json", "data/questions.csv.json", "models/x.csv", "reports/data/q.csv.json"]:
        require(not triggers(key), f"{key} triggers training")


@check("7c. the OAC and cache policy names fit CloudFront's limits for any stack name")
def names_fit(tpl: dict, _: Path) -> None:
    d = Deployed(tpl).with_stack_name(LONG_STACK_NAME)
    oac = d.resource("PredictOriginAccessControl")["Properties"]["OriginAccessControlConfig"]["Name"]
    require(len(oac) <= 64, f"OAC name is {len(oac)} characters with a 128-character stack name: {oac}")
    policy = d.resource("ModelInfoCachePolicy")["Properties"]["CachePolicyConfig"]["Name"]
    require(len(policy) <= 128, f"cache policy name is {len(policy)} characters")
    other = Deployed(tpl).with_stack_name("other")
    other.pseudo["AWS::StackId"] = other.pseudo["AWS::StackId"].replace(STACK_UUID, "0" * 36)
    oac2 = other.resource("PredictOriginAccessControl")["Properties"]["OriginAccessControlConfig"]["Name"]
    require(oac2 != oac, "two stacks in one account would get the same OAC name")


def alarm(d: Deployed, metric: str) -> dict | None:
    for res in d.of_type("AWS::CloudWatch::Alarm").values():
        if res["Properties"].get("MetricName") == metric:
            return res["Properties"]
    return None


@check("7d. alarms on dropped async events, failed DLQ deliveries and warm-instance spill-over")
def alarms(tpl: dict, _: Path) -> None:
    d = Deployed(tpl)
    for metric in ("AsyncEventsDropped", "DestinationDeliveryFailures"):
        a = alarm(d, metric)
        require(a is not None, f"no alarm on {metric}")
        dims = {x["Name"]: x["Value"] for x in a["Dimensions"]}
        require(a["Namespace"] == "AWS/Lambda" and dims == {"FunctionName": "<Ref TrainFunction>"},
                f"{metric} alarm watches {a['Namespace']} {dims}, not TrainFunction")
    a = alarm(d, "ProvisionedConcurrencySpilloverInvocations")
    require(a is not None, "no alarm on ProvisionedConcurrencySpilloverInvocations")
    dims = {x["Name"]: x["Value"] for x in a["Dimensions"]}
    require(dims == {"FunctionName": "<Ref PredictFunction>", "Resource": "<Ref PredictFunction>:live"},
            f"spill-over alarm dimensions {dims}: metrics of the `live` alias need FunctionName + Resource")
    require(alarm(Deployed(tpl, {"WarmInstances": "0"}), "ProvisionedConcurrencySpilloverInvocations") is None,
            "spill-over alarm without warm instances")
    topic = "arn:aws:sns:us-east-1:123456789012:ops"
    for res in Deployed(tpl, {"AlarmTopicArn": topic}).of_type("AWS::CloudWatch::Alarm").values():
        require(res["Properties"].get("AlarmActions") == [topic], f"alarm without the topic: {res}")


@check("7e. X-Ray active on both functions with the role to write traces; metrics namespace passed on")
def tracing_active(tpl: dict, _: Path) -> None:
    d = Deployed(tpl, {"MetricsNamespace": "Ops/tagger"})
    for fn in ("TrainFunction", "PredictFunction"):
        props = d.resource(fn)["Properties"]
        require(props.get("TracingConfig") == {"Mode": "Active"}, f"{fn} tracing: {props.get('TracingConfig')}")
        role = d.resource(f"{fn}Role")["Properties"]
        # SAM attaches the managed X-Ray write policy to the role it generates for Tracing: Active.
        xray = {"arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess", "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"}
        require(bool(xray & set(role.get("ManagedPolicyArns", []))),
                f"{fn}Role cannot write traces: {role.get('ManagedPolicyArns')}")
        env = props["Environment"]["Variables"]
        require(env.get("METRICS_NAMESPACE") == "Ops/tagger", f"{fn} METRICS_NAMESPACE: {env.get('METRICS_NAMESPACE')}")


EMF_ALARMS = {
    # metric: (function it watches, statistic)
    "Http5xx": ("PredictFunction", ("Statistic", "Sum")),
    "Latency": ("PredictFunction", ("ExtendedStatistic", "p99")),
    "Failed": ("TrainFunction", ("Statistic", "Sum")),
    "Rejected": ("TrainFunction", ("Statistic", "Sum")),
}


@check("7f. alarms on the functions' own metrics (5xx, p99 latency, failed/rejected training), throttles and the DLQ; a dashboard of them")
def emf_alarms_and_dashboard(tpl: dict, _: Path) -> None:
    import json

    d = Deployed(tpl, {"MetricsNamespace": "Ops/tagger"})
    for metric, (fn, (stat_key, stat)) in EMF_ALARMS.items():
        a = alarm(d, metric)
        require(a is not None, f"no alarm on {metric}")
        dims = {x["Name"]: x["Value"] for x in a["Dimensions"]}
        require(a["Namespace"] == "Ops/tagger" and dims == {"Function": f"<Ref {fn}>"},
                f"{metric} alarm watches {a['Namespace']} {dims}: the EMF documents carry Function=<function name>")
        require(a.get(stat_key) == stat, f"{metric} alarm statistic {a.get(stat_key)}, want {stat}")
    lat = alarm(d, "Latency")
    require(lat["Threshold"] == "1000" and lat.get("Unit") == "Milliseconds", f"latency alarm {lat}")
    throttled = {
        a["Properties"]["Dimensions"][0]["Value"]
        for a in d.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "Throttles"
    }
    require(throttled == {"<Ref TrainFunction>", "<Ref PredictFunction>"}, f"throttle alarms on {throttled}")
    require(alarm(d, "ApproximateNumberOfMessagesVisible") is not None, "no alarm on the dead-letter queue")

    boards = d.of_type("AWS::CloudWatch::Dashboard")
    require(len(boards) == 1, f"{len(boards)} dashboards")
    (board,) = boards.values()
    body = json.loads(board["Properties"]["DashboardBody"])
    text = json.dumps(body)
    for metric in [*EMF_ALARMS, "Requests", "TagsPerAnswer", "NoTagAnswers", "ExplainRequests",
                   "ColdStart", "ModelReloads", "ModelReloadFailures", "CandidateMicroF1",
                   "LiveMicroF1", "RowsRead", "RowsSkipped", "TrainingSeconds", "BadData", "Promoted"]:
        require(f'"{metric}"' in text or f'\\"{metric}\\"' in text, f"the dashboard does not show {metric}")
    arns = next(w["properties"]["alarms"] for w in body["widgets"] if w["type"] == "alarm")
    every = {f"<{lid}.Arn>" for lid in d.of_type("AWS::CloudWatch::Alarm")} - {
        "<PredictSpilloverAlarm.Arn>", "<TrainAsyncEventsDroppedAlarm.Arn>", "<TrainDestinationDeliveryFailuresAlarm.Arn>"}
    require(every <= set(arns), f"alarms missing from the dashboard: {sorted(every - set(arns))}")


def main(argv: list[str]) -> int:
    template = Path(argv[1]) if len(argv) > 1 else HERE / "template.yaml"
    samconfig = Path(argv[2]) if len(argv) > 2 else HERE / "samconfig.toml"
    tpl = load_template(template)
    failed = 0
    for title, fn in CHECKS:
        try:
            fn(tpl, samconfig)
            print(f"ok: {title}")
        except Failed as e:
            failed += 1
            print(f"FAILED: {title}\n    {e}")
        except Exception as e:  # a template the checks cannot even read counts as a failure
            failed += 1
            print(f"FAILED: {title}\n    {type(e).__name__}: {e}")
    print(f"{len(CHECKS) - failed}/{len(CHECKS)} transformed-template checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
