//! The connection edge: our own HTTP/1.1 accept loop (hyper), so that every connection
//! passes the admission table, request heads and idle keep-alives have a deadline, and a
//! server at its connection cap still answers `/healthz`.
//!
//! `axum::serve` has none of these knobs; the loop here is the one axum's own
//! "serve with hyper" example describes, plus admission and graceful shutdown.

pub mod admission;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;
use tracing::{debug, info, warn};

use self::admission::{Admission, AdmissionLimits, ConnectionGuard, Refusal, Verdict};
use crate::config::EdgeLimits;

/// Largest request head (request line and headers) we buffer.
const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Head deadline for connections admitted only for `/healthz`.
const HEALTH_ONLY_HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// How long shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// File descriptors kept free for the database, the index and logs.
const RESERVED_FDS: u64 = 64;

/// Raises the soft open-file limit to the hard one and logs both; returns the limit now
/// in force (or a conservative guess where it cannot be read).
#[must_use]
pub fn raise_open_file_limit() -> u64 {
    let before = rlimit::getrlimit(rlimit::Resource::NOFILE).ok();
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(now) => {
            let (soft, hard) = before.unwrap_or((now, now));
            info!(soft_before = soft, hard, now, "open-file limit");
            now
        }
        Err(e) => {
            let soft = before.map_or(1024, |(soft, _)| soft);
            warn!(error = %e, soft, "cannot raise the open-file limit");
            soft
        }
    }
}

/// Connection caps from configuration; the total is derived from the open-file limit
/// unless configured.
#[must_use]
pub fn admission_limits(edge: &EdgeLimits, open_files: u64) -> AdmissionLimits {
    let usable = open_files.saturating_sub(RESERVED_FDS + open_files / 10).max(32);
    let reserve = (usable / 20).clamp(4, 64);
    let derived = u32::try_from(usable - reserve).unwrap_or(u32::MAX).min(200_000);
    let total = edge.max_connections.unwrap_or(derived);
    let reserve = u32::try_from(reserve).unwrap_or(64);
    AdmissionLimits {
        per_address: edge.connections_per_address,
        per_second: edge.connections_per_second_per_address,
        total,
        reserve,
        exempt: edge.trusted_proxies.clone(),
    }
}

/// A TCP stream that holds its admission place for as long as it lives, including after
/// a WebSocket upgrade (hyper hands the same stream to the socket task).
struct GuardedStream {
    tcp: TcpStream,
    _guard: ConnectionGuard,
}

impl AsyncRead for GuardedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// Serves `router` on `listener` until `shutdown` fires, then lets requests in flight
/// finish (WebSocket sessions close themselves on the same token).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    admission: Admission,
    limits: EdgeLimits,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(60));
    let mut last_accept_error: Option<tokio::time::Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            _ = sweep.tick() => {
                admission.forget_quiet_addresses();
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors or similar: say so now and then, and give
                // closing connections a moment instead of spinning.
                let now = tokio::time::Instant::now();
                if last_accept_error.is_none_or(|t| now.duration_since(t) > Duration::from_secs(10)) {
                    warn!(error = %e, "accept failed");
                    last_accept_error = Some(now);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (guard, health_only) = match admission.admit(peer.ip()) {
            Verdict::Serve(guard) => (guard, false),
            Verdict::HealthOnly(guard) => (guard, true),
            Verdict::Refuse(refusal) => {
                refuse(&tcp, refusal);
                debug!(%peer, ?refusal, "connection refused");
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let io = TokioIo::new(GuardedStream { tcp, _guard: guard });
        let router = router.clone();
        let head_timeout = if health_only { HEALTH_ONLY_HEAD_TIMEOUT } else { limits.header_timeout };
        let stop = shutdown.clone();
        tracker.spawn(serve_connection(io, peer, router, health_only, head_timeout, stop));
    }
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait()).await.is_err() {
        warn!(connections = tracker.len(), "shutting down with requests still in flight");
    }
}

async fn serve_connection(
    io: TokioIo<GuardedStream>,
    peer: SocketAddr,
    router: Router,
    health_only: bool,
    head_timeout: Duration,
    shutdown: CancellationToken,
) {
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move {
            if health_only && request.uri().path() != "/healthz" {
                return Ok::<_, Infallible>(server_busy());
            }
            router.oneshot(request.map(Body::new)).await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(!health_only);
    let connection = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        debug!(%peer, error = %e, "connection ended with an error");
    }
}

fn json_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    headers.insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    response
}

fn server_busy() -> Response<Body> {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_busy",
        "The server is at its connection limit; retry shortly.",
    )
}

/// Tells a refused client why, if its socket takes the bytes at once, then closes it.
fn refuse(tcp: &TcpStream, refusal: Refusal) {
    let (status, code, message) = match refusal {
        Refusal::AddressFull => {
            ("429 Too Many Requests", "too_many_connections", "Too many open connections from your address.")
        }
        Refusal::AddressTooFast => {
            ("429 Too Many Requests", "connection_rate", "Too many new connections from your address; slow down.")
        }
        Refusal::ServerFull => {
            ("503 Service Unavailable", "server_busy", "The server is at its connection limit; retry shortly.")
        }
    };
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nretry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    // Never wait on a refused client: what does not fit in the socket buffer is dropped.
    let _ = tcp.try_write(response.as_bytes());
}
