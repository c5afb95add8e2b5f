//! The server binary's log lines, as operators read them: a warning at start for each unknown or renamed
//! setting, and never a password or token sent in a request.

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;

use aerobook_proto::v1::{self as pb, auth_service_client::AuthServiceClient};
use support::{JWT_SECRET, Server};
use tonic::Request;

#[tokio::test]
async fn unknown_and_renamed_settings_are_warned_about_at_start() {
    let server = Server::start(&[
        ("AEROBOOK_MAX_HOLD_PER_USER", "3"),
        ("AEROBOOK_RATE_LIMIT_LOGIN_EMAIL", "9/60"),
        ("AEROBOOK_RATE_LIMITS", "enabled"),
    ])
    .await;
    let logs = server.stop().await;
    let warnings: Vec<serde_json::Value> = logs
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["level"] == "WARN" && line["message"] == "configuration")
        .collect();
    let notices: Vec<&str> = warnings.iter().filter_map(|line| line["notice"].as_str()).collect();
    assert_eq!(
        notices,
        [
            "unknown setting AEROBOOK_MAX_HOLD_PER_USER is ignored; the nearest known name is \
             AEROBOOK_MAX_HOLDS_PER_USER",
            "AEROBOOK_RATE_LIMIT_LOGIN_EMAIL is deprecated and will stop working in the next release: rename it \
             AEROBOOK_RATE_LIMIT_LOGIN_FAILURES",
        ],
        "{logs:#?}"
    );
}

#[tokio::test]
async fn logs_never_hold_a_password_or_token_sent_in_a_request() {
    let server = Server::start(&[]).await;
    let password = "Correct-Horse-Battery-Staple-9";
    let mut auth = AuthServiceClient::new(server.channel().await);
    let registered = auth
        .register(pb::RegisterRequest {
            email: "logs@example.com".into(),
            password: password.into(),
            full_name: "Log Reader".into(),
        })
        .await
        .expect("register")
        .into_inner();
    let signed_in = auth
        .login(pb::LoginRequest { email: "logs@example.com".into(), password: password.into() })
        .await
        .expect("login")
        .into_inner();
    let wrong = auth
        .login(pb::LoginRequest { email: "logs@example.com".into(), password: "Wrong-Password-Guess-77".into() })
        .await;
    assert!(wrong.is_err());
    let mut me = Request::new(pb::GetMeRequest {});
    me.metadata_mut().insert("authorization", format!("Bearer {}", signed_in.access_token).parse().unwrap());
    auth.get_me(me).await.expect("me");
    let refreshed = auth
        .refresh_token(pb::RefreshTokenRequest { refresh_token: signed_in.refresh_token.clone() })
        .await
        .expect("refresh");
    auth.logout(pb::LogoutRequest { refresh_token: refreshed.into_inner().refresh_token.clone() })
        .await
        .expect("logout");

    let logs = server.stop().await.join("\n");
    assert!(logs.contains("call answered"), "the calls were logged at all");
    for secret in [
        password,
        "Wrong-Password-Guess-77",
        &registered.access_token,
        &registered.refresh_token,
        &signed_in.access_token,
        &signed_in.refresh_token,
        JWT_SECRET,
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs: {secret}");
    }
}
