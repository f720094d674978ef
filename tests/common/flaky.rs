//! A storage endpoint that fails some requests: a proxy in front of a real one that answers every `n`th
//! request with `503 Service Unavailable` and forwards the others.
#![allow(dead_code)]

use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

/// The running proxy; it stops with the test's runtime.
pub struct FlakyProxy {
    /// `host:port` to send requests to.
    pub host: String,
    failed: Arc<AtomicU64>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: Arc<(AtomicU64, AtomicU64)>,
}

impl FlakyProxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (`host:port`) that fails every
    /// `every`th request.
    pub async fn start(upstream: &str, every: u64) -> FlakyProxy {
        Self::start_with_delay(upstream, every, std::time::Duration::ZERO).await
    }

    /// Like [`FlakyProxy::start`], and slow: every request waits `delay` first (`every` = 0 fails none).
    pub async fn start_with_delay(upstream: &str, every: u64, delay: std::time::Duration) -> FlakyProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let host = listener.local_addr().expect("bound").to_string();
        let failed = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(AtomicU64::new(0));
        let upstream = upstream.to_string();
        let client = reqwest::Client::new();
        let failed_in = failed.clone();
        let in_flight = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let counted = in_flight.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (client, upstream, seen, failed, counted) =
                    (client.clone(), upstream.clone(), seen.clone(), failed_in.clone(), counted.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (client, upstream, seen, failed, counted) =
                            (client.clone(), upstream.clone(), seen.clone(), failed.clone(), counted.clone());
                        async move {
                            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                            let now = counted.0.fetch_add(1, Ordering::SeqCst) + 1;
                            counted.1.fetch_max(now, Ordering::SeqCst);
                            let _done = Done(&counted.0);
                            tokio::time::sleep(delay).await;
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            if every > 0 && n % every == 0 {
                                failed.fetch_add(1, Ordering::SeqCst);
                                return Ok::<_, std::convert::Infallible>(
                                    Response::builder()
                                        .status(503)
                                        .body(Full::new(bytes::Bytes::from_static(b"try again")))
                                        .unwrap(),
                                );
                            }
                            let url = format!(
                                "http://{upstream}{}",
                                parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
                            );
                            let head = parts.method == hyper::Method::HEAD;
                            let mut forward = client.request(parts.method, url).body(body);
                            for (name, value) in &parts.headers {
                                if name != "host" {
                                    forward = forward.header(name, value);
                                }
                            }
                            let answer = match forward.send().await {
                                Ok(r) => r,
                                Err(_) => {
                                    return Ok(Response::builder()
                                        .status(502)
                                        .body(Full::new(bytes::Bytes::new()))
                                        .unwrap());
                                }
                            };
                            let mut response = Response::builder().status(answer.status());
                            for (name, value) in answer.headers() {
                                // A HEAD answer has no body: its Content-Length is the object's, kept.
                                if name != "transfer-encoding" && (head || name != "content-length") {
                                    response = response.header(name, value);
                                }
                            }
                            let bytes = answer.bytes().await.unwrap_or_default();
                            Ok(response.body(Full::new(bytes)).unwrap())
                        }
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        FlakyProxy { host, failed, in_flight }
    }

    /// The most requests it was answering at once.
    pub fn peak_in_flight(&self) -> u64 {
        self.in_flight.1.load(Ordering::SeqCst)
    }

    /// How many requests it failed.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }
}

/// Counts a request as answered when dropped.
struct Done<'a>(&'a AtomicU64);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
