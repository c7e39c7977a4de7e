use assure_root::{Assurer, handle};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let assurer = Assurer::from_env(aws::sdk_config().await)?;
    edge::run(|input| handle(&assurer, input)).await
}
