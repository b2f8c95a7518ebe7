//! The gRPC server bootstrap every service uses: its routes behind the
//! [`AuthLayer`], plus `grpc.health.v1` health and server reflection (both
//! open), a span per call, and a graceful stop: when `shutdown` completes,
//! health turns NOT_SERVING, the listener closes and in-flight calls finish.

use std::{future::Future, time::Duration};

use tokio::net::TcpListener;
use tonic::{
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::ServingStatus;

use crate::auth::{AuthLayer, Verifier};

/// Binds `addr` (port 0 picks a free port; tests read it back).
pub async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    Ok(TcpListener::bind(addr).await?)
}

/// Serves `routes` on `listener` until `shutdown` completes.
///
/// `service_names` are the full gRPC names (e.g. `support.v1.TicketService`)
/// reported SERVING by the health service, along with the server as a whole ("").
pub async fn serve(
    listener: TcpListener,
    verifier: Verifier,
    routes: Routes,
    service_names: &[&str],
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    let mut names: Vec<String> = service_names.iter().map(|s| (*s).to_owned()).collect();
    names.push(String::new());
    for name in &names {
        health
            .set_service_status(name.as_str(), ServingStatus::Serving)
            .await;
    }

    // v1 for current clients (buf curl, grpcurl), v1alpha for older ones.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(helpdesk_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let routes = routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let addr = listener.local_addr()?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let stop = async move {
        shutdown.await;
        // Tell load balancers first, then stop accepting; tonic drains the rest.
        for name in &names {
            health
                .set_service_status(name.as_str(), ServingStatus::NotServing)
                .await;
        }
        tracing::info!("draining in-flight calls");
    };

    tracing::info!(%addr, "gRPC server listening");
    Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .trace_fn(|request| tracing::info_span!("grpc", rpc = %request.uri().path()))
        .layer(AuthLayer::new(verifier))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, stop)
        .await?;
    tracing::info!("gRPC server stopped");
    Ok(())
}
