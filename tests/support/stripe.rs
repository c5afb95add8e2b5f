//! A local stand-in for Stripe's REST API, for tests: the subset Aerobook uses (PaymentIntents and Refunds:
//! create, retrieve, list), form-encoded bodies, `Idempotency-Key` semantics (same key and parameters:
//! the first answer again; other parameters: `idempotency_error`), Stripe's error JSON, and signed webhook
//! deliveries. It misbehaves on command: slow answers (after doing the work), 500s, and card declines.
//! The server under test talks to it with the real async-stripe client.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use aerobook_server::stripe_wire as wire;
use axum::{
    Router,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use uuid::Uuid;

/// The webhook signing secret the test server signs with (configure it as `STRIPE_WEBHOOK_SECRET`).
pub const WEBHOOK_SECRET: &str = "whsec_test_server_0123456789";
/// The API key the server under test presents.
pub const SECRET_KEY: &str = "sk_test_aerobook";

/// What the next create request suffers.
#[derive(Debug, Clone)]
pub enum Misbehaviour {
    /// Do the work, then answer after this long (a client timeout that happened after the effect).
    SlowAnswer(Duration),
    /// Answer 500 without doing anything.
    ServerError,
    /// Refuse the card: 402 `card_error` with this decline code.
    Decline(&'static str),
}

#[derive(Default)]
struct Ledger {
    /// In creation order.
    intents: Vec<Value>,
    refunds: Vec<Value>,
    /// Idempotency key -> (request parameters, status, answer).
    keys: HashMap<String, (BTreeMap<String, String>, StatusCode, Value)>,
    misbehaviours: VecDeque<Misbehaviour>,
    /// Create requests that reached the ledger (replays excluded).
    intents_created: usize,
    refunds_created: usize,
}

#[derive(Clone)]
pub struct StripeTestServer {
    pub url: String,
    ledger: Arc<Mutex<Ledger>>,
    http: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<Bytes>,
    >,
}

impl StripeTestServer {
    pub async fn start() -> Self {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let router = Router::new()
            .route("/v1/payment_intents", post(create_intent).get(list_intents))
            .route("/v1/payment_intents/{id}", get(retrieve_intent))
            .route("/v1/refunds", post(create_refund).get(list_refunds))
            .route("/v1/refunds/{id}", get(retrieve_refund))
            .with_state(ledger.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the Stripe test server");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        Self { url: format!("http://{addr}"), ledger, http }
    }

    /// Settings that point a server under test at this Stripe.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AEROBOOK_PAYMENTS", "stripe".to_owned()),
            ("STRIPE_SECRET_KEY", SECRET_KEY.to_owned()),
            ("STRIPE_WEBHOOK_SECRET", format!("whsec_rotated_out_0123456789,{WEBHOOK_SECRET}")),
            ("STRIPE_API_BASE", self.url.clone()),
        ]
    }

    /// The next create request misbehaves.
    pub fn misbehave_next(&self, misbehaviour: Misbehaviour) {
        self.lock().misbehaviours.push_back(misbehaviour);
    }

    pub fn intents_created(&self) -> usize {
        self.lock().intents_created
    }

    pub fn refunds_created(&self) -> usize {
        self.lock().refunds_created
    }

    pub fn intent(&self, id: &str) -> Value {
        self.lock().intents.iter().find(|i| i["id"] == id).cloned().expect("a PaymentIntent of the test server")
    }

    /// The refunds of a PaymentIntent.
    pub fn refunds_of(&self, intent_id: &str) -> Vec<Value> {
        self.lock().refunds.iter().filter(|r| r["payment_intent"] == intent_id).cloned().collect()
    }

    /// The customer paid: the intent succeeds and captures its amount. Returns the updated object.
    pub fn succeed(&self, intent_id: &str) -> Value {
        self.update_intent(intent_id, |intent| {
            intent["status"] = json!("succeeded");
            intent["amount_received"] = intent["amount"].clone();
            intent["last_payment_error"] = Value::Null;
        })
    }

    /// The card was declined: the intent asks for another payment method.
    pub fn decline(&self, intent_id: &str, decline_code: &str) -> Value {
        self.update_intent(intent_id, |intent| {
            intent["status"] = json!("requires_payment_method");
            intent["last_payment_error"] = json!({
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline_code,
                "message": "Your card was declined.",
            });
        })
    }

    /// Settles a refund: `succeeded` or `failed` (with a failure reason). Returns the updated object.
    pub fn settle_refund(&self, refund_id: &str, status: &str) -> Value {
        let mut ledger = self.lock();
        let refund = ledger.refunds.iter_mut().find(|r| r["id"] == refund_id).expect("a refund of the test server");
        refund["status"] = json!(status);
        if status == "failed" {
            refund["failure_reason"] = json!("expired_or_canceled_card");
        }
        refund.clone()
    }

    /// Signs `event` as Stripe would and delivers it to the server's webhook; returns the HTTP status.
    pub async fn deliver(&self, webhook_url: &str, event: &Value) -> StatusCode {
        let payload = event.to_string();
        let signature = wire::signature(&payload, WEBHOOK_SECRET);
        self.post_webhook(webhook_url, payload, Some(signature)).await
    }

    /// Delivers a raw body with any (or no) signature header.
    pub async fn post_webhook(&self, webhook_url: &str, payload: String, signature: Option<String>) -> StatusCode {
        let mut request = http::Request::post(webhook_url).header("content-type", "application/json");
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        let request = request.body(http_body_util::Full::new(Bytes::from(payload))).expect("a valid request");
        self.http.request(request).await.expect("the webhook answers").status()
    }

    fn update_intent(&self, intent_id: &str, change: impl FnOnce(&mut Value)) -> Value {
        let mut ledger = self.lock();
        let intent =
            ledger.intents.iter_mut().find(|i| i["id"] == intent_id).expect("a PaymentIntent of the test server");
        change(intent);
        intent.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().expect("the test server's ledger")
    }
}

type Shared = State<Arc<Mutex<Ledger>>>;

async fn create_intent(State(ledger): Shared, headers: HeaderMap, body: Bytes) -> Response {
    create(ledger, headers, body, |ledger, params| {
        let Some(amount) = params.get("amount").and_then(|a| a.parse::<i64>().ok()).filter(|a| *a > 0) else {
            return invalid("amount", "Missing or invalid amount.");
        };
        let Some(currency) = params.get("currency") else { return invalid("currency", "Missing currency.") };
        let id = format!("pi_test_{}", Uuid::new_v4().simple());
        let intent = wire::payment_intent(
            &id,
            &format!("{id}_secret_test"),
            amount,
            currency,
            "requires_payment_method",
            0,
            &metadata(params),
            None,
        );
        ledger.intents.push(intent.clone());
        ledger.intents_created += 1;
        (StatusCode::OK, intent)
    })
    .await
}

async fn create_refund(State(ledger): Shared, headers: HeaderMap, body: Bytes) -> Response {
    create(ledger, headers, body, |ledger, params| {
        let Some(intent_id) = params.get("payment_intent") else {
            return invalid("payment_intent", "Missing payment_intent.");
        };
        let Some(intent) = ledger.intents.iter().find(|i| i["id"] == intent_id.as_str()).cloned() else {
            return (
                StatusCode::NOT_FOUND,
                wire::error("invalid_request_error", Some("resource_missing"), None, "No such payment_intent."),
            );
        };
        let received = intent["amount_received"].as_i64().unwrap_or(0);
        let refunded: i64 = ledger
            .refunds
            .iter()
            .filter(|r| r["payment_intent"] == intent_id.as_str() && r["status"] != "failed")
            .map(|r| r["amount"].as_i64().unwrap_or(0))
            .sum();
        let amount = params.get("amount").and_then(|a| a.parse::<i64>().ok()).unwrap_or(received - refunded);
        if amount <= 0 || amount > received - refunded {
            return invalid("amount", "Refund amount is greater than the unrefunded amount on the charge.");
        }
        let id = format!("re_test_{}", Uuid::new_v4().simple());
        let currency = intent["currency"].as_str().unwrap_or("usd");
        let refund = wire::refund(&id, intent_id, amount, currency, "pending", &metadata(params), None);
        ledger.refunds.push(refund.clone());
        ledger.refunds_created += 1;
        (StatusCode::OK, refund)
    })
    .await
}

/// A create request: misbehaviour first, then `Idempotency-Key` semantics around `make`.
async fn create(
    ledger: Arc<Mutex<Ledger>>,
    headers: HeaderMap,
    body: Bytes,
    make: impl FnOnce(&mut Ledger, &BTreeMap<String, String>) -> (StatusCode, Value),
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {SECRET_KEY}")) {
        return answer(
            StatusCode::UNAUTHORIZED,
            wire::error("invalid_request_error", None, None, "Invalid API Key provided."),
        );
    }
    let params: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (misbehaviour, answered) = {
        let mut ledger = ledger.lock().expect("ledger");
        let misbehaviour = ledger.misbehaviours.pop_front();
        let answered = match (&key, &misbehaviour) {
            (_, Some(Misbehaviour::ServerError)) => Some((
                StatusCode::INTERNAL_SERVER_ERROR,
                wire::error("api_error", None, None, "Something went wrong on Stripe's end."),
                false,
            )),
            (_, Some(Misbehaviour::Decline(code))) => Some((
                StatusCode::PAYMENT_REQUIRED,
                wire::error("card_error", Some("card_declined"), Some(code), "Your card was declined."),
                false,
            )),
            (Some(key), _) => match ledger.keys.get(key) {
                Some((first, status, body)) if *first == params => Some((*status, body.clone(), true)),
                Some(_) => Some((
                    StatusCode::BAD_REQUEST,
                    wire::error(
                        "idempotency_error",
                        None,
                        None,
                        "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                    ),
                    false,
                )),
                None => None,
            },
            (None, _) => None,
        };
        let answered = answered.unwrap_or_else(|| {
            let (status, body) = make(&mut ledger, &params);
            if let Some(key) = &key {
                ledger.keys.insert(key.clone(), (params.clone(), status, body.clone()));
            }
            (status, body, false)
        });
        (misbehaviour, answered)
    };
    if let Some(Misbehaviour::SlowAnswer(delay)) = misbehaviour {
        tokio::time::sleep(delay).await;
    }
    let (status, body, replayed) = answered;
    let mut response = answer(status, body);
    if replayed {
        response.headers_mut().insert("idempotent-replayed", http::HeaderValue::from_static("true"));
    }
    response
}

async fn retrieve_intent(State(ledger): Shared, Path(id): Path<String>) -> Response {
    let ledger = ledger.lock().expect("ledger");
    found(ledger.intents.iter().find(|i| i["id"] == id.as_str()))
}

async fn retrieve_refund(State(ledger): Shared, Path(id): Path<String>) -> Response {
    let ledger = ledger.lock().expect("ledger");
    found(ledger.refunds.iter().find(|r| r["id"] == id.as_str()))
}

async fn list_intents(State(ledger): Shared, RawQuery(query): RawQuery) -> Response {
    let ledger = ledger.lock().expect("ledger");
    list("/v1/payment_intents", &ledger.intents, query)
}

async fn list_refunds(State(ledger): Shared, RawQuery(query): RawQuery) -> Response {
    let ledger = ledger.lock().expect("ledger");
    list("/v1/refunds", &ledger.refunds, query)
}

/// Newest first, `created[gte]`, `limit` and `starting_after`, as Stripe pages.
fn list(url: &str, objects: &[Value], query: Option<String>) -> Response {
    let params: BTreeMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let since = params.get("created[gte]").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let limit = params.get("limit").and_then(|v| v.parse::<usize>().ok()).unwrap_or(10).clamp(1, 100);
    let mut newest_first: Vec<&Value> = objects.iter().rev().filter(|o| o["created"].as_i64() >= Some(since)).collect();
    if let Some(after) = params.get("starting_after") {
        let position = newest_first.iter().position(|o| o["id"] == after.as_str()).map_or(0, |p| p + 1);
        newest_first.drain(..position);
    }
    let has_more = newest_first.len() > limit;
    newest_first.truncate(limit);
    answer(StatusCode::OK, json!({"object": "list", "url": url, "has_more": has_more, "data": newest_first}))
}

fn metadata(params: &BTreeMap<String, String>) -> Value {
    let entries: serde_json::Map<String, Value> = params
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("metadata[")?.strip_suffix(']')?.to_owned(), json!(v))))
        .collect();
    Value::Object(entries)
}

fn invalid(param: &str, message: &str) -> (StatusCode, Value) {
    let mut error = wire::error("invalid_request_error", Some("parameter_invalid"), None, message);
    error["error"]["param"] = json!(param);
    (StatusCode::BAD_REQUEST, error)
}

fn found(object: Option<&Value>) -> Response {
    match object {
        Some(object) => answer(StatusCode::OK, object.clone()),
        None => answer(
            StatusCode::NOT_FOUND,
            wire::error("invalid_request_error", Some("resource_missing"), None, "No such object."),
        ),
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, [(http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Generates `embedded` and `external` variants of a test that runs against the Stripe test server:
/// `async fn name(app: TestApp, stripe: StripeTestServer) { ... }`, with optional extra settings.
#[macro_export]
macro_rules! stripe_tests {
    ($($(#[$meta:meta])* async fn $name:ident($app:ident: TestApp, $stripe:ident: StripeTestServer $(, settings = [$(($key:literal, $value:literal)),* $(,)?])?) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: $crate::TestApp, $stripe: $crate::stripe::StripeTestServer) $body

            async fn start(backend: $crate::Backend) -> Option<($crate::TestApp, $crate::stripe::StripeTestServer)> {
                let stripe = $crate::stripe::StripeTestServer::start().await;
                #[allow(unused_mut)]
                let mut settings = stripe.settings();
                $($(settings.push(($key, $value.to_owned()));)*)?
                let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
                Some(($crate::TestApp::spawn(backend, &settings).await?, stripe))
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                let (app, stripe) = start($crate::Backend::Embedded).await.expect("embedded always runs");
                run(app, stripe).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn external() {
                if let Some((app, stripe)) = start($crate::Backend::External).await {
                    run(app, stripe).await
                }
            }
        }
    )*};
}
