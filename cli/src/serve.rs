//! `tagger serve`: the Lambda's own handler behind a local HTTP/1 server, so a laptop answers
//! exactly as the deployed function does.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::RequestExt;
use tagger_registry::store::{LocalStore, ObjectStore};

/// A local model folder from a path or `file://` URI.
fn local_store(model: &str) -> Result<LocalStore> {
    if model.starts_with("s3://") {
        bail!("`tagger serve` reads local model folders; deploy the predict function (or run it under `cargo lambda watch`) to serve {model}");
    }
    let path = model.strip_prefix("file://").unwrap_or(model);
    Ok(LocalStore::new(path))
}

pub fn run(model: &str, host: &str, port: u16) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(local_store(model)?);
        let state =
            Arc::new(predict::State::new(store, "", predict::Config::for_local(model)).await);
        let addr: SocketAddr = format!("{host}:{port}")
            .parse()
            .with_context(|| format!("bad address {host}:{port}"))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        println!(
            "serving {model} on http://{}  (POST /predict, GET /model, GET /health; Ctrl-C stops)",
            listener.local_addr()?
        );
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => accepted?,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(bridge(req, &state).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!("connection ended: {e}");
                }
            });
        }
    })
}

/// hyper request -> lambda_http request -> the function's handler -> hyper response.
async fn bridge(
    req: hyper::Request<Incoming>,
    state: &predict::State,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    // One byte over the limit is enough for the handler to answer 413 without buffering more.
    let limit = state.config().max_body_bytes.saturating_add(1);
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::from(vec![0u8; limit]),
    };
    let query: HashMap<String, String> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        lambda_http::Body::from(bytes.to_vec())
    };
    let request = lambda_http::Request::from_parts(parts, body).with_query_string_parameters(query);
    let (parts, body) = predict::handle(request, state).await.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(s) => Bytes::from(s),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}
