use create_account::{CreateAccountApi, route};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let api = CreateAccountApi::from_env(&aws::sdk_config().await)?;
    edge::run_http(|request| route(&api, request)).await
}
