//! The HTTP application: the routes behind the layers every request passes, the same on Lambda
//! (`lambda_http::run(app(state))`) and in `tagger serve`.
//!
//! Outermost first: a request id (`x-request-id`, from the client, the Lambda invocation or a
//! counter), one INFO access-log line per request (id, method, path, route, status, latency,
//! model version, tag count; never the question) and its metrics document, CORS when origins are
//! configured, JSON bodies for the errors the layers below produce, a whole-request timeout
//! (408), the body size limit (413) and a body read timeout (408).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State as AxumState};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::header::{HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_TYPE};
use http::{Method, StatusCode};
use lambda_http::RequestExt;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::config::CorsOrigins;
use crate::error::ApiError;
use crate::metrics::RequestMetrics;
use crate::routes::{dispatch, RouteName, TagCount};
use crate::State;

/// How long a browser may cache a preflight answer.
const CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// The application: every route, behind the layers described in the module docs.
///
/// The layers are one [`ServiceBuilder`] stack given to the router once: each `Router::layer`
/// call boxes the service again, and axum clones every boxed level on every request.
pub fn app(state: Arc<State>) -> Router {
    let config = state.config().clone();
    let metrics = Arc::new(RequestMetrics::new(Arc::clone(&state)));
    let cors = cors_layer(&config.cors);
    let strict = cors.is_some().then(|| middleware::from_fn(strict_cors));
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(RequestIds::default()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", id, method = %req.method(), path = req.uri().path())
                })
                .on_request(())
                .on_response(move |resp: &Response, latency: Duration, span: &Span| {
                    access_log(resp, latency, span);
                    metrics.record(resp, latency);
                })
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .option_layer(strict)
        .option_layer(cors)
        .layer(middleware::from_fn_with_state(
            config.max_body_bytes,
            json_errors,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        // The timeout's own 408 needs a body type with a default; the limit's has none.
        .map_response(IntoResponse::into_response)
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
        .layer(RequestBodyTimeoutLayer::new(config.body_timeout));
    Router::new()
        .fallback(dispatch)
        .with_state(state)
        .layer(layers)
}

/// The access-log line, in the request's span.
fn access_log(resp: &Response, latency: Duration, _span: &Span) {
    let route = resp.extensions().get::<RouteName>().map_or("-", |r| r.0);
    let tags = resp.extensions().get::<TagCount>().map(|t| t.0);
    let version = resp
        .headers()
        .get("x-model-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let request_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info!(
        request_id,
        route,
        status = resp.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1e3,
        model_version = version,
        tags,
        "answered"
    );
}

/// The Lambda invocation's id when there is one, else `local-<n>`.
#[derive(Clone, Default)]
struct RequestIds(Arc<AtomicU64>);

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, req: &http::Request<B>) -> Option<RequestId> {
        let id = match req.lambda_context_ref() {
            Some(ctx) if !ctx.request_id.is_empty() => ctx.request_id.clone(),
            _ => format!("local-{}", self.0.fetch_add(1, Ordering::Relaxed) + 1),
        };
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Error responses made by a layer (body limit, timeout) get the same JSON body as ours.
async fn json_errors(AxumState(max_body): AxumState<usize>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let (mut parts, _) = resp.into_parts();
        let ours = ApiError::for_status(status, max_body).into_response();
        let (ours_parts, body) = ours.into_parts();
        parts.headers.remove(http::header::CONTENT_LENGTH);
        parts.headers.extend(ours_parts.headers);
        return Response::from_parts(parts, body);
    }
    resp
}

fn cors_layer(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow = match origins {
        CorsOrigins::None => return None,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(
            list.iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        ),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                CONTENT_TYPE,
                // CloudFront's origin access control needs the payload hash from the browser.
                HeaderName::from_static("x-amz-content-sha256"),
            ])
            .expose_headers([
                HeaderName::from_static("x-model-version"),
                HeaderName::from_static("x-request-id"),
            ])
            .max_age(CORS_MAX_AGE),
    )
}

/// tower-http answers every `OPTIONS` itself (200) and sends the method and header lists even to
/// an origin it does not allow. Preflights get 204, and a disallowed origin no CORS header at all.
async fn strict_cors(req: Request, next: Next) -> Response {
    let preflight = req.method() == Method::OPTIONS;
    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    if !headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
        let cors: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in cors {
            headers.remove(name);
        }
    }
    if preflight && resp.status() == StatusCode::OK {
        *resp.status_mut() = StatusCode::NO_CONTENT;
    }
    resp
}

#[cfg(test)]
mod tests;
