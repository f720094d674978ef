//! A storage endpoint that redirects: every request is answered `307 Temporary Redirect` to the same path
//! and query on a second loopback port, where a recorder answers `404` and keeps each request line it got.
#![allow(dead_code)]

use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};

/// The running pair; both stop with the test's runtime.
pub struct Redirector {
    /// `host:port` of the endpoint that redirects.
    pub host: String,
    /// What the host redirected to received: `METHOD path?query` a request.
    received: Arc<Mutex<Vec<String>>>,
}

impl Redirector {
    pub async fn start() -> Redirector {
        let received = Arc::new(Mutex::new(Vec::new()));
        let recorded = received.clone();
        let elsewhere = serve(move |request| {
            recorded.lock().unwrap().push(format!("{} {}", request.method(), request.uri()));
            Response::builder().status(404).body(Full::new(bytes::Bytes::new())).unwrap()
        })
        .await;
        let host = serve(move |request| {
            let target = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
            Response::builder()
                .status(307)
                .header("location", format!("http://{elsewhere}{target}"))
                .body(Full::new(bytes::Bytes::new()))
                .unwrap()
        })
        .await;
        Redirector { host, received }
    }

    /// Every request that reached the host redirected to.
    pub fn received_elsewhere(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

/// Serves `answer` on a free loopback port; returns `host:port`.
pub async fn serve(
    answer: impl Fn(&Request<Incoming>) -> Response<Full<bytes::Bytes>> + Send + Sync + 'static,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let host = listener.local_addr().expect("bound").to_string();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let response = answer(&request);
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    host
}
