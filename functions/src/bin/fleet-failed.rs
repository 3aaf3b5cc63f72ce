//! The `fleet-failed` step of the fleet state machine, as a Lambda function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    switchyard_functions::serve(env!("CARGO_BIN_NAME")).await
}
