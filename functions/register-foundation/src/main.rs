use register_foundation::{Registrar, handle};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let registrar = Registrar::from_env(&aws::sdk_config().await)?;
    edge::run(|input| handle(&registrar, input)).await
}
