//! The status pages of one or more running nodes, over HTTP (axum).
//!
//! - `/memberlist`: members (state, incarnation, address), the KV store's keys and the message
//!   history. HTML, or JSON with `Accept: application/json` (or `?format=json`).
//! - `/ring`: ring instances with state (`UNHEALTHY` when the heartbeat is stale), zone, token
//!   count, ownership and heartbeat age. HTML or JSON.
//! - `/metrics`: every node's counters in the Prometheus text format, labelled `node`.
//! - `/ready`: 200 once every node has joined, 503 before (and after a leave).
//! - `/`: links to the above.
//!
//! With several nodes (the demo), `?node=NAME` picks whose view a page shows; the first node
//! is the default.

mod metrics;
mod page;
mod view;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use rumour::Cluster;
use rumour::ring::State as InstanceState;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::Error;
use metrics::Sample;
use view::{MemberList, RingView};

/// The nodes the pages show.
#[derive(Clone, Debug)]
struct Nodes(Arc<Vec<Cluster>>);

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
fn router(clusters: Vec<Cluster>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/memberlist", get(memberlist))
        .route("/ring", get(ring))
        .route("/metrics", get(metrics))
        .route("/ready", get(ready))
        .with_state(Nodes(Arc::new(clusters)))
}

/// The status page's bound listener, not serving yet.
#[derive(Debug)]
pub struct StatusPage {
    listener: TcpListener,
    addr: SocketAddr,
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
        })
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
            axum::serve(self.listener, router(clusters))
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
    uri.query()?
        .split('&')
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
    match cluster
        .with_node(|node, now| MemberList::of(node, now))
        .await
    {
        Ok(view) => respond(wants_json(&headers, &uri), &view, |v| {
            page::memberlist(v, &nodes.names())
        }),
        Err(error) => unavailable(&error.to_string()),
    }
}

async fn ring(State(nodes): State<Nodes>, headers: HeaderMap, uri: Uri) -> Response {
    let Some(cluster) = nodes.pick(&uri) else {
        return unavailable("no node");
    };
    match cluster.with_node(|node, now| RingView::of(node, now)).await {
        Ok(view) => respond(wants_json(&headers, &uri), &view, |v| {
            page::ring(v, &nodes.names())
        }),
        Err(error) => unavailable(&error.to_string()),
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
    let ring = cluster
        .with_node(|node, _| {
            let ring = node.ring().unwrap_or_default();
            InstanceState::ALL
                .iter()
                .map(|&state| {
                    (
                        state,
                        ring.instances().filter(|i| i.state() == state).count(),
                    )
                })
                .collect()
        })
        .await?;
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
        let nodes = Nodes(Arc::new(vec![node.clone()]));
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
