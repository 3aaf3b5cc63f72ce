//! The `prepare-migrations` step of the deploy state machine, as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    switchyard_functions::serve(env!("CARGO_BIN_NAME")).await
}
