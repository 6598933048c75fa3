//! Every failure as a status and a `{"error": {"code", "message"}}` body, and the JSON responses
//! the routes build.

use axum::body::Body;
use axum::response::Response;
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::json;
use tagger_core::Error as LibError;

/// A response-ready failure.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    allow: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn method_not_allowed(allow: &'static str, method: &Method) -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed here: use {allow}"),
        );
        e.allow = Some(allow);
        e
    }

    pub(crate) fn no_model() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_model",
            "no model is loaded yet: publish one (train on a CSV) and retry",
        )
    }

    pub(crate) fn empty_question(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "empty_question", message)
    }

    pub(crate) fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body is larger than the limit of {limit} bytes"),
        )
    }

    pub(crate) fn timeout(what: &str) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!("{what} took too long: send the whole request promptly"),
        )
    }

    /// A fault of ours: the cause is logged, the client gets a generic message.
    pub(crate) fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    pub(crate) fn from_library(e: LibError, what: &str) -> Self {
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

    /// An error answer for a status that a layer produced without a body of ours.
    pub(crate) fn for_status(status: StatusCode, max_body_bytes: usize) -> Self {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => Self::body_too_large(max_body_bytes),
            StatusCode::REQUEST_TIMEOUT => Self::timeout("the request"),
            StatusCode::SERVICE_UNAVAILABLE => Self::new(
                status,
                "unavailable",
                "the server is busy: retry in a moment",
            ),
            s if s.is_server_error() => Self::new(status, "internal", "internal error"),
            s => Self::new(
                s,
                "bad_request",
                s.canonical_reason().unwrap_or("bad request"),
            ),
        }
    }

    pub(crate) fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut resp = json_response(self.status, &body, None);
        if let Some(allow) = self.allow {
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        resp
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> Response {
        ApiError::into_response(self)
    }
}

/// A JSON answer that no cache keeps, with the serving model's version when there is one.
pub(crate) fn json_response<T: Serialize + ?Sized>(
    status: StatusCode,
    body: &T,
    version: Option<&str>,
) -> Response {
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
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert("x-model-version", v);
    }
    resp
}
