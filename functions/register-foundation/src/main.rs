use register_foundation::{Registrar, run};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let registrar = Registrar::from_env(&aws::sdk_config().await)?;
    edge::run(|input| run(&registrar, input)).await
}
