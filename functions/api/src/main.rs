use api::{ReadApi, route};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let api = ReadApi::from_env(&aws::sdk_config().await)?;
    edge::run_http(|request| route(&api, request)).await
}
