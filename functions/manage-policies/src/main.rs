use manage_policies::{PolicyManager, handle, route};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let manager = PolicyManager::from_env(&aws::sdk_config().await)?;
    edge::run_with_http(
        |request| route(&manager, request),
        |event| handle(&manager, event),
    )
    .await
}
