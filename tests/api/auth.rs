//! Accounts, tokens, roles and rate limits, through the real RPCs.

use aerobook_proto::v1 as pb;
use aerobook_server::{Cli, Command, run_admin};
use aerobook_tests::{
    Backend, ContractError, JWT_SECRET, Role, TestApp, backend_tests, bearer_signed_with, grpc_web, request,
    riyadh_date, search_request,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use clap::Parser as _;
use std::time::Duration;

fn unique_email() -> String {
    format!("traveller-{}@example.com", uuid::Uuid::new_v4().simple())
}

const PASSWORD: &str = "correct horse battery";

async fn register(app: &TestApp, email: &str) -> pb::AuthTokens {
    let message = pb::RegisterRequest { email: email.into(), password: PASSWORD.into(), full_name: "Ann Lee".into() };
    app.auth().register(message).await.expect("registered").into_inner()
}

async fn me(app: &TestApp, authorization: &str) -> Result<pb::User, ContractError> {
    app.auth()
        .get_me(request(pb::GetMeRequest {}, &[("authorization", authorization)]))
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| ContractError::from_status(&status))
}

async fn refresh(app: &TestApp, token: &str) -> Result<pb::AuthTokens, ContractError> {
    app.auth()
        .refresh_token(pb::RefreshTokenRequest { refresh_token: token.into() })
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| ContractError::from_status(&status))
}

fn assert_unauthorized(result: Result<impl std::fmt::Debug, ContractError>) {
    let error = result.expect_err("refused");
    assert_eq!((error.code, error.reason.as_str()), (tonic::Code::Unauthenticated, "UNAUTHORIZED"), "{error:?}");
}

backend_tests! {
    async fn a_customer_registers_signs_in_refreshes_and_signs_out(app: TestApp) {
        let email = unique_email();
        let registered = register(&app, &email).await;
        let user = registered.user.clone().unwrap();
        assert_eq!((user.email.as_str(), user.role()), (email.as_str(), pb::Role::Customer));
        assert!(!registered.refresh_token.is_empty());

        let login = pb::LoginRequest { email: email.to_uppercase(), password: PASSWORD.into() };
        let session = app.auth().login(login).await.expect("emails are case-insensitive").into_inner();
        let bearer = format!("Bearer {}", session.access_token);
        assert_eq!(me(&app, &bearer).await.unwrap(), user);
        let expires = session.access_token_expires_at.unwrap().seconds - chrono::Utc::now().timestamp();
        assert!((890..=900).contains(&expires), "15 minutes by default, got {expires} s");

        let rotated = refresh(&app, &session.refresh_token).await.expect("refresh");
        assert_ne!(rotated.refresh_token, session.refresh_token);
        assert_eq!(me(&app, &format!("Bearer {}", rotated.access_token)).await.unwrap(), user);

        app.auth().logout(pb::LogoutRequest { refresh_token: rotated.refresh_token.clone() }).await.expect("logout");
        assert_unauthorized(refresh(&app, &rotated.refresh_token).await);
        app.auth().logout(pb::LogoutRequest { refresh_token: rotated.refresh_token }).await.expect("signing out twice is fine");
        // The first sign-in is a family of its own and still works.
        assert!(refresh(&app, &registered.refresh_token).await.is_ok());
    }

    async fn reusing_a_rotated_refresh_token_revokes_the_family(app: TestApp) {
        let first = register(&app, &unique_email()).await.refresh_token;
        let second = refresh(&app, &first).await.unwrap().refresh_token;
        assert_unauthorized(refresh(&app, &first).await);
        assert_unauthorized(refresh(&app, &second).await);
        assert_unauthorized(refresh(&app, "not-a-token-we-issued").await);
    }

    /// Rotation keeps a sign-in alive only up to its absolute end, however often it refreshes in time.
    async fn refreshing_never_outlives_the_sessions_absolute_end(
        app: TestApp,
        settings = [("AEROBOOK_REFRESH_TOKEN_TTL_SECONDS", "3600"), ("AEROBOOK_REFRESH_SESSION_MAX_SECONDS", "7200")]
    ) {
        let minutes = |n: u64| std::time::Duration::from_secs(60 * n);
        let mut token = register(&app, &unique_email()).await.refresh_token;
        for _ in 0..2 {
            app.clock.advance(minutes(50));
            token = refresh(&app, &token).await.expect("within both lifetimes").refresh_token;
        }
        // At 100 minutes the last token was issued; its own hour would end at 160, the session ends at 120.
        app.clock.advance(minutes(19));
        let last = refresh(&app, &token).await.expect("the session's last minute").refresh_token;
        app.clock.advance(minutes(2));
        assert_unauthorized(refresh(&app, &last).await);
    }

    async fn registration_validates_every_field_and_emails_are_unique(app: TestApp) {
        let bad = pb::RegisterRequest { email: "ann@".into(), password: "short".into(), full_name: " ".into() };
        let status = app.auth().register(bad).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&["email", "password", "full_name"]);
        let email = unique_email();
        register(&app, &email).await;
        let again = pb::RegisterRequest { email: format!(" {} ", email.to_uppercase()), password: PASSWORD.into(), full_name: "B".into() };
        let status = app.auth().register(again).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&["email"]);
    }

    async fn failed_sign_ins_do_not_reveal_whether_the_email_exists(app: TestApp) {
        let email = unique_email();
        register(&app, &email).await;
        let wrong_password = app.auth().login(pb::LoginRequest { email, password: "not the password".into() }).await.unwrap_err();
        let unknown = app.auth().login(pb::LoginRequest { email: unique_email(), password: PASSWORD.into() }).await.unwrap_err();
        let (wrong_password, unknown) = (ContractError::from_status(&wrong_password), ContractError::from_status(&unknown));
        assert_eq!((wrong_password.reason.as_str(), wrong_password.message.as_str()), (unknown.reason.as_str(), unknown.message.as_str()));
        assert_eq!(unknown.reason, "UNAUTHORIZED");
    }

    /// Wrong password and unknown email take as long: both check an Argon2 hash. Interleaved, so a slow
    /// moment of the machine falls on both; the medians agree within a third.
    async fn an_unknown_email_takes_as_long_as_a_wrong_password(app: TestApp, settings = [("AEROBOOK_RATE_LIMITS", "disabled")]) {
        let email = unique_email();
        register(&app, &email).await;
        let timed = |email: String| {
            let mut auth = app.auth();
            async move {
                let started = std::time::Instant::now();
                auth.login(pb::LoginRequest { email, password: "not the password".into() }).await.expect_err("refused");
                started.elapsed()
            }
        };
        // Medians of many tries, each pair in turns: other tests share the machine's two cores, and a few
        // tries or one fixed order let their load fall on one side.
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for pair in 0..21 {
            if pair % 2 == 0 {
                known.push(timed(email.clone()).await);
                unknown.push(timed(unique_email()).await);
            } else {
                unknown.push(timed(unique_email()).await);
                known.push(timed(email.clone()).await);
            }
        }
        let median = |mut times: Vec<Duration>| {
            times.sort();
            times[times.len() / 2].as_secs_f64()
        };
        let (known, unknown) = (median(known), median(unknown));
        let ratio = known.max(unknown) / known.min(unknown);
        assert!(ratio < 1.34, "wrong password {known:.4} s, unknown email {unknown:.4} s");
    }

    /// A burst of sign-ins never runs more Argon2 work than the bound: the calls past the running and the
    /// queued are shed at once with a retryable `SERVICE_UNAVAILABLE`, the rest answered as usual.
    async fn a_burst_of_sign_ins_is_shed_past_the_password_bound(
        app: TestApp,
        settings = [
            ("AEROBOOK_PASSWORD_CHECKS_AT_ONCE", "1"),
            ("AEROBOOK_PASSWORD_CHECKS_QUEUED", "1"),
            ("AEROBOOK_RATE_LIMITS", "disabled"),
        ]
    ) {
        const BURST: usize = 40;
        let sign_ins = (0..BURST).map(|_| {
            let mut auth = app.auth();
            async move { auth.login(pb::LoginRequest { email: unique_email(), password: PASSWORD.into() }).await }
        });
        let (mut unauthorized, mut shed) = (0, 0);
        for answer in futures::future::join_all(sign_ins).await {
            let error = ContractError::from_status(&answer.expect_err("no such account"));
            match error.reason.as_str() {
                "UNAUTHORIZED" => unauthorized += 1,
                "SERVICE_UNAVAILABLE" => {
                    assert!(error.retryable && error.retry_delay.is_some(), "{error:?}");
                    shed += 1;
                }
                other => panic!("unexpected {other}: {error:?}"),
            }
        }
        assert_eq!(unauthorized + shed, BURST);
        // One running and one waiting when the burst lands; an Argon2 check outlasts the burst's arrival.
        assert!(unauthorized >= 2 && shed >= BURST / 2, "{unauthorized} checked, {shed} shed");
        // The bound frees itself: the next sign-in is checked.
        let after = app.auth().login(pb::LoginRequest { email: unique_email(), password: PASSWORD.into() }).await;
        assert_eq!(ContractError::from_status(&after.unwrap_err()).reason, "UNAUTHORIZED");
    }

    async fn malformed_tokens_are_unauthorized_and_expired_ones_say_so(app: TestApp) {
        let good = app.bearer(Role::Customer);
        let token = good.trim_start_matches("Bearer ");
        let (header, rest) = token.split_once('.').unwrap();
        let (payload, signature) = rest.split_once('.').unwrap();
        let forged = format!("Bearer {header}.{payload}.{}", URL_SAFE_NO_PAD.encode([1u8; 32]));
        // The customer's own signature over claims raised to operator and pointed at another user.
        let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["role"] = "OPERATOR".into();
        claims["sub"] = uuid::Uuid::now_v7().to_string().into();
        let tampered = format!("Bearer {header}.{}.{signature}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let kid = serde_json::from_slice::<serde_json::Value>(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()["kid"].clone();
        let none = URL_SAFE_NO_PAD.encode(serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
        let alg_none = format!("Bearer {none}.{payload}.");
        let other_key = bearer_signed_with("another-secret-the-server-does-not-know", Role::Customer, chrono::Utc::now());
        for bad in ["garbage", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", token, "Bearer a.b.c", &forged, &tampered, &alg_none, &other_key] {
            let error = me(&app, bad).await.expect_err(bad);
            assert_eq!((error.code, error.reason.as_str()), (tonic::Code::Unauthenticated, "UNAUTHORIZED"), "{bad}");
            assert!(!error.retryable);
        }
        let expired = bearer_signed_with(JWT_SECRET, Role::Customer, chrono::Utc::now() - chrono::Duration::hours(1));
        let error = me(&app, &expired).await.unwrap_err();
        assert_eq!((error.code, error.reason.as_str()), (tonic::Code::Unauthenticated, "TOKEN_EXPIRED"));
    }

    /// Every RPC that the proto does not mark public refuses anonymous callers, and every role list is
    /// enforced, read from the same descriptors the server uses, so a new RPC cannot be forgotten.
    async fn every_rpc_enforces_its_declared_roles(app: TestApp) {
        let roles = [(Role::Customer, pb::Role::Customer), (Role::Operator, pb::Role::Operator), (Role::Service, pb::Role::Service)];
        let tokens: Vec<(pb::Role, String)> = roles.iter().map(|(role, proto)| (*proto, app.bearer(*role))).collect();
        let mut checked = 0;
        for policy in aerobook_proto::RPC_POLICIES {
            let anonymous = grpc_web::call_raw(app.addr, policy.path, &[], grpc_web::Encoding::Binary, &[]).await;
            let status = anonymous.grpc_status().unwrap();
            if policy.public {
                assert_ne!(status, tonic::Code::Unauthenticated as i32, "{} is public", policy.path);
                continue;
            }
            assert_eq!(ContractError::from_status(&anonymous.status()).reason, "UNAUTHORIZED", "{}", policy.path);
            for (role, bearer) in &tokens {
                let response = grpc_web::call_raw(app.addr, policy.path, &[], grpc_web::Encoding::Binary, &[("authorization", bearer)]).await;
                let refused = response.grpc_status() == Some(tonic::Code::PermissionDenied as i32);
                assert_eq!(refused, !policy.admits(*role), "{} as {role:?}", policy.path);
                if refused {
                    assert_eq!(ContractError::from_status(&response.status()).reason, "FORBIDDEN");
                }
                checked += 1;
            }
        }
        let protected = aerobook_proto::RPC_POLICIES.iter().filter(|p| !p.public).count();
        assert!(protected >= 13, "the contract's signed-in RPCs are all declared");
        assert_eq!(checked, 3 * protected, "every non-public RPC was called with every role");
    }

    async fn operators_and_service_accounts_come_from_the_admin_command(app: TestApp) {
        let email = unique_email();
        let cli = Cli::try_parse_from(["aerobook-server", "admin", "create-operator", "--email", &email, "--password", PASSWORD]).unwrap();
        let Some(Command::Admin(command)) = cli.command else { panic!("parsed as admin") };
        let output = run_admin(&app.config, command).await.expect("operator created");
        assert!(output.contains(&email), "{output}");
        let session = app.auth().login(pb::LoginRequest { email, password: PASSWORD.into() }).await.unwrap().into_inner();
        assert_eq!(session.user.unwrap().role(), pb::Role::Operator);

        let cli = Cli::try_parse_from(["aerobook-server", "admin", "create-service-account", "--name", "pricing-bot"]).unwrap();
        let Some(Command::Admin(command)) = cli.command else { panic!("parsed as admin") };
        let output = run_admin(&app.config, command).await.expect("service account created");
        let field = |label: &str| output.lines().find_map(|l| l.strip_prefix(label)).unwrap().trim().to_owned();
        let (client_id, secret) = (field("client id:"), field("client secret:"));
        let session = app.auth().login(pb::LoginRequest { email: client_id, password: secret }).await.unwrap().into_inner();
        let bearer = format!("Bearer {}", session.access_token);
        assert_eq!(me(&app, &bearer).await.unwrap().role(), pb::Role::Service);

        let bad = Cli::try_parse_from(["aerobook-server", "admin", "create-service-account", "--name", "Bad Name"]).unwrap();
        let Some(Command::Admin(command)) = bad.command else { panic!("parsed as admin") };
        assert!(run_admin(&app.config, command).await.is_err());
    }
}

/// Tokens signed with the previous key keep working after a rotation; unknown keys do not.
#[tokio::test]
async fn signing_keys_rotate() {
    let new_secret = "the-new-signing-secret-0123456789abc";
    let app = TestApp::spawn(
        Backend::Embedded,
        &[("AEROBOOK_JWT_SECRET", new_secret), ("AEROBOOK_JWT_PREVIOUS_SECRET", JWT_SECRET)],
    )
    .await
    .unwrap();
    for (secret, accepted) in [(JWT_SECRET, true), (new_secret, true), ("a-third-secret-nobody-configured-here", false)]
    {
        let bearer = bearer_signed_with(secret, Role::Operator, chrono::Utc::now());
        let status = app
            .flights()
            .create_flight(request(
                aerobook_tests::create_flight_request("XY1", "RUH", "RUH", 1),
                &[("authorization", &bearer)],
            ))
            .await
            .unwrap_err();
        let reason = ContractError::from_status(&status).reason;
        assert_eq!(reason != "UNAUTHORIZED", accepted, "{secret}: {reason}");
    }
}

async fn search_until_limited(app: &TestApp, authorization: Option<&str>, allowed: usize) -> ContractError {
    let search = search_request("RUH", "JED", &riyadh_date(1));
    let headers: Vec<(&'static str, &str)> = authorization.map(|a| ("authorization", a)).into_iter().collect();
    for call in 0..allowed {
        app.flights()
            .search_flights(request(search.clone(), &headers))
            .await
            .unwrap_or_else(|e| panic!("call {call}: {e:?}"));
    }
    let status = app.flights().search_flights(request(search, &headers)).await.unwrap_err();
    ContractError::from_status(&status)
}

fn assert_rate_limited(error: &ContractError, max_wait: Duration) {
    assert_eq!(
        (error.code, error.reason.as_str(), error.retryable),
        (tonic::Code::ResourceExhausted, "RATE_LIMITED", true),
        "{error:?}"
    );
    let delay = error.retry_delay.expect("RetryInfo carries the delay");
    assert!(delay > Duration::ZERO && delay <= max_wait, "{delay:?}");
}

backend_tests! {
    /// Each caller has its own bucket per class; the limit gives RATE_LIMITED with a retry delay.
    async fn search_limits_apply_per_caller(app: TestApp, settings = [("AEROBOOK_RATE_LIMIT_SEARCH", "3/60")]) {
        assert_rate_limited(&search_until_limited(&app, None, 3).await, Duration::from_secs(20));
        let customer = app.bearer(Role::Customer);
        assert_rate_limited(&search_until_limited(&app, Some(&customer), 3).await, Duration::from_secs(20));
    }

    /// Failed sign-ins are counted per email and client: a stranger guessing my password from one address
    /// is stopped (even when the guess is right), while I still sign in from mine. Successful sign-ins
    /// spend nothing. Clients are told apart by the address a trusted proxy forwards.
    async fn failed_sign_ins_are_limited_per_email_and_client(
        app: TestApp,
        settings = [("AEROBOOK_RATE_LIMIT_LOGIN_FAILURES", "2/300"), ("AEROBOOK_TRUSTED_PROXIES", "127.0.0.1/32,::1/128")]
    ) {
        let email = unique_email();
        register(&app, &email).await;
        let login = |password: &str, client: &'static str| {
            let message = pb::LoginRequest { email: email.clone(), password: password.into() };
            let mut auth = app.auth();
            async move { auth.login(request(message, &[("x-forwarded-for", client)])).await }
        };
        for _ in 0..4 {
            login(PASSWORD, "203.0.113.1").await.expect("successes are not counted");
        }
        for _ in 0..2 {
            let status = login("wrong password!", "198.51.100.66").await.unwrap_err();
            assert_eq!(ContractError::from_status(&status).reason, "UNAUTHORIZED");
        }
        let status = login(PASSWORD, "198.51.100.66").await.unwrap_err();
        assert_rate_limited(&ContractError::from_status(&status), Duration::from_secs(150));
        login(PASSWORD, "203.0.113.1").await.expect("the owner, from another address, is not locked out");
    }

    /// `X-Forwarded-For` and `Forwarded` are believed only from trusted proxies; without any configured,
    /// a caller cannot escape its bucket by naming another address.
    async fn forwarded_addresses_count_only_from_trusted_proxies(
        app: TestApp,
        settings = [("AEROBOOK_RATE_LIMIT_SEARCH", "2/60")]
    ) {
        let search = search_request("RUH", "JED", &riyadh_date(1));
        for client in ["203.0.113.1", "203.0.113.2"] {
            app.flights().search_flights(request(search.clone(), &[("x-forwarded-for", client)])).await.expect("within the limit");
        }
        let spoofed = app.flights().search_flights(request(search, &[("forwarded", "for=203.0.113.3")])).await.unwrap_err();
        assert_rate_limited(&ContractError::from_status(&spoofed), Duration::from_secs(30));
    }

    /// Behind a trusted proxy every client has its own bucket.
    async fn clients_behind_a_trusted_proxy_have_their_own_buckets(
        app: TestApp,
        settings = [("AEROBOOK_RATE_LIMIT_SEARCH", "2/60"), ("AEROBOOK_TRUSTED_PROXIES", "127.0.0.0/8,::1/128")]
    ) {
        let search = search_request("RUH", "JED", &riyadh_date(1));
        for client in ["203.0.113.1", "203.0.113.2"] {
            for _ in 0..2 {
                app.flights().search_flights(request(search.clone(), &[("x-forwarded-for", client)])).await.expect("own bucket");
            }
            let limited = app.flights().search_flights(request(search.clone(), &[("x-forwarded-for", client)])).await.unwrap_err();
            assert_rate_limited(&ContractError::from_status(&limited), Duration::from_secs(30));
        }
        let chain = [("forwarded", "for=203.0.113.9, for=127.0.0.1")];
        app.flights().search_flights(request(search, &chain)).await.expect("the first untrusted hop from the right");
    }
}

/// With Redis, a limit holds across server instances sharing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_limits_hold_across_instances() {
    if std::env::var("REDIS_URL").is_err() {
        assert!(std::env::var_os("CI").is_none(), "CI must set REDIS_URL");
        return;
    }
    let prefix = format!("aerobook-test:{}:", uuid::Uuid::new_v4().simple());
    let settings = [("AEROBOOK_RATE_LIMIT_SEARCH", "3/60"), ("AEROBOOK_REDIS_KEY_PREFIX", prefix.as_str())];
    let (first, second) = (
        TestApp::spawn(Backend::External, &settings).await.unwrap(),
        TestApp::spawn(Backend::External, &settings).await.unwrap(),
    );
    let search = search_request("RUH", "JED", &riyadh_date(1));
    for app in [&first, &second, &first] {
        app.flights().search_flights(search.clone()).await.expect("within the shared limit");
    }
    let status = second.flights().search_flights(search).await.unwrap_err();
    assert_rate_limited(&ContractError::from_status(&status), Duration::from_secs(20));
}

/// While Redis is unreachable, limits fall back to the instance instead of failing or vanishing.
#[tokio::test]
async fn limits_hold_in_process_while_redis_is_away() {
    let app = TestApp::spawn(
        Backend::Embedded,
        &[("REDIS_URL", "redis://127.0.0.1:1"), ("AEROBOOK_RATE_LIMIT_SEARCH", "2/60")],
    )
    .await
    .unwrap();
    assert_rate_limited(&search_until_limited(&app, None, 2).await, Duration::from_secs(30));
}
