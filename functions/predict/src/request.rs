//! Reading a prediction request: the options (query string, form fields, JSON fields), the
//! body in its content type and charset, and exactly one question or a batch.

use std::borrow::Cow;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};
use tagger_core::predictor::PredictOptions;

use crate::error::ApiError;

/// Fields a JSON request may carry.
pub(crate) const JSON_FIELDS: &str = "question, html, instances, scores, threshold, top_k, explain";
/// Query parameters `POST /predict` takes.
const QUERY_PARAMETERS: &str = "scores, threshold, top_k, explain";

/// What the client asked to have tagged.
#[derive(Debug, PartialEq)]
pub(crate) enum Input {
    One(String),
    Batch(Vec<String>),
}

/// Options from the query string, then the JSON body (which wins).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Options {
    scores: Option<bool>,
    threshold: Option<f32>,
    top_k: Option<usize>,
    explain: Option<bool>,
}

impl Options {
    /// Options from a query string. A repeated parameter is an error (which copy would win
    /// differs between proxies), and so is an unknown one, like an unknown JSON field.
    pub(crate) fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let pairs = unique_pairs(query.unwrap_or(""), "parameter")?;
        if let Some((unknown, _)) = pairs
            .iter()
            .find(|(k, _)| !matches!(k.as_str(), "scores" | "explain" | "threshold" | "top_k"))
        {
            return Err(ApiError::bad_request(
                "unknown_parameter",
                format!(
                    "unknown query parameter {unknown:?} (expected one of: {QUERY_PARAMETERS})"
                ),
            ));
        }
        Self::from_pairs(&pairs)
    }

    fn from_pairs(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let mut o = Options::default();
        if let Some(v) = get("scores") {
            o.scores = Some(query_bool("scores", v)?);
        }
        if let Some(v) = get("explain") {
            o.explain = Some(query_bool("explain", v)?);
        }
        if let Some(v) = get("threshold") {
            let t = v.trim().parse::<f64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!("threshold must be a number in [0, 1], got {v:?}"),
                )
            })?;
            o.threshold = Some(check_threshold(t)?);
        }
        if let Some(v) = get("top_k") {
            let k = whole_number(v).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!("top_k must be a whole number >= 1, got {v:?}"),
                )
            })?;
            o.top_k = Some(check_top_k(k)?);
        }
        Ok(o)
    }

    pub(crate) fn explain(&self) -> bool {
        self.explain.unwrap_or(false)
    }

    /// Takes the option fields out of a JSON request, checking their types.
    fn merge_json(&mut self, obj: &mut Map<String, Value>) -> Result<(), ApiError> {
        if let Some(b) = take_bool(obj, "scores")? {
            self.scores = Some(b);
        }
        if let Some(b) = take_bool(obj, "explain")? {
            self.explain = Some(b);
        }
        match obj.remove("threshold") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => {
                self.threshold = Some(check_threshold(n.as_f64().unwrap_or(f64::NAN))?)
            }
            Some(other) => return Err(wrong_type("threshold", "a number in [0, 1]", &other)),
        }
        match obj.remove("top_k") {
            None | Some(Value::Null) => {}
            // `3.0` is the integer 3 to JSON Schema (and to JavaScript), so it is one here too;
            // integers past u64 (read as floats) mean "every tag", as u64::MAX does.
            Some(Value::Number(n)) => match n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            }) {
                Some(k) => self.top_k = Some(check_top_k(k)?),
                None => {
                    return Err(ApiError::bad_request(
                        "invalid_field",
                        format!("top_k must be a whole number >= 1, got {n}"),
                    ))
                }
            },
            Some(other) => return Err(wrong_type("top_k", "a whole number >= 1", &other)),
        }
        Ok(())
    }

    /// Every tag's score only when asked (`scores=true`), for one question and batches alike:
    /// a batch of 100 questions on a 700-tag model would otherwise carry 70,000 numbers.
    pub(crate) fn library(&self) -> PredictOptions {
        PredictOptions {
            threshold: self.threshold,
            top_k: self.top_k,
            scores: self.scores.unwrap_or(false),
        }
    }
}

/// Digits only; a number past u64 saturates (a top_k larger than any model's tag count).
fn whole_number(v: &str) -> Option<u64> {
    let v = v.trim();
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse::<u64>().unwrap_or(u64::MAX))
}

fn take_bool(obj: &mut Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match obj.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(wrong_type(name, "a boolean", &other)),
    }
}

/// Exactly `true` or `false`, as the OpenAPI document's `boolean` parameters are written; `1`,
/// `yes` or a bare `?scores` would be schema-violating requests that the API quietly accepted.
fn query_bool(name: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::bad_request(
            "invalid_parameter",
            format!("{name} must be true or false, got {v:?}"),
        )),
    }
}

fn check_threshold(t: f64) -> Result<f32, ApiError> {
    if (0.0..=1.0).contains(&t) {
        Ok(t as f32)
    } else {
        Err(ApiError::bad_request(
            "invalid_threshold",
            format!("threshold must be in [0, 1], got {t}"),
        ))
    }
}

fn check_top_k(k: u64) -> Result<usize, ApiError> {
    if k == 0 {
        return Err(ApiError::bad_request(
            "invalid_top_k",
            "top_k must be >= 1, got 0",
        ));
    }
    Ok(usize::try_from(k).unwrap_or(usize::MAX))
}

fn wrong_type(name: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::bad_request(
        "invalid_field",
        format!("{name} must be {expected}, got {}", type_name(got)),
    )
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The media type of a request, lowercased, with its charset parameter.
#[derive(Debug, PartialEq)]
struct MediaType {
    essence: String,
    charset: Option<String>,
}

fn media_type(headers: &HeaderMap) -> Result<Option<MediaType>, ApiError> {
    let Some(raw) = headers.get(CONTENT_TYPE) else {
        return Ok(None);
    };
    let raw = raw.to_str().map_err(|_| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "content-type header is not readable text",
        )
    })?;
    let mut parts = raw.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if essence.is_empty() {
        return Ok(None);
    }
    let charset = parts.filter_map(|p| p.split_once('=')).find_map(|(k, v)| {
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_ascii_lowercase())
    });
    Ok(Some(MediaType { essence, charset }))
}

/// Bytes in the declared charset to text. JSON is always UTF-8 (RFC 8259).
fn decode_text<'a>(bytes: &'a [u8], charset: Option<&str>) -> Result<Cow<'a, str>, ApiError> {
    match charset {
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii") => {
            let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|e| {
                ApiError::bad_request("invalid_encoding", format!("body is not valid utf-8: {e}"))
            })
        }
        Some("iso-8859-1" | "latin1" | "latin-1") => {
            Ok(Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()))
        }
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_charset",
            format!("charset {other:?} is not supported: send utf-8"),
        )),
    }
}

/// The question(s) in a request body; option fields in the body are merged into `opts`.
pub(crate) fn parse_body(
    headers: &HeaderMap,
    bytes: &[u8],
    opts: &mut Options,
) -> Result<Input, ApiError> {
    let media = media_type(headers)?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let kind = match media.as_ref().map(|m| m.essence.as_str()) {
        Some("application/json") => Kind::Json,
        Some(e) if e.starts_with("application/") && e.ends_with("+json") => Kind::Json,
        Some("text/plain") => Kind::Text,
        Some("text/html") => Kind::Html,
        // `curl -d '{...}'` sends JSON labelled as a form.
        Some("application/x-www-form-urlencoded") if first == Some(b'{') => Kind::Json,
        Some("application/x-www-form-urlencoded") => Kind::Form,
        // No content type: guess from the first byte.
        None if first == Some(b'{') => Kind::Json,
        None => Kind::Text,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("content type {other:?} is not supported: send application/json, text/plain or text/html"),
            ))
        }
    };
    let charset = media.as_ref().and_then(|m| m.charset.as_deref());
    match kind {
        Kind::Json => {
            if charset.is_some_and(|c| !matches!(c, "utf-8" | "utf8" | "us-ascii" | "ascii")) {
                return Err(decode_text(bytes, charset).err().unwrap_or_else(|| {
                    ApiError::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unsupported_charset",
                        "json must be utf-8",
                    )
                }));
            }
            parse_json(bytes, opts)
        }
        Kind::Text | Kind::Html => Ok(Input::One(decode_text(bytes, charset)?.into_owned())),
        Kind::Form => parse_form(&decode_text(bytes, charset)?, opts),
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Json,
    Text,
    Html,
    Form,
}

fn parse_json(bytes: &[u8], opts: &mut Options) -> Result<Input, ApiError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid_json",
            "request body is empty: expected a JSON object such as {\"question\": \"...\"}",
        ));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(mut obj) = value else {
        return Err(ApiError::bad_request(
            "invalid_json",
            format!(
                "expected a JSON object such as {{\"question\": \"...\"}}, got {}",
                type_name(&value)
            ),
        ));
    };
    opts.merge_json(&mut obj)?;
    let question = take_string(&mut obj, "question")?;
    let html = take_string(&mut obj, "html")?;
    let instances = match obj.remove("instances") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s),
                    other => Err(ApiError::bad_request(
                        "invalid_field",
                        format!("instances[{i}] must be a string, got {}", type_name(&other)),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(other) => return Err(wrong_type("instances", "an array of strings", &other)),
    };
    if let Some(unknown) = obj.keys().next() {
        return Err(ApiError::bad_request(
            "unknown_field",
            format!("unknown field {unknown:?} (expected one of: {JSON_FIELDS})"),
        ));
    }
    one_input(question, html, instances)
}

fn take_string(obj: &mut Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match obj.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(name, "a string", &other)),
    }
}

/// Exactly one of `question`, `html`, `instances`.
fn one_input(
    question: Option<String>,
    html: Option<String>,
    instances: Option<Vec<String>>,
) -> Result<Input, ApiError> {
    match (question, html, instances) {
        (Some(q), None, None) => Ok(Input::One(q)),
        // HTML goes through the same normaliser as any question; it strips the markup.
        (None, Some(h), None) => Ok(Input::One(h)),
        (None, None, Some(items)) => Ok(Input::Batch(items)),
        (None, None, None) => Err(ApiError::bad_request(
            "missing_question",
            "send one of \"question\", \"html\" or \"instances\"",
        )),
        _ => Err(ApiError::bad_request(
            "conflicting_fields",
            "send only one of \"question\", \"html\" or \"instances\"",
        )),
    }
}

/// An HTML form post: `question=...` or `html=...`, plus the options (a repeated field is an
/// error, as in the query string).
fn parse_form(text: &str, opts: &mut Options) -> Result<Input, ApiError> {
    let form = unique_pairs(text, "form field")?;
    let from_form = Options::from_pairs(&form)?;
    opts.scores = from_form.scores.or(opts.scores);
    opts.explain = from_form.explain.or(opts.explain);
    opts.threshold = from_form.threshold.or(opts.threshold);
    opts.top_k = from_form.top_k.or(opts.top_k);
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    one_input(get("question"), get("html"), None)
}

/// `application/x-www-form-urlencoded` pairs, each name at most once.
fn unique_pairs(encoded: &str, what: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(encoded.as_bytes()) {
        if pairs.iter().any(|(seen, _)| *seen == k) {
            return Err(ApiError::bad_request(
                "duplicate_parameter",
                format!("{what} {k:?} is given more than once: send it once"),
            ));
        }
        pairs.push((k.into_owned(), v.into_owned()));
    }
    Ok(pairs)
}
