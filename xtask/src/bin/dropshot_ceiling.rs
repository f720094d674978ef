//! The ceiling of the stack for `cargo xtask bench`: a bare dropshot server whose one GET answers a constant
//! entity, with no store, no auth and no OData. Prints its base URL, then serves until killed.

use dropshot::{
    ApiDescription, ConfigDropshot, ConfigLogging, ConfigLoggingLevel, HttpError, HttpResponseOk, RequestContext,
    ServerBuilder, endpoint,
};

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Constant {
    id: &'static str,
    status: &'static str,
    progress: f64,
}

#[endpoint { method = GET, path = "/dataPolicyOperations/{id}" }]
async fn constant(
    _rqctx: RequestContext<()>,
    _path: dropshot::Path<IdPath>,
) -> Result<HttpResponseOk<Constant>, HttpError> {
    Ok(HttpResponseOk(Constant { id: "01a20000-0000-7000-8000-000000000000", status: "complete", progress: 100.0 }))
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct IdPath {
    #[allow(dead_code)]
    id: String,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let log = ConfigLogging::StderrTerminal { level: ConfigLoggingLevel::Error }
        .to_logger("ceiling")
        .map_err(|e| e.to_string())?;
    let mut api = ApiDescription::new();
    api.register(constant).map_err(|e| e.to_string())?;
    let config =
        ConfigDropshot { bind_address: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?, ..Default::default() };
    let server = ServerBuilder::new(api, (), log).config(config).start().map_err(|e| e.to_string())?;
    println!("listening on http://{}", server.local_addr());
    server.await
}
