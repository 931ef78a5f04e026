//! The status pages of one or more running nodes, over HTTP (axum).
//!
//! - `/memberlist`: members (state, incarnation, address), the KV store's keys and the message
//!   history. HTML, or JSON with `Accept: application/json` (or `?format=json`).
//! - `/ring`: ring instances with state (`UNHEALTHY` when the heartbeat is stale), zone, token
//!   count, ownership, heartbeat and registration ages, and a Forget button for unhealthy
//!   instances. HTML or JSON.
//! - `POST /ring/forget` (form field `forget=ID`): removes the instance from the ring through a
//!   compare-and-swap (it becomes a `Left` tombstone on every node), then redirects to `/ring`.
//!   Refused (403, with how to enable it) unless the agent runs with `--http-allow-forget`, as
//!   dskit's ring page. Any instance may be forgotten this way, as in dskit; the page offers
//!   it only for unhealthy ones.
//! - `/metrics`: every node's counters in the Prometheus text format, labelled `node`.
//! - `/ready`: 200 once every node has joined, 503 before (and after a leave).
//! - `/`: links to the above.
//!
//! With several nodes (the demo), `?node=NAME` picks whose view a page shows; the first node
//! is the default.
//!
//! Pages are made off the node task: the node hands out a copy of its state
//! ([`Cluster::status`], taken at most every 500 ms and shared meanwhile), and the page is
//! built from it on a blocking thread (encoding values, ring ownership in O(n log n)). At most
//! [`MAX_CONCURRENT_REQUESTS`] requests are served at once (more get 503 at once), and each
//! must be answered within [`REQUEST_TIMEOUT`] (else 503).

mod metrics;
mod page;
mod view;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use rumour::Cluster;
use rumour::ring::State as InstanceState;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;

use crate::error::Error;
use metrics::Sample;
use view::{History, KeyRow, MemberList, RingView};

/// Most requests served at once; more are answered 503 without waiting.
pub const MAX_CONCURRENT_REQUESTS: usize = 16;
/// Longest a request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The limits every request passes through, and what they refused.
#[derive(Debug)]
struct Limits {
    permits: Semaphore,
    timeout: Duration,
    /// Requests refused because `permits` were all taken.
    refused: AtomicU64,
    /// Requests answered 503 at the timeout.
    timed_out: AtomicU64,
}

impl Limits {
    fn new(concurrent: usize, timeout: Duration) -> Arc<Limits> {
        Arc::new(Limits {
            permits: Semaphore::new(concurrent),
            timeout,
            refused: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
        })
    }
}

/// Serves a request within the limits: refuses it when too many are in flight, and gives up
/// on it at the timeout.
async fn limit(State(limits): State<Arc<Limits>>, request: Request, next: Next) -> Response {
    let Ok(_permit) = limits.permits.try_acquire() else {
        limits.refused.fetch_add(1, Ordering::Relaxed);
        return unavailable("too many requests in flight");
    };
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            limits.timed_out.fetch_add(1, Ordering::Relaxed);
            unavailable("timed out")
        }
    }
}

/// Runs `f` on a blocking thread: pages are built there, away from the node tasks and the
/// runtime's workers.
async fn off_task<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// The nodes the pages show, and whether `POST /ring/forget` is allowed.
#[derive(Clone, Debug)]
struct Nodes(Arc<Vec<Cluster>>, AllowForget);

/// Whether `POST /ring/forget` is allowed (`--http-allow-forget`).
#[derive(Clone, Copy, Debug, Default)]
struct AllowForget(bool);

/// The answer to a Forget while it is disabled.
const FORGET_DISABLED: &str = "Forget is disabled: start the agent with --http-allow-forget \
to remove instances from the ring through the status page.\n";

impl Nodes {
    /// The node `?node=` names, else the first.
    fn pick(&self, uri: &Uri) -> Option<&Cluster> {
        let wanted = query_param(uri, "node");
        let named = wanted.and_then(|name| self.0.iter().find(|c| c.name() == name));
        named.or_else(|| self.0.first())
    }

    fn names(&self) -> Vec<String> {
        self.0.iter().map(|c| c.name().to_string()).collect()
    }
}

/// The router of the status pages for `clusters` (at least one).
fn router(clusters: Vec<Cluster>, allow_forget: AllowForget) -> Router {
    let limits = Limits::new(MAX_CONCURRENT_REQUESTS, REQUEST_TIMEOUT);
    limited(pages(clusters, allow_forget), limits)
}

fn pages(clusters: Vec<Cluster>, allow_forget: AllowForget) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/memberlist", get(memberlist))
        .route("/ring", get(ring))
        .route("/ring/forget", post(forget))
        .route("/metrics", get(metrics))
        .route("/ready", get(ready))
        .with_state(Nodes(Arc::new(clusters), allow_forget))
}

fn limited(router: Router, limits: Arc<Limits>) -> Router {
    router.layer(middleware::from_fn_with_state(limits, limit))
}

/// The status page's bound listener, not serving yet.
#[derive(Debug)]
pub struct StatusPage {
    listener: TcpListener,
    addr: SocketAddr,
    allow_forget: AllowForget,
}

impl StatusPage {
    /// Binds `addr`; if it is taken and `fallback` is set, binds a free port on the same IP.
    pub async fn bind(addr: SocketAddr, fallback: bool) -> Result<StatusPage, Error> {
        let bound = match TcpListener::bind(addr).await {
            Err(error) if fallback && error.kind() == io::ErrorKind::AddrInUse => {
                tracing::warn!(%addr, "address taken, picking a free port");
                TcpListener::bind(SocketAddr::new(addr.ip(), 0)).await
            }
            result => result,
        };
        let listener = bound.map_err(|source| Error::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(StatusPage {
            listener,
            addr: local,
            allow_forget: AllowForget::default(),
        })
    }

    /// Enables `POST /ring/forget` (off by default).
    pub fn allow_forget(mut self, allow: bool) -> StatusPage {
        self.allow_forget = AllowForget(allow);
        self
    }

    /// The address it is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves the pages of `clusters` on a task of its own, until [`Server::stop`].
    pub fn serve(self, clusters: Vec<Cluster>) -> Server {
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let task = tokio::spawn(async move {
            axum::serve(self.listener, router(clusters, self.allow_forget))
                .with_graceful_shutdown(shutdown)
                .await
        });
        Server { stop, task }
    }
}

/// The status page being served.
#[derive(Debug)]
pub struct Server {
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl Server {
    /// Stops serving once the requests in flight are answered.
    pub async fn stop(self) -> Result<(), Error> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(Error::ServeTask)?
            .map_err(Error::Serve)
    }
}

/// The raw value of `name` in the query string, `%XX` decoded.
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    form_value(uri.query()?, name)
}

/// The value of `name` in an `application/x-www-form-urlencoded` text, `%XX` decoded.
fn form_value(form: &str, name: &str) -> Option<String> {
    form.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| percent_decode(value))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn wants_json(headers: &HeaderMap, uri: &Uri) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") || query_param(uri, "format").as_deref() == Some("json")
}

fn unavailable(what: &str) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, format!("{what}\n")).into_response()
}

/// Answers with `view` as JSON or as the HTML `render` makes of it.
fn respond<T: Serialize>(json: bool, view: &T, render: impl FnOnce(&T) -> String) -> Response {
    if json {
        axum::Json(view).into_response()
    } else {
        Html(render(view)).into_response()
    }
}

async fn index(State(nodes): State<Nodes>) -> Html<String> {
    Html(page::index(&nodes.names()))
}

async fn memberlist(State(nodes): State<Nodes>, headers: HeaderMap, uri: Uri) -> Response {
    let Some(cluster) = nodes.pick(&uri) else {
        return unavailable("no node");
    };
    let status = match cluster.status().await {
        Ok(status) => status,
        Err(error) => return unavailable(&error.to_string()),
    };
    let view = off_task(move || {
        let keys = status
            .keys
            .iter()
            .map(|k| KeyRow {
                key: k.key.clone(),
                codec: k.codec.to_string(),
                version: k.version,
                deleted: k.deleted,
                updated: k.updated.0,
                size: k.value.encode().len(),
            })
            .collect();
        MemberList {
            node: status.name.clone(),
            now: status.wall.0,
            health_score: status.health_score,
            alive: status.alive,
            members: view::member_rows(&status.members),
            keys,
            history: History::new(
                status.history_enabled,
                &status.history_sent,
                &status.history_received,
            ),
        }
    });
    match view.await {
        Some(view) => respond(wants_json(&headers, &uri), &view, |v| {
            page::memberlist(v, &nodes.names())
        }),
        None => unavailable("page failed"),
    }
}

async fn ring(State(nodes): State<Nodes>, headers: HeaderMap, uri: Uri) -> Response {
    let Some(cluster) = nodes.pick(&uri) else {
        return unavailable("no node");
    };
    let status = match cluster.status().await {
        Ok(status) => status,
        Err(error) => return unavailable(&error.to_string()),
    };
    let allow_forget = nodes.1.0;
    let view = off_task(move || {
        RingView::new(
            status.name.clone(),
            status.wall,
            status.ring.as_ref(),
            allow_forget,
        )
    });
    match view.await {
        Some(view) => respond(wants_json(&headers, &uri), &view, |v| {
            page::ring(v, &nodes.names())
        }),
        None => unavailable("page failed"),
    }
}

/// `POST /ring/forget`: removes the instance named by the form field `forget` from the ring.
async fn forget(State(nodes): State<Nodes>, uri: Uri, form: String) -> Response {
    if !nodes.1.0 {
        return (StatusCode::FORBIDDEN, FORGET_DISABLED).into_response();
    }
    let Some(cluster) = nodes.pick(&uri) else {
        return unavailable("no node");
    };
    let Some(id) = form_value(form.trim(), "forget").filter(|id| !id.is_empty()) else {
        let usage = "expected the form field forget=<instance id>\n";
        return (StatusCode::BAD_REQUEST, usage).into_response();
    };
    let found = Arc::new(AtomicBool::new(false));
    let (seen, target) = (found.clone(), id.clone());
    let result = cluster
        .cas_ring(move |ring| {
            let present = ring
                .and_then(|r| r.instance(&target))
                .is_some_and(|i| i.state() != InstanceState::Left);
            seen.store(present, Ordering::Relaxed);
            let mut ring = ring.filter(|_| present)?.clone();
            ring.remove(&target);
            Some(ring)
        })
        .await;
    match result {
        Err(error) => unavailable(&error.to_string()),
        Ok(()) if !found.load(Ordering::Relaxed) => {
            let text = format!("no instance {id:?} in the ring (or it has left already)\n");
            (StatusCode::NOT_FOUND, text).into_response()
        }
        Ok(()) => {
            tracing::info!(instance = %id, node = %cluster.name(), "instance forgotten from the ring");
            let back = format!("/ring?node={}", page::query_value(cluster.name()));
            Redirect::to(&back).into_response()
        }
    }
}

async fn metrics(State(nodes): State<Nodes>) -> Response {
    let mut samples = Vec::new();
    for cluster in nodes.0.iter() {
        if let Ok(sample) = sample(cluster).await {
            samples.push(sample);
        }
    }
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        metrics::render(&samples),
    )
        .into_response()
}

/// One node's figures for `/metrics`.
async fn sample(cluster: &Cluster) -> Result<Sample, rumour::Error> {
    let stats = cluster.stats().await?;
    let status = cluster.status().await?;
    let ring = InstanceState::ALL
        .iter()
        .map(|&state| {
            let instances = status.ring.iter().flat_map(|ring| ring.instances());
            (state, instances.filter(|i| i.state() == state).count())
        })
        .collect();
    Ok(Sample {
        node: cluster.name().to_string(),
        ready: cluster.is_ready(),
        stats,
        ring,
    })
}

async fn ready(State(nodes): State<Nodes>) -> Response {
    let waiting: Vec<&str> = nodes
        .0
        .iter()
        .filter(|c| !c.is_ready())
        .map(Cluster::name)
        .collect();
    if waiting.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        unavailable(&format!("not ready: {}", waiting.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use rumour::Profile;
    use rumour::transport::{MemConfig, MemNetwork};

    use super::*;

    #[test]
    fn query_params_are_found_and_decoded() {
        let uri: Uri = "/ring?format=json&node=node%2D1+x".parse().unwrap();
        assert_eq!(query_param(&uri, "node").as_deref(), Some("node-1 x"));
        assert_eq!(query_param(&uri, "format").as_deref(), Some("json"));
        assert_eq!(query_param(&uri, "other"), None);
    }

    #[test]
    fn a_truncated_escape_is_kept_as_text() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    /// Sends `GET path` to `addr` and returns the status code.
    async fn status_of(addr: SocketAddr, path: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.unwrap();
        std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
    }

    /// Serves `/slow` (never answers) and `/fast` on 127.0.0.1 under `limits`.
    async fn serve_limited(limits: Arc<Limits>) -> SocketAddr {
        let router = Router::new()
            .route("/slow", get(std::future::pending::<&'static str>))
            .route("/fast", get(|| async { "ok" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, limited(router, limits)).await });
        addr
    }

    #[tokio::test]
    async fn a_request_that_takes_too_long_is_answered_503_at_the_timeout() {
        let limits = Limits::new(4, Duration::from_millis(100));
        let addr = serve_limited(limits.clone()).await;
        let answered = tokio::time::timeout(Duration::from_secs(10), status_of(addr, "/slow"));
        assert_eq!(answered.await.expect("answered in time"), 503);
        assert_eq!(limits.timed_out.load(Ordering::Relaxed), 1);
        assert_eq!(status_of(addr, "/fast").await, 200);
    }

    #[tokio::test]
    async fn requests_past_the_concurrency_limit_are_refused_at_once() {
        let limits = Limits::new(2, Duration::from_secs(3600));
        let addr = serve_limited(limits.clone()).await;
        let _slow: Vec<_> = (0..2)
            .map(|_| tokio::spawn(status_of(addr, "/slow")))
            .collect();
        // Poll until both slow requests hold their permits, then one more is refused.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while limits.permits.available_permits() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "slow requests never arrived"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(status_of(addr, "/fast").await, 503);
        assert_eq!(limits.refused.load(Ordering::Relaxed), 1);
    }

    /// The state of instance `id` in the ring `node` stores, tombstones included.
    async fn stored_state(node: &Cluster, id: &'static str) -> Option<InstanceState> {
        node.with_node(move |node, _| {
            let entry = node.gossip().entry("ring")?;
            let ring = entry.value.as_any().downcast_ref::<rumour::Ring>()?;
            ring.instance(id).map(|i| i.state())
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_forgotten_instance_becomes_a_left_tombstone_on_every_node() {
        let net = MemNetwork::new(MemConfig::new(11));
        let seed = SocketAddr::from(([10, 0, 0, 1], 7946));
        let mut nodes = Vec::new();
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            let addr = SocketAddr::from(([10, 0, 0, 1 + i as u8], 7946));
            let node = Cluster::builder(name)
                .transport(Arc::new(net.bind(addr).unwrap()))
                .profile(Profile::Local)
                .ring_instance(true)
                .join((i > 0).then_some(seed))
                .build()
                .await
                .unwrap();
            nodes.push(node);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        for node in &nodes {
            while node.ring().await.unwrap().is_none_or(|r| r.len() < 3) {
                assert!(tokio::time::Instant::now() < deadline, "rings never filled");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        nodes[2].shutdown().await;
        let form = |id: &str| format!("forget={id}");
        let refused = forget(
            State(Nodes(Arc::new(vec![nodes[0].clone()]), AllowForget(false))),
            Uri::from_static("/ring/forget"),
            form("c"),
        );
        assert_eq!(refused.await.status(), StatusCode::FORBIDDEN);
        let allowed = Nodes(Arc::new(vec![nodes[0].clone()]), AllowForget(true));
        let accepted = forget(
            State(allowed.clone()),
            Uri::from_static("/ring/forget"),
            form("c"),
        );
        assert_eq!(accepted.await.status(), StatusCode::SEE_OTHER);
        for node in &nodes[..2] {
            while stored_state(node, "c").await != Some(InstanceState::Left) {
                assert!(tokio::time::Instant::now() < deadline, "c never left");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let again = forget(State(allowed), Uri::from_static("/ring/forget"), form("c"));
        assert_eq!(again.await.status(), StatusCode::NOT_FOUND, "already left");
        for node in &nodes[..2] {
            node.shutdown().await;
        }
    }

    #[tokio::test]
    async fn a_stopped_node_has_no_page() {
        let net = MemNetwork::new(MemConfig::new(10));
        let transport = net.bind(SocketAddr::from(([10, 0, 0, 1], 7946))).unwrap();
        let node = Cluster::builder("lonely")
            .transport(Arc::new(transport))
            .profile(Profile::Local)
            .build()
            .await
            .unwrap();
        let nodes = Nodes(Arc::new(vec![node.clone()]), AllowForget::default());
        let page = |nodes: Nodes| {
            memberlist(
                State(nodes),
                HeaderMap::new(),
                Uri::from_static("/memberlist"),
            )
        };
        assert_eq!(page(nodes.clone()).await.status(), StatusCode::OK);
        node.shutdown().await;
        assert_eq!(page(nodes).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
