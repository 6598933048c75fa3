//! Wiring checks on the deployment template (`infra/template.yaml`).
//!
//! cfn-lint, `sam validate` and checkov (run by `infra/check.sh`) check that the template is
//! valid and follows general good practice; they cannot know this project's invariants. These
//! tests pin them: the training trigger watches exactly the prefix the training function reads,
//! training can never write under `data/` (its own uploads would retrigger it), prediction is
//! read-only, the warm instance sits on the published alias, the Function URL is not public by
//! default, and both functions run the arm64 `provided.al2023` binaries cargo-lambda builds.
//!
//! CloudFormation short tags (`!Ref`, `!Sub`, `!GetAtt`, `!If`) arrive as
//! `serde_yaml::Value::Tagged`; the long forms (`{"Ref": ..}`, `{"Fn::Sub": ..}`) are handled too.

use serde_yaml::{Mapping, Value};

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");

/// Actions that create, change or remove objects (glob-matched against the policy's action).
const WRITE_ACTIONS: &[&str] = &[
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectTagging",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:RestoreObject",
    "s3:AbortMultipartUpload",
];

fn template() -> Value {
    let text =
        std::fs::read_to_string(TEMPLATE).unwrap_or_else(|e| panic!("cannot read {TEMPLATE}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{TEMPLATE} is not YAML: {e}"))
}

fn resource<'a>(tpl: &'a Value, name: &str) -> &'a Value {
    tpl.get("Resources")
        .and_then(|r| r.get(name))
        .unwrap_or_else(|| panic!("resource {name} missing from the template"))
}

fn props<'a>(tpl: &'a Value, name: &str) -> &'a Value {
    resource(tpl, name)
        .get("Properties")
        .unwrap_or_else(|| panic!("resource {name} has no Properties"))
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The intrinsic function a value applies, if any, as `("Ref", argument)` (short or long form).
fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let name = if name == "Ref" || name == "Condition" {
                name.to_string()
            } else {
                format!("Fn::{name}")
            };
            Some((name, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            (k == "Ref" || k.starts_with("Fn::")).then(|| (k.to_string(), arg))
        }
        _ => None,
    }
}

/// A policy resource as a string: literals as-is, `!Ref X` as `${X}`, `!GetAtt X.Arn` as
/// `${X.Arn}`, `!Sub` as its template string, `!Join` joined. Enough to see which keys it covers.
fn render(v: &Value) -> String {
    // Intrinsics first: serde_yaml's `as_str` looks through tags (`!Ref X` would read as "X").
    if let (Value::String(s), None) = (v, intrinsic(v)) {
        return s.clone();
    }
    match intrinsic(v) {
        Some((f, arg)) if f == "Ref" => format!("${{{}}}", arg.as_str().unwrap_or("?")),
        Some((f, arg)) if f == "Fn::GetAtt" => match arg {
            Value::Sequence(parts) => {
                let parts: Vec<String> = parts.iter().map(render).collect();
                format!("${{{}}}", parts.join("."))
            }
            other => format!("${{{}}}", other.as_str().unwrap_or("?")),
        },
        Some((f, arg)) if f == "Fn::Sub" => match arg {
            Value::Sequence(parts) => parts.first().map(render).unwrap_or_default(),
            other => render(other),
        },
        Some((f, Value::Sequence(parts))) if f == "Fn::Join" && parts.len() == 2 => {
            let sep = parts[0].as_str().unwrap_or("");
            let items: Vec<String> = parts[1]
                .as_sequence()
                .map(|s| s.iter().map(render).collect())
                .unwrap_or_default();
            items.join(sep)
        }
        // An unknown construct could hide anything: make it cover everything.
        _ => "*".to_string(),
    }
}

/// One value or a list of values, as a list.
fn one_or_many(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(other) => vec![other],
        None => Vec::new(),
    }
}

/// Case-insensitive glob match with `*` and `?`, as IAM matches actions and resources.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn is_write_action(action: &str) -> bool {
    let lower = action.to_ascii_lowercase();
    lower.starts_with("s3:put")
        || lower.starts_with("s3:delete")
        || WRITE_ACTIONS.iter().any(|w| glob(action, w))
}

/// The object-key pattern of an S3 resource: what follows the bucket (`${DataBucket.Arn}/models/*`
/// -> `models/*`); `*` for a resource that is a bare wildcard.
fn key_pattern(resource: &str) -> Option<String> {
    if resource == "*" {
        return Some("*".to_string());
    }
    // Skip the scheme part of a literal ARN (arn:aws:s3:::bucket/key) or the ${...} of a reference.
    let after_bucket = match resource.find("}/") {
        Some(i) => &resource[i + 2..],
        None => {
            let tail = resource.rsplit(":::").next().unwrap_or(resource);
            tail.split_once('/')?.1
        }
    };
    Some(after_bucket.to_string())
}

fn may_cover(pattern: &str, prefix: &str) -> bool {
    pattern.starts_with(prefix) || glob(pattern, &format!("{prefix}example.csv"))
}

/// A flattened Allow/Deny statement.
#[derive(Debug)]
struct Statement {
    effect: String,
    actions: Vec<String>,
    resources: Vec<String>,
}

fn statements_of(doc: &Value) -> Vec<Statement> {
    one_or_many(doc.get("Statement"))
        .into_iter()
        .map(|s| Statement {
            effect: str_at(s, "Effect").unwrap_or("").to_string(),
            actions: one_or_many(s.get("Action"))
                .into_iter()
                .map(render)
                .collect(),
            resources: one_or_many(s.get("Resource"))
                .into_iter()
                .map(render)
                .collect(),
        })
        .collect()
}

/// Every statement a function's role gets: inline `Policies` (documents, SAM policy templates,
/// managed policy names) plus stand-alone `AWS::IAM::Policy` resources attached to the role SAM
/// generates (`<Function>Role`).
fn function_statements(tpl: &Value, function: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    for policy in one_or_many(props(tpl, function).get("Policies")) {
        match policy {
            // A managed policy: only read-only ones are acceptable here, model others as S3 writes.
            Value::String(name) if !name.contains("ReadOnly") => out.push(Statement {
                effect: "Allow".into(),
                actions: vec![format!("managed:{name}"), "s3:*".into()],
                resources: vec!["*".into()],
            }),
            Value::Mapping(m) if m.contains_key("Statement") => out.extend(statements_of(policy)),
            Value::Mapping(m) => {
                // SAM policy templates, e.g. S3CrudPolicy: {BucketName: ..}.
                for (k, _) in m {
                    let name = k.as_str().unwrap_or("?");
                    let actions = if name.contains("Read") {
                        vec!["s3:GetObject".to_string()]
                    } else {
                        vec![format!("template:{name}"), "s3:*".to_string()]
                    };
                    out.push(Statement {
                        effect: "Allow".into(),
                        actions,
                        resources: vec!["*".into()],
                    });
                }
            }
            _ => {}
        }
    }
    let role = format!("{function}Role");
    let resources = tpl
        .get("Resources")
        .and_then(Value::as_mapping)
        .expect("template has Resources");
    for (_, r) in resources {
        let kind = str_at(r, "Type").unwrap_or("");
        if kind != "AWS::IAM::Policy" && kind != "AWS::IAM::ManagedPolicy" {
            continue;
        }
        let Some(p) = r.get("Properties") else {
            continue;
        };
        let attached = one_or_many(p.get("Roles"))
            .into_iter()
            .any(|v| render(v) == format!("${{{role}}}"));
        if attached {
            if let Some(doc) = p.get("PolicyDocument") {
                out.extend(statements_of(doc));
            }
        }
    }
    out
}

fn allows(statements: &[Statement], action: &str, key: &str) -> bool {
    statements.iter().any(|s| {
        s.effect == "Allow"
            && s.actions.iter().any(|a| glob(a, action))
            && s.resources
                .iter()
                .filter_map(|r| key_pattern(r))
                .any(|p| glob(&p, key))
    })
}

/// The parameter's `Default` when `v` is `!Ref <parameter>`.
fn parameter_default<'a>(tpl: &'a Value, v: &Value) -> Option<&'a Value> {
    let (f, arg) = intrinsic(v)?;
    if f != "Ref" {
        return None;
    }
    tpl.get("Parameters")?.get(arg.as_str()?)?.get("Default")
}

/// Compares like CloudFormation does: parameters are strings, so `1` equals `"1"`.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Evaluates a condition expression with every parameter at its default.
fn condition_holds(tpl: &Value, v: &Value) -> bool {
    match intrinsic(v) {
        Some((f, Value::Sequence(args))) if f == "Fn::Equals" && args.len() == 2 => {
            let a = scalar_text(&with_defaults(tpl, &args[0]));
            let b = scalar_text(&with_defaults(tpl, &args[1]));
            a.is_some() && a == b
        }
        Some((f, Value::Sequence(args))) if f == "Fn::Not" && args.len() == 1 => {
            !condition_holds(tpl, &args[0])
        }
        Some((f, Value::Sequence(args))) if f == "Fn::And" => {
            args.iter().all(|a| condition_holds(tpl, a))
        }
        Some((f, Value::Sequence(args))) if f == "Fn::Or" => {
            args.iter().any(|a| condition_holds(tpl, a))
        }
        Some((f, Value::String(name))) if f == "Condition" => named_condition(tpl, name),
        _ => panic!("cannot evaluate condition {v:?}"),
    }
}

fn named_condition(tpl: &Value, name: &str) -> bool {
    let cond = tpl
        .get("Conditions")
        .and_then(|c| c.get(name))
        .unwrap_or_else(|| panic!("condition {name} not defined"));
    condition_holds(tpl, cond)
}

/// `v` as deployed with default parameters: `!Ref <parameter>` becomes its default and
/// `!If [cond, a, b]` its chosen branch; `None` for `AWS::NoValue` (the property is left out).
fn resolved(tpl: &Value, v: &Value) -> Option<Value> {
    let out = with_defaults(tpl, v);
    match intrinsic(&out) {
        Some((f, arg)) if f == "Ref" && arg.as_str() == Some("AWS::NoValue") => None,
        _ => Some(out),
    }
}

fn with_defaults(tpl: &Value, v: &Value) -> Value {
    if let Some(default) = parameter_default(tpl, v) {
        return default.clone();
    }
    if let Some((f, Value::Sequence(args))) = intrinsic(v) {
        if f == "Fn::If" && args.len() == 3 {
            let name = args[0].as_str().expect("!If names a condition");
            let branch = if named_condition(tpl, name) {
                &args[1]
            } else {
                &args[2]
            };
            return with_defaults(tpl, branch);
        }
    }
    match v {
        Value::Mapping(m) if intrinsic(v).is_none() => Value::Mapping(
            m.iter()
                .map(|(k, x)| (k.clone(), with_defaults(tpl, x)))
                .collect::<Mapping>(),
        ),
        Value::Sequence(s) => Value::Sequence(s.iter().map(|x| with_defaults(tpl, x)).collect()),
        other => other.clone(),
    }
}

#[test]
fn train_trigger_watches_the_data_prefix_and_csv_suffix_only() {
    let tpl = template();
    let train = props(&tpl, "TrainFunction");
    let data_prefix = train
        .get("Environment")
        .and_then(|e| e.get("Variables"))
        .and_then(|v| str_at(v, "DATA_PREFIX"))
        .expect("TrainFunction sets DATA_PREFIX");
    assert_eq!(
        data_prefix, "data/",
        "the bucket layout puts uploads under data/"
    );

    let events = train
        .get("Events")
        .and_then(Value::as_mapping)
        .expect("TrainFunction has Events");
    let s3_events: Vec<&Value> = events
        .values()
        .filter(|e| str_at(e, "Type") == Some("S3"))
        .collect();
    assert!(!s3_events.is_empty(), "TrainFunction has an S3 trigger");

    // S3 suffix filters are case-sensitive and training accepts any case of `.csv`, so there is
    // one trigger per spelling; every one watches DATA_PREFIX for created objects.
    let mut suffixes = Vec::new();
    for event in s3_events {
        let p = event.get("Properties").expect("S3 event Properties");
        assert_eq!(render(p.get("Bucket").expect("Bucket")), "${DataBucket}");
        let kinds: Vec<String> = one_or_many(p.get("Events"))
            .into_iter()
            .map(render)
            .collect();
        assert_eq!(kinds, ["s3:ObjectCreated:*"]);
        let rules = p
            .get("Filter")
            .and_then(|f| f.get("S3Key"))
            .and_then(|k| k.get("Rules"))
            .and_then(Value::as_sequence)
            .expect("S3 event has Filter.S3Key.Rules");
        let rule = |name: &str| {
            rules
                .iter()
                .find(|r| str_at(r, "Name").map(str::to_ascii_lowercase).as_deref() == Some(name))
                .and_then(|r| str_at(r, "Value"))
        };
        assert_eq!(
            rule("prefix"),
            Some(data_prefix),
            "prefix filter = DATA_PREFIX"
        );
        let suffix =
            rule("suffix").expect("a suffix filter: settings .json uploads must not trigger");
        assert!(
            suffix.eq_ignore_ascii_case(".csv"),
            "suffix {suffix:?} is not a spelling of .csv"
        );
        suffixes.push(suffix.to_string());
    }
    suffixes.sort();
    suffixes.dedup();
    assert_eq!(
        suffixes.len(),
        8,
        "one trigger per spelling of .csv (c/C, s/S, v/V), found {suffixes:?}"
    );
}

#[test]
fn train_writes_only_models_and_reports_never_data() {
    let tpl = template();
    let statements = function_statements(&tpl, "TrainFunction");
    assert!(!statements.is_empty(), "TrainFunction has S3 permissions");

    for s in statements.iter().filter(|s| s.effect == "Allow") {
        if !s.actions.iter().any(|a| is_write_action(a)) {
            continue;
        }
        for r in &s.resources {
            // A write on the bucket itself (no key) or on an unknown construct counts as "*".
            let pattern = key_pattern(r).unwrap_or_else(|| "*".to_string());
            assert!(
                !may_cover(&pattern, "data/"),
                "TrainFunction may write under data/ via {:?} on {r}",
                s.actions
            );
            assert!(
                pattern.starts_with("models/") || pattern.starts_with("reports/"),
                "TrainFunction writes outside models/ and reports/: {:?} on {r}",
                s.actions
            );
        }
    }

    // What it must be able to do, so the checks above cannot pass on an empty policy.
    assert!(allows(&statements, "s3:GetObject", "data/questions.csv"));
    assert!(allows(&statements, "s3:GetObject", "models/latest.json"));
    assert!(allows(&statements, "s3:PutObject", "models/v1/model.bin"));
    assert!(allows(
        &statements,
        "s3:PutObject",
        "reports/data/questions.csv.json"
    ));
    assert!(!allows(&statements, "s3:PutObject", "data/questions.csv"));
}

#[test]
fn predict_policies_grant_no_put_or_delete() {
    let tpl = template();
    let statements = function_statements(&tpl, "PredictFunction");
    for s in statements.iter().filter(|s| s.effect == "Allow") {
        for a in &s.actions {
            assert!(
                !is_write_action(a),
                "PredictFunction is read-only, found {a} on {:?}",
                s.resources
            );
        }
    }
    assert!(allows(&statements, "s3:GetObject", "models/latest.json"));
    assert!(!allows(&statements, "s3:GetObject", "data/questions.csv"));
}

#[test]
fn provisioned_concurrency_sits_on_the_predict_alias() {
    let tpl = template();
    let predict = props(&tpl, "PredictFunction");
    let alias = str_at(predict, "AutoPublishAlias").unwrap_or("");
    assert!(
        !alias.is_empty(),
        "provisioned concurrency needs AutoPublishAlias"
    );

    let pcc = predict
        .get("ProvisionedConcurrencyConfig")
        .and_then(|v| resolved(&tpl, v))
        .expect("PredictFunction has ProvisionedConcurrencyConfig with default parameters");
    let warm = pcc
        .get("ProvisionedConcurrentExecutions")
        .and_then(Value::as_u64);
    assert_eq!(warm, Some(1), "one warm instance by default");

    assert!(
        props(&tpl, "TrainFunction")
            .get("ProvisionedConcurrencyConfig")
            .is_none(),
        "training is event-driven and must not pay for idle instances"
    );
}

#[test]
fn training_runs_one_at_a_time_by_default() {
    let tpl = template();
    let reserved = props(&tpl, "TrainFunction")
        .get("ReservedConcurrentExecutions")
        .and_then(|v| resolved(&tpl, v))
        .and_then(|v| v.as_u64());
    assert_eq!(reserved, Some(1));
}

#[test]
fn function_url_is_not_public_by_default() {
    let tpl = template();
    let url = props(&tpl, "PredictFunction")
        .get("FunctionUrlConfig")
        .expect("PredictFunction has FunctionUrlConfig");
    let auth = url
        .get("AuthType")
        .and_then(|a| resolved(&tpl, a))
        .expect("AuthType");
    assert_eq!(auth.as_str(), Some("AWS_IAM"));
}

#[test]
fn both_functions_are_arm64_al2023_cargo_lambda_builds() {
    let tpl = template();
    for (function, binary) in [("TrainFunction", "train"), ("PredictFunction", "predict")] {
        let p = props(&tpl, function);
        assert_eq!(str_at(p, "Runtime"), Some("provided.al2023"), "{function}");
        assert_eq!(str_at(p, "Handler"), Some("bootstrap"), "{function}");
        let arch: Vec<String> = one_or_many(p.get("Architectures"))
            .into_iter()
            .map(render)
            .collect();
        assert_eq!(arch, ["arm64"], "{function}");
        let meta = resource(&tpl, function).get("Metadata").expect("Metadata");
        assert_eq!(
            str_at(meta, "BuildMethod"),
            Some("rust-cargolambda"),
            "{function}"
        );
        let built = meta
            .get("BuildProperties")
            .and_then(|b| str_at(b, "Binary"));
        assert_eq!(built, Some(binary), "{function}");
    }
}

#[test]
fn cloudfront_may_invoke_only_through_its_own_distribution() {
    let tpl = template();
    let oac = props(&tpl, "PredictOriginAccessControl")
        .get("OriginAccessControlConfig")
        .expect("OriginAccessControlConfig");
    assert_eq!(str_at(oac, "OriginAccessControlOriginType"), Some("lambda"));
    assert_eq!(str_at(oac, "SigningBehavior"), Some("always"));
    assert_eq!(str_at(oac, "SigningProtocol"), Some("sigv4"));

    let resources = tpl
        .get("Resources")
        .and_then(Value::as_mapping)
        .expect("Resources");
    let cloudfront_permissions: Vec<&Value> = resources
        .values()
        .filter(|r| str_at(r, "Type") == Some("AWS::Lambda::Permission"))
        .filter_map(|r| r.get("Properties"))
        .filter(|p| str_at(p, "Principal") == Some("cloudfront.amazonaws.com"))
        .collect();
    let actions: Vec<&str> = cloudfront_permissions
        .iter()
        .filter_map(|p| str_at(p, "Action"))
        .collect();
    assert!(actions.contains(&"lambda:InvokeFunctionUrl"), "{actions:?}");
    for p in &cloudfront_permissions {
        let source = p.get("SourceArn").map(render).unwrap_or_default();
        assert!(
            source.contains(":distribution/${Distribution}"),
            "CloudFront permission not scoped to this distribution: {source:?}"
        );
    }
}

#[test]
fn bucket_refuses_plain_http() {
    let tpl = template();
    let doc = props(&tpl, "DataBucketPolicy")
        .get("PolicyDocument")
        .expect("PolicyDocument");
    let denies_http = one_or_many(doc.get("Statement")).into_iter().any(|s| {
        str_at(s, "Effect") == Some("Deny")
            && s.get("Condition")
                .and_then(|c| c.get("Bool"))
                .and_then(|b| b.get("aws:SecureTransport"))
                .map(|v| v.as_str() == Some("false") || v.as_bool() == Some(false))
                .unwrap_or(false)
    });
    assert!(
        denies_http,
        "bucket policy must deny aws:SecureTransport=false"
    );
}

#[test]
fn glob_and_key_pattern_helpers_match_iam_semantics() {
    assert!(glob("s3:*", "s3:PutObject"));
    assert!(glob("s3:Put*", "s3:putobject"));
    assert!(!glob("s3:Get*", "s3:PutObject"));
    assert!(glob("*", "data/x.csv"));
    assert!(glob("d*/*", "data/x.csv"));
    assert!(!glob("models/*", "data/x.csv"));
    assert_eq!(
        key_pattern("${DataBucket.Arn}/models/*").as_deref(),
        Some("models/*")
    );
    assert_eq!(
        key_pattern("arn:aws:s3:::bucket/reports/*").as_deref(),
        Some("reports/*")
    );
    assert_eq!(key_pattern("${DataBucket.Arn}"), None);
    assert!(is_write_action("s3:*"));
    assert!(is_write_action("s3:DeleteObject"));
    assert!(!is_write_action("s3:GetObject"));
}

/// The metric names and the `Function` dimension the alarms watch are the ones the code writes:
/// a rename on either side fails here, not as an alarm that silently never fires.
const PREDICT_METRICS_SRC: &str = include_str!("../../functions/predict/src/metrics.rs");
const TRAIN_HANDLER_SRC: &str = include_str!("../../functions/train/src/handler.rs");
const EMF_SRC: &str = include_str!("../../shared/telemetry/src/emf.rs");

#[test]
fn both_functions_are_traced_and_alarms_watch_the_metrics_they_write() {
    let tpl = template();
    for function in ["TrainFunction", "PredictFunction"] {
        let p = props(&tpl, function);
        assert_eq!(str_at(p, "Tracing"), Some("Active"), "{function}");
        let ns = p
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(|v| v.get("METRICS_NAMESPACE"))
            .unwrap_or_else(|| panic!("{function} has no METRICS_NAMESPACE"));
        assert_eq!(render(ns), "${MetricsNamespace}", "{function}");
    }
    assert!(
        EMF_SRC.contains(r#"pub const FUNCTION: &str = "Function";"#),
        "the dimension the alarms name"
    );
    for (alarm, metric, function, source) in [
        (
            "PredictHttp5xxAlarm",
            "Http5xx",
            "PredictFunction",
            PREDICT_METRICS_SRC,
        ),
        (
            "PredictLatencyAlarm",
            "Latency",
            "PredictFunction",
            PREDICT_METRICS_SRC,
        ),
        (
            "TrainFailedAlarm",
            "Failed",
            "TrainFunction",
            TRAIN_HANDLER_SRC,
        ),
        (
            "TrainRejectedAlarm",
            "Rejected",
            "TrainFunction",
            TRAIN_HANDLER_SRC,
        ),
    ] {
        let a = props(&tpl, alarm);
        assert_eq!(str_at(a, "MetricName"), Some(metric), "{alarm}");
        assert!(
            source.contains(&format!("\"{metric}\"")),
            "{alarm} watches {metric}, which the function does not write"
        );
        assert_eq!(
            render(a.get("Namespace").expect("Namespace")),
            "${MetricsNamespace}",
            "{alarm}"
        );
        let dims = one_or_many(a.get("Dimensions"));
        assert_eq!(
            dims.len(),
            1,
            "{alarm}: only Function, as the documents publish it"
        );
        assert_eq!(str_at(dims[0], "Name"), Some("Function"), "{alarm}");
        assert_eq!(
            render(dims[0].get("Value").expect("Value")),
            format!("${{{function}}}"),
            "{alarm}"
        );
    }
    assert_eq!(
        str_at(props(&tpl, "PredictLatencyAlarm"), "ExtendedStatistic"),
        Some("p99")
    );
    assert_eq!(
        resource(&tpl, "Dashboard")
            .get("Type")
            .and_then(Value::as_str),
        Some("AWS::CloudWatch::Dashboard")
    );
}
