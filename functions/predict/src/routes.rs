//! The routes: prediction, model facts, health, and the page with its assets.
//!
//! Routes match on the **last path segment**, so the same binary answers wherever it is mounted:
//! `/predict`, a REST API (v1) stage (`/prod/predict`), an HTTP API (v2) named stage, a custom
//! domain's base path (`/api/predict`), or `cargo lambda watch`'s `/lambda-url/predict/predict`
//! (cargo-lambda strips `/lambda-url/<function>`). The root (`/`, or a bare stage such as `/prod/`)
//! serves the page to `GET` and predicts for `POST`.
//!
//! | route                    | method | answer |
//! |--------------------------|--------|--------|
//! | `.../predict`, `/`       | POST   | `{"tags"}` or, for `{"instances"}`, `{"predictions": [{"tags", "scores"}]}` |
//! | `/`, `.../index.html`    | GET    | the page (`.../app.js`, `.../app.css` its assets) |
//! | `.../model`              | GET    | version, labels, thresholds, metrics, provenance |
//! | `.../health`             | GET    | `{"status": "ok", "version"}`, or 503 with no model |

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State as AxumState};
use axum::response::Response;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use serde::{Serialize, Serializer};
use serde_json::{json, Value};
use tagger_core::explain::WordOptions;
use tagger_core::predictor::Prediction;
use tracing::Instrument;

use crate::error::{json_response, ApiError};
use crate::models::Served;
use crate::request::{parse_body, Input, Options};
use crate::State;

/// The route that answered, for the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RouteName(pub(crate) &'static str);

/// Tags in a prediction answer, for the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TagCount(pub(crate) usize);

/// What a prediction answered, for the metrics: questions, those with no tag, explained or not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Answered {
    pub(crate) answers: usize,
    pub(crate) no_tags: usize,
    pub(crate) explain: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Root,
    Predict,
    Model,
    Health,
    Page,
    Script,
    Style,
    OpenApi,
}

impl Route {
    fn allow(self) -> &'static str {
        match self {
            Route::Root => "GET, POST",
            Route::Predict => "POST",
            _ => "GET",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Route::Root => "/",
            Route::Predict => "/predict",
            Route::Model => "/model",
            Route::Health => "/health",
            Route::Page => "/index.html",
            Route::Script => "/app.js",
            Route::Style => "/app.css",
            Route::OpenApi => "/openapi.json",
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
        None => Some(Route::Root),
        Some("predict") => Some(Route::Predict),
        Some("model") => Some(Route::Model),
        Some("health") => Some(Route::Health),
        Some("index.html") => Some(Route::Page),
        Some("app.js") => Some(Route::Script),
        Some("app.css") => Some(Route::Style),
        Some("openapi.json") => Some(Route::OpenApi),
        // `/prod/` on a REST API or a named HTTP API stage: the stage root.
        Some(only) if segments.len() == 1 && stage(req).is_some_and(|s| s == only) => {
            Some(Route::Root)
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

/// Answers one request. Never fails: every error becomes a JSON response.
pub(crate) async fn dispatch(AxumState(state): AxumState<Arc<State>>, req: Request) -> Response {
    let route = route(&req);
    let method = req.method().clone();
    let result = match (route, &method) {
        (None, _) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no route for {:?}: use POST /predict, GET /model, GET /health, GET /openapi.json or GET / (the page)",
                req.uri().path()
            ),
        )),
        (Some(Route::Predict | Route::Root), &Method::POST) => predict(req, &state).await,
        (Some(Route::Root | Route::Page), &Method::GET) => Ok(asset(Route::Page)),
        (Some(r @ (Route::Script | Route::Style)), &Method::GET) => Ok(asset(r)),
        (Some(Route::Model), &Method::GET) => model_info(&state).await,
        (Some(Route::Health), &Method::GET) => health(&state).await,
        (Some(Route::OpenApi), &Method::GET) => Ok(openapi_document()),
        (Some(r), _) => Err(ApiError::method_not_allowed(r.allow(), &method)),
    };
    let mut response = result.unwrap_or_else(ApiError::into_response);
    response
        .extensions_mut()
        .insert(RouteName(route.map_or("-", Route::name)));
    response
}

// ---------------------------------------------------------------------------------------------
// The page

pub(crate) const INDEX_HTML: &str = include_str!("../../../clients/web/index.html");
pub(crate) const APP_JS: &str = include_str!("../../../clients/web/app.js");
pub(crate) const APP_CSS: &str = include_str!("../../../clients/web/app.css");

fn asset(route: Route) -> Response {
    let (body, content_type) = match route {
        Route::Script => (APP_JS, "text/javascript; charset=utf-8"),
        Route::Style => (APP_CSS, "text/css; charset=utf-8"),
        _ => (INDEX_HTML, "text/html; charset=utf-8"),
    };
    let mut resp = Response::new(Body::from(body));
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Revalidated on every load, so a new deployment's page is picked up at once.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if route == Route::Page {
        // The page and its assets come from this origin only: no inline script, no CDN.
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static("default-src 'self'"),
        );
    }
    resp
}

/// The API's OpenAPI 3.1 document (see [`crate::openapi`]).
fn openapi_document() -> Response {
    let mut resp = Response::new(Body::from(crate::openapi::DOCUMENT));
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

// ---------------------------------------------------------------------------------------------
// GET /health, GET /model

async fn health(state: &State) -> Result<Response, ApiError> {
    let served = state.models().get().await.ok_or_else(ApiError::no_model)?;
    let body = json!({
        "status": "ok",
        "version": served.version(),
        "trained_at": served.predictor.info().created_at,
        "loaded_at": served.loaded_at,
    });
    Ok(json_response(StatusCode::OK, &body, Some(served.version())))
}

async fn model_info(state: &State) -> Result<Response, ApiError> {
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
        // MODEL_VERSION: this version stays, whatever latest.json says.
        map.insert("pinned".into(), json!(state.models().pinned().is_some()));
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

async fn predict(req: Request, state: &State) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let mut opts = Options::from_query(parts.uri.query())?;
    let max_bytes = state.config().max_body_bytes;
    let bytes = read_body(body, max_bytes).await?;
    let input = parse_body(&parts.headers, &bytes, &mut opts)?;
    drop(bytes);
    check_input(&input, state.config().max_instances)?;

    let served = state.models().get().await.ok_or_else(ApiError::no_model)?;
    let max_cost = state.config().max_explain_cost;
    let job_model = Arc::clone(&served);
    let (body, tags, answered) = state
        .run_cpu(move || answer(&job_model, input, &opts, max_cost))
        .instrument(tracing::info_span!(
            "prediction",
            version = served.version()
        ))
        .await
        .ok_or_else(|| ApiError::internal("prediction job failed", &"worker ended"))??;
    let mut resp = json_response(StatusCode::OK, &body, Some(served.version()));
    resp.extensions_mut().insert(TagCount(tags));
    resp.extensions_mut().insert(answered);
    Ok(resp)
}

/// The whole body, within the limit and the body timeout the app's layers put on it.
async fn read_body(body: Body, max_bytes: usize) -> Result<bytes::Bytes, ApiError> {
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(err) = cause {
                if err.is::<http_body_util::LengthLimitError>() {
                    return Err(ApiError::body_too_large(max_bytes));
                }
                if err.is::<tower_http::timeout::TimeoutError>() {
                    return Err(ApiError::timeout("reading the request body"));
                }
                cause = err.source();
            }
            return Err(ApiError::bad_request(
                "unreadable_body",
                format!("the request body could not be read: {e}"),
            ));
        }
    };
    // The body limit layer enforces this too; kept so no route depends on a layer's presence.
    if bytes.len() > max_bytes {
        return Err(ApiError::body_too_large(max_bytes));
    }
    Ok(bytes)
}

/// Cheap checks before the model: an empty question is the client's mistake even with no model.
fn check_input(input: &Input, max_instances: usize) -> Result<(), ApiError> {
    match input {
        Input::Batch(items) if items.len() > max_instances => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_instances",
            format!(
                "{} instances sent; at most {max_instances} per request",
                items.len()
            ),
        )),
        Input::Batch(items) if items.is_empty() => Err(ApiError::empty_question(
            "instances is empty: send at least one question",
        )),
        Input::Batch(items) => match items.iter().position(|q| is_blank(q)) {
            Some(i) => Err(ApiError::empty_question(format!("instances[{i}] is empty"))),
            None => Ok(()),
        },
        Input::One(q) if is_blank(q) => Err(ApiError::empty_question("question is empty")),
        Input::One(_) => Ok(()),
    }
}

/// Nothing but whitespace, by the definition the OpenAPI document's `\S` pattern has in the
/// tools that check it (Python's `str.isspace`): Unicode's White_Space plus the four separators
/// U+001C..U+001F.
pub(crate) fn is_blank(q: &str) -> bool {
    q.chars()
        .all(|c| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Predictions (and explanations) for the input, the number of tags returned and what was
/// answered. CPU-bound: runs on the pool.
fn answer(
    served: &Served,
    input: Input,
    opts: &Options,
    max_explain_cost: u64,
) -> Result<(Value, usize, Answered), ApiError> {
    let predictor = &served.predictor;
    let (questions, batch) = match input {
        Input::One(q) => (vec![q], false),
        Input::Batch(items) => (items, true),
    };
    let what = |i: usize| {
        if batch {
            format!("instances[{i}]")
        } else {
            "question".to_owned()
        }
    };
    let lib_opts = opts.library();
    let mut predictions = Vec::with_capacity(questions.len());
    // DeepSHAP's work grows with the tags explained times the words the model knows.
    let mut explain_cost = 0u64;
    for (i, question) in questions.iter().enumerate() {
        let features = predictor
            .features(question)
            .map_err(|e| ApiError::from_library(e, &what(i)))?;
        let p = predictor.predict_features(&features, &lib_opts);
        explain_cost = explain_cost
            .saturating_add((p.tags.len() as u64).saturating_mul(features.len().max(1) as u64));
        predictions.push(p);
    }
    let explain = opts.explain();
    if explain && explain_cost > max_explain_cost {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "explain_too_costly",
            format!(
                "explaining this request would cost {explain_cost} (tags explained × distinct words the model knows, \
                 summed over instances); the limit is {max_explain_cost}: send fewer or shorter questions, \
                 raise the threshold, lower top_k, or ask without explain"
            ),
        ));
    }
    let tag_count = predictions.iter().map(|p| p.tags.len()).sum();
    let answered = Answered {
        answers: predictions.len(),
        no_tags: predictions.iter().filter(|p| p.tags.is_empty()).count(),
        explain,
    };
    let mut bodies = Vec::with_capacity(predictions.len());
    for (i, (question, p)) in questions.iter().zip(&predictions).enumerate() {
        let explanations = if explain {
            let explained = predictor
                .explain(question, &p.tags, &WordOptions::default())
                .map_err(|e| ApiError::from_library(e, &what(i)))?;
            Some(tagger_core::explain::explanations_json(&explained.tags))
        } else {
            None
        };
        bodies.push(
            serde_json::to_value(TagsBody::new(p, explanations))
                .map_err(|e| ApiError::internal("cannot encode prediction", &e))?,
        );
    }
    let body = if batch {
        json!({ "predictions": bodies })
    } else {
        bodies.pop().unwrap_or(Value::Null)
    };
    Ok((body, tag_count, answered))
}

/// One answer: `explanations` per returned tag (DeepSHAP, 5 words per tag and direction, words
/// present in the question): `{"tag": {"positive": [["word", 0.12], ...], "negative": [...],
/// "expected_value": ..., "probability": ...}}`.
#[derive(Serialize)]
struct TagsBody<'a> {
    tags: &'a [String],
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rounded_scores"
    )]
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

/// Scores to 4 decimals: more digits are noise to a client and bytes on the wire.
fn rounded_scores<S: Serializer>(
    scores: &Option<&BTreeMap<String, f32>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let rounded: Option<BTreeMap<&str, f64>> = scores.map(|m| {
        m.iter()
            .map(|(k, &v)| (k.as_str(), (f64::from(v) * 1e4).round() / 1e4))
            .collect()
    });
    rounded.serialize(s)
}
