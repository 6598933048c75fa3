//! CloudWatch metrics as [Embedded Metric Format] documents: one JSON line per unit of work (a
//! request, an upload) that CloudWatch Logs turns into metrics, with no API call and no agent.
//!
//! Each [`Document`] carries the `Function` dimension (the Lambda function's name) and any other
//! dimensions, metrics and properties; each metric names the dimension sets it is published
//! under (always with `Function` first), so a label-free figure for an alarm and a per-route or
//! per-version breakdown come from the same line.
//!
//! ```
//! use tagger_telemetry::emf::{Metrics, Unit};
//! let (metrics, captured) = Metrics::memory("Tagger", "predict");
//! let mut doc = metrics.document();
//! doc.dimension("Route", "/predict");
//! doc.metric("Requests", Unit::Count, 1.0, &[&[], &["Route"]]);
//! metrics.emit(&doc);
//! let lines = captured.documents();
//! assert_eq!(lines[0]["Requests"], 1.0);
//! tagger_telemetry::emf::validate(&lines[0]).unwrap();
//! ```
//!
//! [Embedded Metric Format]: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// Default CloudWatch namespace (`METRICS_NAMESPACE` overrides it).
pub const DEFAULT_NAMESPACE: &str = "Tagger";
/// The dimension every metric carries: the function's name.
pub const FUNCTION: &str = "Function";
/// At most this many values per metric in one document (the format's limit).
pub const MAX_VALUES: usize = 100;
/// At most this many dimensions in one dimension set (the format's limit).
pub const MAX_DIMENSIONS: usize = 30;
/// At most this many metrics in one directive (the format's limit).
pub const MAX_METRICS: usize = 100;

/// The CloudWatch units used here (the format accepts the `MetricDatum` unit names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
    /// A ratio or score (micro-F1).
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::None => "None",
        }
    }
}

/// Where finished documents go: one whole line per write.
type Sink = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// The metrics writer a function holds; cheap to clone. [`Metrics::off`] writes nothing and
/// costs a branch.
#[derive(Clone)]
pub struct Metrics {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    namespace: String,
    function: String,
    sink: Sink,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("Metrics(off)"),
            Some(i) => f
                .debug_struct("Metrics")
                .field("namespace", &i.namespace)
                .field("function", &i.function)
                .finish(),
        }
    }
}

/// Equal when both are off, or write the same namespace and function to the same sink.
impl PartialEq for Metrics {
    fn eq(&self, other: &Self) -> bool {
        match (&self.inner, &other.inner) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.namespace == b.namespace
                    && a.function == b.function
                    && Arc::ptr_eq(&a.sink, &b.sink)
            }
            _ => false,
        }
    }
}

impl Eq for Metrics {}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::off()
    }
}

impl Metrics {
    pub fn off() -> Metrics {
        Metrics { inner: None }
    }

    /// Documents to standard output, where Lambda sends them to CloudWatch Logs.
    pub fn stdout(namespace: impl Into<String>, function: impl Into<String>) -> Metrics {
        Metrics::with_sink(namespace, function, |line| {
            // One write of the whole line under the lock, so log lines never interleave with it.
            let _ = std::io::stdout().lock().write_all(line);
        })
    }

    /// Documents to any function of the finished line (with its newline).
    pub fn with_sink(
        namespace: impl Into<String>,
        function: impl Into<String>,
        sink: impl Fn(&[u8]) + Send + Sync + 'static,
    ) -> Metrics {
        Metrics {
            inner: Some(Arc::new(Inner {
                namespace: namespace.into(),
                function: function.into(),
                sink: Arc::new(sink),
            })),
        }
    }

    /// Documents kept in memory, for tests and tools that read them back.
    pub fn memory(
        namespace: impl Into<String>,
        function: impl Into<String>,
    ) -> (Metrics, Captured) {
        let captured = Captured::default();
        let buf = Arc::clone(&captured.0);
        let metrics = Metrics::with_sink(namespace, function, move |line| {
            buf.lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(line)
        });
        (metrics, captured)
    }

    /// From the environment: `METRICS` (`emf` or `off`; default `emf` inside Lambda, `off`
    /// elsewhere) and `METRICS_NAMESPACE` (default [`DEFAULT_NAMESPACE`]); the `Function`
    /// dimension is `AWS_LAMBDA_FUNCTION_NAME`, else `default_function`.
    pub fn from_lookup(
        env: impl Fn(&str) -> Option<String>,
        default_function: &str,
    ) -> Result<Metrics, (&'static str, String)> {
        let get = |k: &str| {
            env(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let function = get("AWS_LAMBDA_FUNCTION_NAME");
        let on = match get("METRICS").map(|v| v.to_ascii_lowercase()).as_deref() {
            None => function.is_some(),
            Some("emf") => true,
            Some("off") => false,
            Some(other) => {
                return Err(("METRICS", format!("expected `emf` or `off`, got {other:?}")))
            }
        };
        if !on {
            return Ok(Metrics::off());
        }
        let namespace = get("METRICS_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        if namespace.len() > 255 || namespace.starts_with(':') {
            return Err((
                "METRICS_NAMESPACE",
                format!("1 to 255 characters, not starting with ':', got {namespace:?}"),
            ));
        }
        Ok(Metrics::stdout(
            namespace,
            function.unwrap_or_else(|| default_function.to_owned()),
        ))
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// A new document stamped now, with the `Function` dimension set.
    pub fn document(&self) -> Document {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut members = Vec::with_capacity(16);
        if let Some(inner) = &self.inner {
            members.push((FUNCTION, Value::from(inner.function.as_str())));
        }
        Document {
            timestamp,
            members,
            directives: Vec::new(),
        }
    }

    /// Writes the document as one line (nothing when off or when it holds no metric).
    pub fn emit(&self, doc: &Document) {
        let Some(inner) = &self.inner else { return };
        if doc.directives.is_empty() {
            return;
        }
        let mut line = Vec::with_capacity(1024);
        let wire = Wire {
            doc,
            namespace: &inner.namespace,
        };
        if serde_json::to_writer(&mut line, &wire).is_ok() {
            line.push(b'\n');
            (inner.sink)(&line);
        }
    }
}

/// The lines a [`Metrics::memory`] writer received.
#[derive(Clone, Debug, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Every document so far, parsed (a line that is not JSON panics: it would be a bug here).
    pub fn documents(&self) -> Vec<Value> {
        let buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        std::str::from_utf8(&buf)
            .expect("documents are UTF-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON document"))
            .collect()
    }
}

/// One EMF document under construction.
#[derive(Clone, Debug)]
pub struct Document {
    timestamp: u64,
    /// Root members in insertion order, each name once (a few, so a scan beats a map).
    members: Vec<(&'static str, Value)>,
    /// Metrics grouped by the dimension sets they are published under (without `Function`).
    directives: Vec<(DimensionSets, Vec<(&'static str, Unit)>)>,
}

type DimensionSets = &'static [&'static [&'static str]];

impl Document {
    /// A dimension's value (a string member the dimension sets name).
    pub fn dimension(&mut self, name: &'static str, value: impl Into<String>) -> &mut Self {
        self.set(name, Value::String(value.into()));
        self
    }

    fn set(&mut self, name: &'static str, value: Value) {
        match self.members.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => self.members.push((name, value)),
        }
    }

    /// A member that is not a metric: searchable in Logs Insights, not published as a metric.
    pub fn property(&mut self, name: &'static str, value: impl Into<Value>) -> &mut Self {
        self.set(name, value.into());
        self
    }

    /// A metric with one value, published under each of `dimension_sets` (each prefixed with
    /// `Function`; `&[]` is `Function` alone). A value that is not finite is left out.
    pub fn metric(
        &mut self,
        name: &'static str,
        unit: Unit,
        value: f64,
        dimension_sets: DimensionSets,
    ) -> &mut Self {
        if !value.is_finite() {
            return self;
        }
        match self
            .directives
            .iter_mut()
            .find(|(sets, _)| *sets == dimension_sets)
        {
            Some((_, metrics)) => metrics.push((name, unit)),
            None => self.directives.push((dimension_sets, vec![(name, unit)])),
        }
        self.set(name, Value::from(value));
        self
    }
}

/// A document as written: serialised straight from its parts, with no intermediate JSON tree.
struct Wire<'a> {
    doc: &'a Document,
    namespace: &'a str,
}

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut root = s.serialize_map(Some(self.doc.members.len() + 1))?;
        root.serialize_entry("_aws", &Aws(self))?;
        for (name, value) in &self.doc.members {
            root.serialize_entry(name, value)?;
        }
        root.end()
    }
}

struct Aws<'a>(&'a Wire<'a>);

impl Serialize for Aws<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let directives: Vec<Directive> = self
            .0
            .doc
            .directives
            .iter()
            .map(|(sets, metrics)| Directive {
                namespace: self.0.namespace,
                sets,
                metrics,
            })
            .collect();
        let mut aws = s.serialize_map(Some(2))?;
        aws.serialize_entry("Timestamp", &self.0.doc.timestamp)?;
        aws.serialize_entry("CloudWatchMetrics", &directives)?;
        aws.end()
    }
}

struct Directive<'a> {
    namespace: &'a str,
    sets: DimensionSets,
    metrics: &'a [(&'static str, Unit)],
}

impl Serialize for Directive<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Set(&'static [&'static str]);
        impl Serialize for Set {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(std::iter::once(&FUNCTION).chain(self.0))
            }
        }
        struct Metric(&'static str, Unit);
        impl Serialize for Metric {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("Name", self.0)?;
                m.serialize_entry("Unit", self.1.as_str())?;
                m.end()
            }
        }
        let mut d = s.serialize_map(Some(3))?;
        d.serialize_entry("Namespace", self.namespace)?;
        d.serialize_entry(
            "Dimensions",
            &self.sets.iter().map(|set| Set(set)).collect::<Vec<_>>(),
        )?;
        d.serialize_entry(
            "Metrics",
            &self
                .metrics
                .iter()
                .map(|&(n, u)| Metric(n, u))
                .collect::<Vec<_>>(),
        )?;
        d.end()
    }
}

/// Checks a document against the EMF specification: the `_aws` envelope with an integer
/// `Timestamp` and a non-empty `CloudWatchMetrics` array; each directive's `Namespace`,
/// `Dimensions` (arrays of at most 30 names, each a string member of the root) and `Metrics`
/// (at most 100, each named by a member holding a number or at most 100 numbers; `Unit` a
/// CloudWatch unit name).
pub fn validate(doc: &Value) -> Result<(), String> {
    const UNITS: [&str; 27] = [
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];
    let root = doc.as_object().ok_or("the document is not a JSON object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no `_aws` object")?;
    aws.get("Timestamp")
        .and_then(Value::as_u64)
        .ok_or("`_aws.Timestamp` is not a non-negative integer (milliseconds since the epoch)")?;
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("`_aws.CloudWatchMetrics` is not an array")?;
    if directives.is_empty() {
        return Err("`_aws.CloudWatchMetrics` is empty".into());
    }
    for d in directives {
        let ns = d
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or("a directive has no string `Namespace`")?;
        if ns.is_empty() || ns.len() > 255 {
            return Err(format!("namespace {ns:?} is not 1 to 255 characters"));
        }
        let sets = d
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("a directive has no `Dimensions` array")?;
        for set in sets {
            let set = set.as_array().ok_or("a dimension set is not an array")?;
            if set.len() > MAX_DIMENSIONS {
                return Err(format!("a dimension set has {} names", set.len()));
            }
            for name in set {
                let name = name.as_str().ok_or("a dimension name is not a string")?;
                match root.get(name) {
                    Some(Value::String(_)) => {}
                    _ => return Err(format!("dimension {name:?} is not a string member")),
                }
            }
        }
        let metrics = d
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("a directive has no `Metrics` array")?;
        if metrics.len() > MAX_METRICS {
            return Err(format!("a directive has {} metrics", metrics.len()));
        }
        for m in metrics {
            let name = m
                .get("Name")
                .and_then(Value::as_str)
                .ok_or("a metric has no string `Name`")?;
            if name.is_empty() || name.len() > 255 {
                return Err(format!("metric name {name:?} is not 1 to 255 characters"));
            }
            if let Some(unit) = m.get("Unit") {
                let unit = unit.as_str().ok_or("a `Unit` is not a string")?;
                if !UNITS.contains(&unit) {
                    return Err(format!("{name}: unit {unit:?} is not a CloudWatch unit"));
                }
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values))
                    if values.len() <= MAX_VALUES && values.iter().all(Value::is_number) => {}
                _ => return Err(format!("metric {name:?} has no numeric member")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn a_document_publishes_each_metric_under_its_dimension_sets() {
        let (metrics, captured) = Metrics::memory("Ns", "fn-1");
        let mut doc = metrics.document();
        doc.dimension("Route", "/predict")
            .dimension("StatusClass", "5xx")
            .property("RequestId", "r-1")
            .metric(
                "Requests",
                Unit::Count,
                1.0,
                &[&[], &["Route", "StatusClass"]],
            )
            .metric("Latency", Unit::Milliseconds, 2.5, &[&[]])
            .metric("Http5xx", Unit::Count, 1.0, &[&[]])
            .metric("Skipped", Unit::Count, f64::NAN, &[&[]]);
        metrics.emit(&doc);
        let docs = captured.documents();
        assert_eq!(docs.len(), 1);
        let d = &docs[0];
        validate(d).unwrap();
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"],
            json!([
                {"Namespace": "Ns", "Dimensions": [["Function"], ["Function", "Route", "StatusClass"]],
                 "Metrics": [{"Name": "Requests", "Unit": "Count"}]},
                {"Namespace": "Ns", "Dimensions": [["Function"]],
                 "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"}, {"Name": "Http5xx", "Unit": "Count"}]},
            ])
        );
        assert_eq!(d["Function"], "fn-1");
        assert_eq!(d["RequestId"], "r-1");
        assert_eq!(d["Http5xx"], 1.0);
        assert!(d.get("Skipped").is_none(), "a NaN value is left out");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let ts = d["_aws"]["Timestamp"].as_u64().unwrap();
        assert!(ts <= now && now - ts < 60_000, "{ts} vs {now}");
    }

    #[test]
    fn off_writes_nothing_and_an_empty_document_is_not_written() {
        let off = Metrics::off();
        assert!(!off.enabled());
        off.emit(&off.document());
        let (metrics, captured) = Metrics::memory("Ns", "f");
        metrics.emit(&metrics.document());
        assert!(captured.documents().is_empty());
    }

    #[test]
    fn the_environment_turns_metrics_on_in_lambda_and_names_the_namespace() {
        assert!(!Metrics::from_lookup(env(&[]), "predict").unwrap().enabled());
        let lambda =
            Metrics::from_lookup(env(&[("AWS_LAMBDA_FUNCTION_NAME", "p-1")]), "x").unwrap();
        assert_eq!(
            format!("{lambda:?}"),
            r#"Metrics { namespace: "Tagger", function: "p-1" }"#
        );
        let local = Metrics::from_lookup(
            env(&[("METRICS", "EMF"), ("METRICS_NAMESPACE", "Mine")]),
            "predict",
        )
        .unwrap();
        assert_eq!(
            format!("{local:?}"),
            r#"Metrics { namespace: "Mine", function: "predict" }"#
        );
        let off = Metrics::from_lookup(
            env(&[("METRICS", "off"), ("AWS_LAMBDA_FUNCTION_NAME", "p")]),
            "x",
        )
        .unwrap();
        assert!(!off.enabled());
        let (var, err) = Metrics::from_lookup(env(&[("METRICS", "yes")]), "x").unwrap_err();
        assert_eq!(var, "METRICS");
        assert!(err.contains("\"yes\""), "{err}");
    }

    #[test]
    fn the_validator_rejects_what_cloudwatch_would_drop() {
        let good = json!({
            "_aws": {"Timestamp": 1, "CloudWatchMetrics": [
                {"Namespace": "N", "Dimensions": [["D"]], "Metrics": [{"Name": "M", "Unit": "Count"}]}]},
            "D": "x", "M": [1, 2]
        });
        validate(&good).unwrap();
        let mut bad = good.clone();
        bad["_aws"]["Timestamp"] = json!("now");
        assert!(validate(&bad).is_err());
        let mut bad = good.clone();
        bad["D"] = json!(3);
        assert!(validate(&bad).unwrap_err().contains("dimension"));
        let mut bad = good.clone();
        bad["M"] = json!("1");
        assert!(validate(&bad).unwrap_err().contains("numeric"));
        let mut bad = good.clone();
        bad["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Requests");
        assert!(validate(&bad).unwrap_err().contains("unit"));
        let mut bad = good;
        bad["_aws"]["CloudWatchMetrics"] = json!([]);
        assert!(validate(&bad).is_err());
    }
}
