use foundation_logging::{Bootstrap, handle};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let bootstrap = Bootstrap::from_env(aws::sdk_config().await)?;
    edge::run(|input| handle(&bootstrap, input)).await
}
