//! Every step of Switchyard's state machines, as one Lambda bootstrap: the function's
//! `SWITCHYARD_STEP` names the step it serves (the template sets it per function, beside the
//! function's own least-privilege role).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    switchyard_functions::serve_from_env().await
}
