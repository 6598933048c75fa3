//! HTTP in, JSON out: routing, body parsing, options, and the mapping of every failure to a
//! status and a `{"error": {"code", "message"}}` body.
//!
//! Routes match on the **last path segment**, so the same binary answers wherever it is mounted:
//! `/predict`, a REST API (v1) stage (`/prod/predict`), an HTTP API (v2) named stage, a custom
//! domain's base path (`/api/predict`), or `cargo lambda watch`'s `/lambda-url/predict/predict`
//! (cargo-lambda strips `/lambda-url/<function>`). The root (`/`, or a bare stage such as `/prod/`)
//! predicts too.
//!
//! | route                    | method | answer |
//! |--------------------------|--------|--------|
//! | `.../predict`, `/`       | POST   | `{"tags"}` or, for `{"instances"}`, `{"predictions": [{"tags", "scores"}]}` |
//! | `.../model`              | GET    | version, labels, thresholds, metrics, provenance |
//! | `.../health`             | GET    | `{"status": "ok", "version"}`, or 503 with no model |
//!
//! Client mistakes are logged at debug level only; internal faults are logged with their cause
//! and answered with a generic 500.

use std::borrow::Cow;
use std::collections::BTreeMap;

use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, StatusCode};
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::{json, Map, Value};
use tagger_core::explain::WordOptions;
use tagger_core::predictor::{PredictOptions, Prediction};
use tagger_core::Error as LibError;

use crate::models::Served;
use crate::State;

/// Fields a JSON request may carry.
const JSON_FIELDS: &str = "question, html, instances, scores, threshold, top_k, explain";

/// Answers one request. Never fails: every error becomes a JSON response.
pub async fn handle(req: Request, state: &State) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let result = match (route(&req), &method) {
        (None, _) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {path:?}: use POST /predict, GET /model or GET /health"),
        )),
        (Some(Route::Predict), &Method::POST) => predict(&req, state).await,
        (Some(Route::Model), &Method::GET) => model_info(state).await,
        (Some(Route::Health), &Method::GET) => health(state).await,
        (Some(r), _) => Err(ApiError::method_not_allowed(r, &method)),
    };
    let response = result.unwrap_or_else(ApiError::into_response);
    // Client mistakes are not errors of ours; server faults were logged where they arose.
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request answered");
    response
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Predict,
    Model,
    Health,
}

impl Route {
    fn allow(self) -> &'static str {
        match self {
            Route::Predict => "POST",
            Route::Model | Route::Health => "GET",
        }
    }
}

fn route(req: &Request) -> Option<Route> {
    let segments: Vec<&str> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segments.last().copied() {
        None => Some(Route::Predict),
        Some("predict") => Some(Route::Predict),
        Some("model") => Some(Route::Model),
        Some("health") => Some(Route::Health),
        // `/prod/` on a REST API or a named HTTP API stage: the stage root.
        Some(only) if segments.len() == 1 && stage(req).is_some_and(|s| s == only) => {
            Some(Route::Predict)
        }
        Some(_) => None,
    }
}

fn stage(req: &Request) -> Option<&str> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(ctx) => ctx.stage.as_deref(),
        RequestContext::ApiGatewayV2(ctx) => ctx.stage.as_deref(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// A response-ready failure.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    allow: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }

    fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn method_not_allowed(route: Route, method: &Method) -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed here: use {}", route.allow()),
        );
        e.allow = Some(route.allow());
        e
    }

    fn no_model() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_model",
            "no model is loaded yet: publish one (train on a CSV) and retry",
        )
    }

    fn empty_question(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "empty_question", message)
    }

    /// A fault of ours: the cause is logged, the client gets a generic message.
    fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    fn from_library(e: LibError, what: &str) -> Self {
        match e {
            LibError::EmptyQuestion => Self::empty_question(format!(
                "{what} is empty once HTML and masked words are removed"
            )),
            LibError::NoBackground => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_explainer",
                e.to_string(),
            ),
            other => Self::internal("prediction failed", &other),
        }
    }

    fn into_response(self) -> Response<Body> {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut resp = json_response(self.status, &body, None);
        if let Some(allow) = self.allow {
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        resp
    }
}

fn json_response<T: Serialize + ?Sized>(
    status: StatusCode,
    body: &T,
    version: Option<&str>,
) -> Response<Body> {
    let (status, bytes) = match serde_json::to_vec(body) {
        Ok(bytes) => (status, bytes),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode response");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                br#"{"error":{"code":"internal","message":"internal error"}}"#.to_vec(),
            )
        }
    };
    let mut resp = Response::new(Body::Text(String::from_utf8(bytes).unwrap_or_default()));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert("x-model-version", v);
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// GET /health, GET /model

async fn health(state: &State) -> Result<Response<Body>, ApiError> {
    let served = state.models().get().await.ok_or_else(ApiError::no_model)?;
    let body = json!({
        "status": "ok",
        "version": served.version(),
        "trained_at": served.predictor.info().created_at,
        "loaded_at": served.loaded_at,
    });
    Ok(json_response(StatusCode::OK, &body, Some(served.version())))
}

async fn model_info(state: &State) -> Result<Response<Body>, ApiError> {
    let served = state.models().get().await.ok_or_else(ApiError::no_model)?;
    let mut body = serde_json::to_value(served.predictor.summary()).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut body {
        map.insert(
            "pointer".into(),
            json!({
                "key": served.pointer.key,
                "sha256": served.pointer.sha256,
                "created_at": served.pointer.created_at,
            }),
        );
        map.insert("loaded_at".into(), json!(served.loaded_at));
    }
    let mut resp = json_response(StatusCode::OK, &body, Some(served.version()));
    // Model facts change only on a reload: let the edge (and clients) keep them a while.
    let secs = state.config().model_cache_secs;
    if secs > 0 {
        if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={secs}")) {
            resp.headers_mut().insert(CACHE_CONTROL, v);
        }
    }
    Ok(resp)
}

// ---------------------------------------------------------------------------------------------
// POST /predict

/// What the client asked to have tagged.
#[derive(Debug, PartialEq)]
enum Input {
    One(String),
    Batch(Vec<String>),
}

/// Options from the query string, then the JSON body (which wins).
#[derive(Clone, Debug, Default, PartialEq)]
struct Options {
    scores: Option<bool>,
    threshold: Option<f32>,
    top_k: Option<usize>,
    explain: Option<bool>,
}

async fn predict(req: &Request, state: &State) -> Result<Response<Body>, ApiError> {
    let mut opts = Options::from_query(&req.query_string_parameters())?;
    let input = parse_body(req, state.config().max_body_bytes, &mut opts)?;
    if let Input::Batch(items) = &input {
        let max = state.config().max_instances;
        if items.len() > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_instances",
                format!("{} instances sent; at most {max} per request", items.len()),
            ));
        }
        if items.is_empty() {
            return Err(ApiError::empty_question(
                "instances is empty: send at least one question",
            ));
        }
    }
    // Cheap checks before the model: an empty question is the client's mistake even with no model.
    match &input {
        Input::One(q) if q.trim().is_empty() => {
            return Err(ApiError::empty_question("question is empty"))
        }
        Input::Batch(items) => {
            if let Some(i) = items.iter().position(|q| q.trim().is_empty()) {
                return Err(ApiError::empty_question(format!("instances[{i}] is empty")));
            }
        }
        Input::One(_) => {}
    }

    let served = state.models().get().await.ok_or_else(ApiError::no_model)?;
    let explain = opts.explain.unwrap_or(false);
    let body = match input {
        Input::One(question) => {
            let lib_opts = opts.library(false);
            let p = served
                .predictor
                .predict(&question, &lib_opts)
                .map_err(|e| ApiError::from_library(e, "question"))?;
            let explanations = if explain {
                Some(explain_tags(&served, &question, &p.tags)?)
            } else {
                None
            };
            serde_json::to_value(TagsBody::new(&p, explanations))
        }
        Input::Batch(items) => {
            let lib_opts = opts.library(true);
            let mut predictions = Vec::with_capacity(items.len());
            for (i, question) in items.iter().enumerate() {
                let p = served
                    .predictor
                    .predict(question, &lib_opts)
                    .map_err(|e| ApiError::from_library(e, &format!("instances[{i}]")))?;
                let explanations = if explain {
                    Some(explain_tags(&served, question, &p.tags)?)
                } else {
                    None
                };
                predictions.push(
                    serde_json::to_value(TagsBody::new(&p, explanations))
                        .map_err(|e| ApiError::internal("cannot encode", &e))?,
                );
            }
            Ok(json!({ "predictions": predictions }))
        }
    }
    .map_err(|e| ApiError::internal("cannot encode prediction", &e))?;
    Ok(json_response(StatusCode::OK, &body, Some(served.version())))
}

#[derive(Serialize)]
struct TagsBody<'a> {
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    scores: Option<&'a BTreeMap<String, f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explanations: Option<Value>,
}

impl<'a> TagsBody<'a> {
    fn new(p: &'a Prediction, explanations: Option<Value>) -> Self {
        TagsBody {
            tags: &p.tags,
            scores: p.scores.as_ref(),
            explanations,
        }
    }
}

/// Per-tag word attributions for the returned tags (DeepSHAP, 5 words per tag and direction,
/// words present in the question): `{"tag": {"positive": [["word", 0.12], ...], "negative": [...],
/// "expected_value": ..., "probability": ...}}`.
fn explain_tags(served: &Served, question: &str, tags: &[String]) -> Result<Value, ApiError> {
    let explained = served
        .predictor
        .explain(question, tags, &WordOptions::default())
        .map_err(|e| ApiError::from_library(e, "question"))?;
    Ok(tagger_core::explain::explanations_json(&explained.tags))
}

impl Options {
    fn from_query(q: &QueryMap) -> Result<Self, ApiError> {
        let mut o = Options::default();
        if let Some(v) = q.first("scores") {
            o.scores = Some(query_bool("scores", v)?);
        }
        if let Some(v) = q.first("explain") {
            o.explain = Some(query_bool("explain", v)?);
        }
        if let Some(v) = q.first("threshold") {
            let t = v.trim().parse::<f64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!("threshold must be a number in [0, 1], got {v:?}"),
                )
            })?;
            o.threshold = Some(check_threshold(t)?);
        }
        if let Some(v) = q.first("top_k") {
            let k = v.trim().parse::<u64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!("top_k must be a whole number >= 1, got {v:?}"),
                )
            })?;
            o.top_k = Some(check_top_k(k)?);
        }
        Ok(o)
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
            Some(Value::Number(n)) => match n.as_u64() {
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

    /// Batch answers carry every tag's score unless told otherwise (the origin's batch contract).
    fn library(&self, batch: bool) -> PredictOptions {
        PredictOptions {
            threshold: self.threshold,
            top_k: self.top_k,
            scores: self.scores.unwrap_or(batch),
        }
    }
}

fn take_bool(obj: &mut Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match obj.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(wrong_type(name, "a boolean", &other)),
    }
}

fn query_bool(name: &str, v: &str) -> Result<bool, ApiError> {
    match v.trim().to_ascii_lowercase().as_str() {
        // A bare `?scores` means yes.
        "" | "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
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

fn media_type(req: &Request) -> Result<Option<MediaType>, ApiError> {
    let Some(raw) = req.headers().get(CONTENT_TYPE) else {
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

fn body_bytes(body: &Body) -> &[u8] {
    // `Body` derefs to its bytes: text as UTF-8, binary (base64-decoded by lambda_http) as is.
    body
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

fn parse_body(req: &Request, max_bytes: usize, opts: &mut Options) -> Result<Input, ApiError> {
    let bytes = body_bytes(req.body());
    if bytes.len() > max_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "request body is {} bytes; the limit is {max_bytes}",
                bytes.len()
            ),
        ));
    }
    let media = media_type(req)?;
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

/// An HTML form post: `question=...` or `html=...`, plus the options.
fn parse_form(text: &str, opts: &mut Options) -> Result<Input, ApiError> {
    let form: QueryMap = text.parse().unwrap_or_default();
    let from_form = Options::from_query(&form)?;
    opts.scores = from_form.scores.or(opts.scores);
    opts.explain = from_form.explain.or(opts.explain);
    opts.threshold = from_form.threshold.or(opts.threshold);
    opts.top_k = from_form.top_k.or(opts.top_k);
    let get = |k: &str| form.first(k).map(str::to_owned);
    one_input(get("question"), get("html"), None)
}

#[cfg(test)]
mod tests;
