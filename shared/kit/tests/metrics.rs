//! The Prometheus endpoint over real HTTP: a service started with metrics
//! on port 0 answers gRPC calls, and its endpoint serves the per-RPC series
//! (moving with the calls) and the database pool gauges.

use std::time::Duration;

use bytes::Bytes;
use helpdesk_kit::{
    auth::{AuthConfig, Verifier},
    metrics::value,
    service::Service,
};
use helpdesk_testkit::{TestDb, health_status, wait_for_health};
use http_body_util::{BodyExt, Empty};
use tokio::sync::oneshot;
use tonic_health::pb::health_check_response::ServingStatus;

const WITHIN: Duration = Duration::from_secs(10);

/// GET `/metrics` on `addr` with hyper's HTTP/1 client.
async fn scrape(addr: std::net::SocketAddr) -> (String, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get("/metrics")
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    let content_type = response.headers()[http::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (content_type, String::from_utf8(body.to_vec()).unwrap())
}

const CHECK_OK: &str = r#"grpc_server_handled_total{grpc_service="grpc.health.v1.Health",grpc_method="Check",grpc_code="OK"}"#;
const CHECK_NOT_FOUND: &str = r#"grpc_server_handled_total{grpc_service="grpc.health.v1.Health",grpc_method="Check",grpc_code="NOT_FOUND"}"#;
const CHECK_LATENCY: &str = r#"grpc_server_handling_seconds_count{grpc_service="grpc.health.v1.Health",grpc_method="Check"}"#;

#[tokio::test]
async fn the_endpoint_serves_rpc_and_pool_series_that_move_with_calls() {
    let db = TestDb::create(&sqlx::migrate::Migrator::DEFAULT)
        .await
        .unwrap();
    let database = db.pool.connect_options().get_database().unwrap().to_owned();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc.local_addr().unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(
        Service::new()
            .database(db.pool.clone())
            .metrics_listener(metrics)
            .run(grpc, Verifier::new(&AuthConfig::dev()).unwrap(), async {
                let _ = stopped.await;
            }),
    );
    wait_for_health(grpc_addr, "", ServingStatus::Serving, WITHIN)
        .await
        .unwrap();

    let (content_type, before) = scrape(metrics_addr).await;
    assert!(content_type.starts_with("application/openmetrics-text"));
    // The readiness wait above already went through the layer.
    for family in [
        "# TYPE grpc_server_handled counter",
        "# TYPE grpc_server_handling_seconds histogram",
    ] {
        assert!(before.contains(family), "{family} missing from:\n{before}");
    }
    let ok_before = value(&before, CHECK_OK).unwrap_or(0.0);
    let not_found_before = value(&before, CHECK_NOT_FOUND).unwrap_or(0.0);
    let latency_before = value(&before, CHECK_LATENCY).unwrap_or(0.0);

    for _ in 0..3 {
        health_status(grpc_addr, "").await.unwrap();
    }
    let missing = health_status(grpc_addr, "no.such.Service")
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let (_, after) = scrape(metrics_addr).await;
    assert_eq!(value(&after, CHECK_OK).unwrap(), ok_before + 3.0, "{after}");
    assert_eq!(
        value(&after, CHECK_NOT_FOUND).unwrap(),
        not_found_before + 1.0
    );
    assert_eq!(value(&after, CHECK_LATENCY).unwrap(), latency_before + 4.0);

    // The probe samples the pool as it starts: one connection answered it.
    let deadline = tokio::time::Instant::now() + WITHIN;
    let mut after = after;
    while !after.contains("# TYPE db_pool_connections gauge") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no pool gauges:\n{after}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = scrape(metrics_addr).await.1;
    }
    assert!(after.contains("# TYPE db_pool_max_connections gauge"));
    let max = value(
        &after,
        &format!(r#"db_pool_max_connections{{database="{database}"}}"#),
    )
    .unwrap();
    assert!(max >= 1.0);
    let in_use = value(
        &after,
        &format!(r#"db_pool_connections{{database="{database}",state="in_use"}}"#),
    )
    .unwrap();
    let idle = value(
        &after,
        &format!(r#"db_pool_connections{{database="{database}",state="idle"}}"#),
    )
    .unwrap();
    assert!(in_use + idle >= 1.0 && in_use + idle <= max, "{after}");

    let _ = stop.send(());
    served.await.unwrap().unwrap();
    // The endpoint stopped with the service.
    assert!(tokio::net::TcpStream::connect(metrics_addr).await.is_err());
}
