use place_account::{Placer, handle};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let placer = Placer::from_env(&aws::sdk_config().await)?;
    edge::run(|request| handle(&placer, request)).await
}
