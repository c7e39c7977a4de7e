use close_aws_account::{Closer, handle};

#[tokio::main]
async fn main() -> Result<(), edge::runtime::Error> {
    edge::init_tracing();
    let closer = Closer::from_env(&aws::sdk_config().await)?;
    edge::run(|request| handle(&closer, request)).await
}
