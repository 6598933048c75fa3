//! `tagger models diff`: two versions' model information, flattened and compared field by field.

use super::*;

/// `{"a.b": leaf}` for every leaf of a JSON value.
pub(super) fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, child) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, child, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

/// Settings and data facts that differ, as `name -> [a, b]` (null where one side lacks it).
pub(super) fn changed(a: &Value, b: &Value) -> BTreeMap<String, [Value; 2]> {
    let (mut fa, mut fb) = (BTreeMap::new(), BTreeMap::new());
    flatten("", a, &mut fa);
    flatten("", b, &mut fb);
    let keys: std::collections::BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (
                fa.get(k).cloned().unwrap_or(Value::Null),
                fb.get(k).cloned().unwrap_or(Value::Null),
            );
            (x != y).then(|| (k.clone(), [x, y]))
        })
        .collect()
}

pub(super) fn diff_json(a: &Predictor, b: &Predictor) -> Value {
    let (sa, sb) = (a.summary(), b.summary());
    let settings = |p: &Predictor| {
        serde_json::to_value(TrainingRecord::of(p.info()).settings).unwrap_or(Value::Null)
    };
    let data = |s: &tagger_core::predictor::ModelSummary| {
        json!({
            "source": s.source,
            "data_sha256": s.data_sha256,
            "trained_at": s.trained_at,
            "crate_version": s.crate_version,
            "rows": s.rows,
            "features": s.features,
            "hidden": s.hidden,
        })
    };
    let metric = |s: &tagger_core::predictor::ModelSummary,
                  f: fn(&tagger_core::artifact::HeadlineMetrics) -> f64| {
        s.metrics.as_ref().map(f)
    };
    let mut metrics = serde_json::Map::new();
    for (name, f) in [
        (
            "p_at_1",
            (|m: &tagger_core::artifact::HeadlineMetrics| m.p_at_1) as fn(&_) -> f64,
        ),
        ("micro_f1", |m| m.micro_f1),
        ("macro_f1", |m| m.macro_f1),
        ("examples", |m| m.examples as f64),
    ] {
        let (x, y) = (metric(&sa, f), metric(&sb, f));
        metrics.insert(
            name.into(),
            json!({ "a": x, "b": y, "change": x.zip(y).map(|(x, y)| y - x) }),
        );
    }
    let added: Vec<&String> = sb
        .labels
        .iter()
        .filter(|l| !sa.labels.contains(l))
        .collect();
    let removed: Vec<&String> = sa
        .labels
        .iter()
        .filter(|l| !sb.labels.contains(l))
        .collect();
    let thresholds: BTreeMap<&String, [f32; 2]> = sa
        .thresholds
        .per_tag
        .iter()
        .filter_map(|(tag, &ta)| {
            let tb = *sb.thresholds.per_tag.get(tag)?;
            ((ta - tb).abs() > 1e-6).then_some((tag, [ta, tb]))
        })
        .collect();
    json!({
        "a": sa.version,
        "b": sb.version,
        "data": changed(&data(&sa), &data(&sb)),
        "settings": changed(&settings(a), &settings(b)),
        "metrics": metrics,
        "tags": { "added": added, "removed": removed, "thresholds": thresholds },
    })
}

/// A JSON leaf as a short text (`256`, `default`, `[50,25]`).
pub(super) fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => safe(s).into_owned(),
        Value::Null => "(none)".into(),
        // `[50, 25]` reads as `50, 25`, as `tagger info` and the flags write it.
        Value::Array(items) if items.iter().all(|v| !v.is_array() && !v.is_object()) => {
            items.iter().map(plain).collect::<Vec<_>>().join(", ")
        }
        other => safe(&other.to_string()).into_owned(),
    }
}

pub(super) async fn diff(args: &DiffArgs) -> Result<()> {
    let store = open(&args.store.model).await?;
    let registry = Registry::new(store.as_ref(), "");
    let (_, a) = load(&registry, &args.a).await?;
    let (_, b) = load(&registry, &args.b).await?;
    let d = diff_json(&a, &b);
    if args.store.json {
        super::super::outln!("{}", serde_json::to_string_pretty(&d)?)?;
        return Ok(());
    }
    super::super::outln!("{} -> {}", safe(&args.a), safe(&args.b))?;
    for (section, title) in [("data", "data"), ("settings", "settings")] {
        let entries = d[section].as_object().cloned().unwrap_or_default();
        if entries.is_empty() {
            super::super::outln!("{title}: same")?;
            continue;
        }
        super::super::outln!("{title}:")?;
        for (name, pair) in entries {
            super::super::outln!(
                "    {:<32} {} -> {}",
                safe(&name),
                plain(&pair[0]),
                plain(&pair[1])
            )?;
        }
    }
    super::super::outln!("metrics (test split of each version's own data):")?;
    for (name, m) in d["metrics"].as_object().cloned().unwrap_or_default() {
        // Counts as whole numbers, scores to 4 decimals.
        let places = if name == "examples" { 0 } else { 4 };
        let num = |v: &Value| {
            v.as_f64()
                .map_or("-".to_owned(), |x| format!("{x:.places$}"))
        };
        let change = m["change"]
            .as_f64()
            .map_or(String::new(), |c| format!(" ({c:+.places$})"));
        super::super::outln!(
            "    {name:<32} {} -> {}{change}",
            num(&m["a"]),
            num(&m["b"])
        )?;
    }
    let tags = &d["tags"];
    let names = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(plain).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let (added, removed) = (names(&tags["added"]), names(&tags["removed"]));
    super::super::outln!(
        "tags: {} added{}; {} removed{}",
        tags["added"].as_array().map_or(0, Vec::len),
        if added.is_empty() {
            String::new()
        } else {
            format!(" ({added})")
        },
        tags["removed"].as_array().map_or(0, Vec::len),
        if removed.is_empty() {
            String::new()
        } else {
            format!(" ({removed})")
        },
    )?;
    let thresholds = tags["thresholds"].as_object().cloned().unwrap_or_default();
    if thresholds.is_empty() {
        super::super::outln!("thresholds of shared tags: same")?;
    } else {
        super::super::outln!("thresholds of shared tags:")?;
        for (tag, pair) in thresholds {
            super::super::outln!(
                "    {:<32} {:.2} -> {:.2}",
                safe(&tag),
                pair[0].as_f64().unwrap_or(f64::NAN),
                pair[1].as_f64().unwrap_or(f64::NAN)
            )?;
        }
    }
    Ok(())
}
