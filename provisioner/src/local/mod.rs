//! Running the system locally (`provisioner local`): the parts of AWS that the
//! emulator does not play, around the functions served by `cargo lambda watch`.
//! [`trigger`]: the SQS event source mapping; [`api_gateway`]: the HTTP API;
//! [`watch`]: cargo-lambda and the Lambda `Invoke` client.

pub mod api_gateway;
pub mod logs;
pub mod trigger;
pub mod watch;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A local process could not be started or did not come up.
    #[error("{0}")]
    Start(String),
}
