//! The API's contract: `functions/predict/openapi.json` (OpenAPI 3.1), committed, embedded in
//! the binary and served at `GET /openapi.json`.
//!
//! The document's schemas are generated (schemars, JSON Schema 2020-12) from the types below,
//! and the tests hold both ends to them: the committed document must equal the generated one
//! (`UPDATE_OPENAPI=1 cargo test -p predict openapi` rewrites it), and the handler's real answers
//! must parse into these types with unknown fields refused, so a field added to or dropped from
//! an answer fails a test until the contract says so.

/// The committed document, as served.
pub(crate) const DOCUMENT: &str = include_str!("../openapi.json");

// Fields are read by serde (the drift tests) and schemars (the document), not all by code.
#[cfg(test)]
#[allow(dead_code)]
pub(crate) mod types {
    use std::collections::BTreeMap;

    use schemars::JsonSchema;
    use serde::Deserialize;
    use serde_json::Value;

    /// A question: not empty, and not only whitespace.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(transparent)]
    pub struct Question(#[schemars(regex(pattern = r"\S"))] pub String);

    /// The body of `POST /predict` as JSON: exactly one of `question`, `html` or `instances`,
    /// with options (which win over the same options in the query string).
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(untagged)]
    pub enum PredictRequest {
        Question(QuestionRequest),
        Html(HtmlRequest),
        Batch(BatchRequest),
    }

    /// One question as plain text.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct QuestionRequest {
        pub question: Question,
        #[serde(flatten)]
        pub options: Options,
    }

    /// One question as HTML (a draft's markup; reduced to text, code kept).
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct HtmlRequest {
        pub html: Question,
        #[serde(flatten)]
        pub options: Options,
    }

    /// Several questions, answered in order (at most `MAX_INSTANCES`, 100 by default).
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct BatchRequest {
        #[schemars(length(min = 1, max = 100))]
        pub instances: Vec<Question>,
        #[serde(flatten)]
        pub options: Options,
    }

    /// Options of a prediction, in the JSON body or the query string.
    #[derive(Debug, Default, Deserialize, JsonSchema)]
    pub struct Options {
        /// Every tag's probability (rounded to 4 decimals) in `scores`.
        #[serde(default)]
        pub scores: Option<bool>,
        /// One threshold for every tag, replacing the calibrated ones.
        #[serde(default)]
        #[schemars(range(min = 0.0, max = 1.0))]
        pub threshold: Option<f64>,
        /// At most this many tags, the most probable first.
        #[serde(default)]
        #[schemars(range(min = 1))]
        pub top_k: Option<u64>,
        /// Which words drove each returned tag (DeepSHAP) in `explanations`.
        #[serde(default)]
        pub explain: Option<bool>,
    }

    /// The answer for one question.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PredictAnswer {
        /// Tags at or above their thresholds, most probable first.
        pub tags: Vec<String>,
        /// Every tag's probability, when `scores` was asked for.
        #[serde(default)]
        pub scores: Option<BTreeMap<String, f64>>,
        /// Per returned tag, when `explain` was asked for.
        #[serde(default)]
        pub explanations: Option<BTreeMap<String, Explanation>>,
    }

    /// The answer for `instances`: one answer per question, in order.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct BatchAnswer {
        pub predictions: Vec<PredictAnswer>,
    }

    /// Why a tag was predicted: the question's words that pushed it up and down most, each
    /// `[word, attribution]`, and the model's base and final probability.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Explanation {
        pub positive: Vec<(String, f64)>,
        pub negative: Vec<(String, f64)>,
        pub expected_value: f64,
        pub probability: f64,
    }

    /// `GET /health` when a model is loaded.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Health {
        /// Always `ok`.
        pub status: String,
        pub version: String,
        pub trained_at: String,
        pub loaded_at: String,
    }

    /// `GET /model`: the model being served.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ModelFacts {
        pub version: String,
        pub trained_at: String,
        pub crate_version: String,
        /// Where the training data came from.
        pub source: String,
        pub data_sha256: String,
        pub rows: Rows,
        /// Every tag the model knows.
        pub labels: Vec<String>,
        pub features: u64,
        /// Hidden layer widths.
        pub hidden: Vec<u64>,
        pub background_rows: u64,
        pub thresholds: Thresholds,
        /// Headline test metrics, when the model was evaluated.
        pub metrics: Option<Metrics>,
        /// Training's record: settings, full test report, epoch history.
        pub training: Value,
        pub pointer: PointerFacts,
        /// When this instance loaded the model.
        pub loaded_at: String,
        /// Whether `MODEL_VERSION` pins this version (hot reload off).
        pub pinned: bool,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Rows {
        pub train: u64,
        pub validation: u64,
        pub test: u64,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Thresholds {
        pub global: f64,
        pub per_tag: BTreeMap<String, f64>,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Metrics {
        pub examples: u64,
        pub p_at_1: f64,
        pub micro_f1: f64,
        pub macro_f1: f64,
    }

    /// The pointer (`latest.json`) the model was loaded through.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PointerFacts {
        pub key: String,
        pub sha256: String,
        pub created_at: String,
    }

    /// Every failure: a stable `code` and a message for people.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Error {
        pub error: ErrorDetail,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ErrorDetail {
        /// `invalid_json`, `unknown_parameter`, `empty_question`, `no_model`, ...
        pub code: String,
        pub message: String,
    }
}

#[cfg(test)]
pub(crate) fn generate() -> serde_json::Value {
    use schemars::generate::SchemaSettings;
    use serde_json::json;

    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let mut schema = |f: fn(&mut schemars::SchemaGenerator) -> schemars::Schema| {
        serde_json::to_value(f(&mut generator)).expect("a schema is JSON")
    };
    let request = schema(|g| g.subschema_for::<types::PredictRequest>());
    let one = schema(|g| g.subschema_for::<types::PredictAnswer>());
    let batch = schema(|g| g.subschema_for::<types::BatchAnswer>());
    let health = schema(|g| g.subschema_for::<types::Health>());
    let model = schema(|g| g.subschema_for::<types::ModelFacts>());
    let error = schema(|g| g.subschema_for::<types::Error>());
    let schemas = generator.take_definitions(true);

    let json_body =
        |schema: &serde_json::Value| json!({ "application/json": { "schema": schema } });
    let error_response = |what: &str| json!({ "description": what, "content": json_body(&error) });
    let query = |name: &str, schema: serde_json::Value, what: &str| json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": what });
    let predict_responses = json!({
        "200": {
            "description": "The tags (an answer per question for `instances`).",
            "content": json_body(&json!({ "oneOf": [one, batch] })),
        },
        "400": error_response("Invalid JSON, field or query parameter (unknown or repeated ones included)."),
        "408": error_response("The body or the whole request took too long."),
        "413": error_response("Body over MAX_BODY_BYTES, or more instances than MAX_INSTANCES."),
        "415": error_response("Unsupported content type or charset."),
        "422": error_response("An empty question, or explanations over MAX_EXPLAIN_COST."),
        "503": error_response("No model is loaded yet."),
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "tagger prediction API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Stack Overflow tag prediction: the confident tags of a question, with their probabilities and the words behind them on request. Errors are {\"error\": {\"code\", \"message\"}}.",
        },
        "paths": {
            "/predict": {
                "post": {
                    "operationId": "predict",
                    "summary": "Tags for one question or a batch",
                    "parameters": [
                        query("scores", json!({ "type": "boolean" }), "Every tag's probability in `scores`."),
                        query("threshold", json!({ "type": "number", "minimum": 0, "maximum": 1 }), "One threshold for every tag."),
                        query("top_k", json!({ "type": "integer", "minimum": 1 }), "At most this many tags."),
                        query("explain", json!({ "type": "boolean" }), "The words behind each returned tag."),
                    ],
                    "requestBody": {
                        "required": true,
                        "content": {
                            "application/json": { "schema": request },
                            "text/plain": { "schema": { "type": "string", "pattern": "\\S" } },
                        },
                    },
                    "responses": predict_responses,
                },
            },
            "/model": {
                "get": {
                    "operationId": "model",
                    "summary": "The model being served",
                    "responses": {
                        "200": { "description": "Version, tags, thresholds, metrics, provenance.", "content": json_body(&model) },
                        "503": error_response("No model is loaded yet."),
                    },
                },
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether a model is loaded",
                    "responses": {
                        "200": { "description": "A model is loaded.", "content": json_body(&health) },
                        "503": error_response("No model is loaded yet."),
                    },
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": { "description": "The OpenAPI document.", "content": json_body(&json!({ "type": "object" })) },
                    },
                },
            },
        },
        "components": { "schemas": schemas },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_document_is_what_the_types_generate() {
        let generated = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
            return;
        }
        assert!(
            DOCUMENT == generated,
            "{path} is not what the contract types generate: rerun with UPDATE_OPENAPI=1 and commit it"
        );
    }

    /// One request through the whole application: status and body.
    async fn call(
        state: &std::sync::Arc<crate::State>,
        method: &str,
        uri: &str,
        body: &str,
    ) -> (u16, Vec<u8>) {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap();
        let resp = crate::app(std::sync::Arc::clone(state))
            .oneshot(req)
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (
            status,
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
    }

    #[track_caller]
    fn parses<T: serde::de::DeserializeOwned>(status: u16, want: u16, body: &[u8]) -> T {
        assert_eq!(status, want, "{}", String::from_utf8_lossy(body));
        serde_json::from_slice(body).unwrap_or_else(|e| {
            panic!(
                "answer drifted from the contract ({e}): {}",
                String::from_utf8_lossy(body)
            )
        })
    }

    /// Every kind of answer the handler gives parses into its contract type, unknown fields
    /// refused: a field added to or dropped from an answer fails here.
    #[tokio::test]
    async fn the_handlers_answers_parse_into_the_contract_types() {
        use std::sync::Arc;
        let store = Arc::new(tagger_registry::store::MemoryStore::new());
        let artifact = tagger_testkit::tiny_artifact(1);
        tagger_testkit::publish(store.as_ref(), "", &artifact).await;
        let state =
            Arc::new(crate::State::new(store, "", crate::Config::for_local("memory://")).await);
        let q = r#"{"question": "numpy array python", "threshold": 0, "top_k": 2}"#;

        let (st, body) = call(&state, "POST", "/predict?scores=true&explain=true", q).await;
        let one: types::PredictAnswer = parses(st, 200, &body);
        assert_eq!(one.tags.len(), 2);
        assert!(one.scores.is_some() && one.explanations.is_some());
        let (st, body) = call(&state, "POST", "/predict", q).await;
        let one: types::PredictAnswer = parses(st, 200, &body);
        assert!(one.scores.is_none() && one.explanations.is_none());
        // `2.0` is an integer to JSON Schema: found by schemathesis, refused with 400 before.
        let q2 = r#"{"question": "numpy array python", "threshold": 0, "top_k": 2.0}"#;
        let (st, body) = call(&state, "POST", "/predict", q2).await;
        let two: types::PredictAnswer = parses(st, 200, &body);
        assert_eq!(two.tags.len(), 2);
        // Integers past u64 are still integers (schemathesis again): every tag, as any large top_k.
        let huge = r#"{"question": "numpy array python", "threshold": 0, "top_k": 3719168213794332888589664256}"#;
        let (st, body) = call(
            &state,
            "POST",
            "/predict?top_k=371916821379433288858966425600",
            huge,
        )
        .await;
        let all: types::PredictAnswer = parses(st, 200, &body);
        assert_eq!(all.tags.len(), artifact.labels.len());
        let batch = r#"{"instances": ["numpy array", "react state"], "scores": true}"#;
        let (st, body) = call(&state, "POST", "/predict", batch).await;
        let answers: types::BatchAnswer = parses(st, 200, &body);
        assert_eq!(answers.predictions.len(), 2);
        let (st, body) = call(&state, "GET", "/health", "").await;
        let _: types::Health = parses(st, 200, &body);
        let (st, body) = call(&state, "GET", "/model", "").await;
        let facts: types::ModelFacts = parses(st, 200, &body);
        assert!(!facts.pinned);
        let (st, body) = call(&state, "POST", "/predict?nope=1", q).await;
        let e: types::Error = parses(st, 400, &body);
        assert_eq!(e.error.code, "unknown_parameter");
        let (st, body) = call(&state, "GET", "/openapi.json", "").await;
        assert_eq!((st, body.as_slice()), (200, DOCUMENT.as_bytes()));
    }

    /// The contract's request type and the handler's parser agree on what a body is.
    #[tokio::test]
    async fn the_parser_accepts_what_the_request_schema_accepts_and_no_more() {
        use std::sync::Arc;
        let store = Arc::new(tagger_registry::store::MemoryStore::new());
        tagger_testkit::publish(store.as_ref(), "", &tagger_testkit::tiny_artifact(1)).await;
        let state =
            Arc::new(crate::State::new(store, "", crate::Config::for_local("memory://")).await);
        let cases = [
            r#"{"question": "numpy array", "top_k": 1, "scores": true}"#,
            r#"{"html": "<p>numpy <code>reshape</code></p>", "explain": false}"#,
            r#"{"instances": ["numpy array", "react state"], "threshold": 0.5}"#,
            r#"{"question": "numpy", "scores": null}"#,
            r#"{"question": "numpy", "html": "<p>numpy</p>"}"#,
            r#"{"question": "numpy", "colour": true}"#,
            r#"{"instances": []}"#,
            r#"{"question": "numpy", "top_k": 0}"#,
            r#"{"question": "numpy", "threshold": 1.5}"#,
            r#"{"question": "numpy", "scores": "yes"}"#,
            r#"{"question": " "}"#,
            // Whitespace to Python's `\s` (schemathesis' regex engine), not to `str::trim`.
            r#"{"question": "\u001c\u001f "}"#,
            r#"{"question": "\u00a0\u2003"}"#,
            r#"{}"#,
        ];
        for body in cases {
            let contract = serde_json::from_str::<types::PredictRequest>(body);
            let valid = match &contract {
                Ok(types::PredictRequest::Question(r)) => valid(&[&r.question], &r.options),
                Ok(types::PredictRequest::Html(r)) => valid(&[&r.html], &r.options),
                Ok(types::PredictRequest::Batch(r)) => {
                    (1..=100).contains(&r.instances.len())
                        && valid(&r.instances.iter().collect::<Vec<_>>(), &r.options)
                }
                Err(_) => false,
            };
            let (status, answer) = call(&state, "POST", "/predict", body).await;
            assert_eq!(
                status == 200,
                valid,
                "{body}: contract {contract:?}, handler {status} {}",
                String::from_utf8_lossy(&answer)
            );
        }
    }

    #[test]
    fn blank_means_what_the_pattern_means_to_python() {
        // `re.search(r"\S", s)` is None for exactly these (and `str.trim` keeps U+001C..U+001F).
        for blank in [
            "",
            " \t\n",
            "\u{1c}\u{1d}\u{1e}\u{1f}",
            "\u{85}\u{a0}\u{2003}\u{3000}",
        ] {
            assert!(crate::routes::is_blank(blank), "{blank:?}");
        }
        for text in ["a", "\u{6}", "\u{feff}", " x "] {
            assert!(!crate::routes::is_blank(text), "{text:?}");
        }
    }

    /// What the schema's keywords (pattern, range) add to the types' shape.
    fn valid(questions: &[&types::Question], o: &types::Options) -> bool {
        questions.iter().all(|q| !crate::routes::is_blank(&q.0))
            && o.threshold.is_none_or(|t| (0.0..=1.0).contains(&t))
            && o.top_k.is_none_or(|k| k >= 1)
    }

    #[test]
    fn the_document_is_openapi_3_1_and_names_every_route() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        for path in ["/predict", "/model", "/health", "/openapi.json"] {
            assert!(doc["paths"][path].is_object(), "{path}");
        }
    }

    #[test]
    fn the_request_schema_names_the_fields_the_parser_takes() {
        let doc = generate();
        let mut fields: Vec<String> = ["QuestionRequest", "HtmlRequest", "BatchRequest"]
            .iter()
            .flat_map(|name| {
                let schema = &doc["components"]["schemas"][name];
                let mut names: Vec<String> = schema["properties"]
                    .as_object()
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default();
                // Flattened options sit in allOf/$ref when schemars does not inline them.
                if let Some(all) = schema["allOf"].as_array() {
                    for s in all {
                        if let Some(p) = s["properties"].as_object() {
                            names.extend(p.keys().cloned());
                        }
                    }
                }
                names
            })
            .collect();
        fields.sort();
        fields.dedup();
        let mut parser: Vec<String> = crate::request::JSON_FIELDS
            .split(", ")
            .map(str::to_owned)
            .collect();
        parser.sort();
        assert_eq!(fields, parser);
    }
}
