use manage_account_types::{TypeManager, route};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let manager = TypeManager::from_env(&aws::sdk_config().await)?;
    edge::run_http(|request| route(&manager, request)).await
}
